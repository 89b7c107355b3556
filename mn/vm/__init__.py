"""VM instances (ZStack's VM service): create, life cycle, nics, hostname.

* :mod:`mn.vm.messages`: the VM APIs and the messages other services send a VM's owner;
* :mod:`mn.vm.inventory`: :class:`VmInstanceInventory`, :class:`VmNicInventory`;
* :mod:`mn.vm.service`: :class:`VmInstanceService`, the ``vmInstance`` service;
* :mod:`mn.vm.state`: ZStack's VmInstanceState machine and the operations each state allows;
* :mod:`mn.vm.creation`, :mod:`mn.vm.operations`: request checks and the data of each chain;
* :mod:`mn.vm.flows`: the steps of the chains in ``flows/vm/*.xml``;
* :mod:`mn.vm.hypervisor`: what a hypervisor backend does, and the Simulator backend;
* :mod:`mn.vm.records`, :mod:`mn.vm.nics`, :mod:`mn.vm.spec`: rows, nics and addresses, backend specs;
* :mod:`mn.vm.cascade`, :mod:`mn.vm.maintenance`, :mod:`mn.vm.expunger`: VMs when their
  zone, host, storage or network goes, when a host enters maintenance, and after the
  expunge period;
* :mod:`mn.vm.config`, :mod:`mn.vm.tags`: global configs and system tags of VMs.

Tables: ``VmInstanceVO``, ``VmNicVO``, ``VmInstanceSequenceNumberVO`` (``mn.db.models.vm``).
"""
