"""The steps of the VM chains in ``flows/vm/*.xml`` (create, start, stop, ...).

* :mod:`mn.vm.flows.common`: steps several chains share (state changes,
  host allocation and return, hypervisor calls);
* :mod:`mn.vm.flows.create`: the steps only ``vm.create`` has;
* :mod:`mn.vm.flows.lifecycle`: destroy, expunge and migrate;
* :mod:`mn.vm.flows.devices`: nics and data volumes attached to a VM.

Steps keep everything in ``ctx.data`` (JSON): ``vmUuid`` always, plus what
each chain's caller in :mod:`mn.vm.service` puts there. Every rollback reads
what to give back from the database rows that record holding it (a VM's
``hostUuid``, a volume's ``primaryStorageUuid``, a nic's ``usedIpUuid``),
so it gives back exactly once, after a crash too.
"""
