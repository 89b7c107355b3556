"""The KVM hypervisor plugin of the management node.

KVM hosts run ``zstack-kvmagent`` (``agents/kvm``), deployed over SSH by
Ansible (:mod:`plugins.kvm.deploy`). The MN side:

* :mod:`plugins.kvm.messages`: ``AddKVMHost``, ``UpdateKVMHost``;
* :mod:`plugins.kvm.factory`: adds and connects KVM hosts (deploy, connect,
  capacity, bridges, local storage, VM sync);
* :mod:`plugins.kvm.hypervisor`: the VM operations as agent commands;
* :mod:`plugins.kvm.agent`: commands to agents and their HTTP callbacks;
* the host tracker (:mod:`mn.host.tracker`, core) pings KVM hosts through the factory;
* :mod:`plugins.kvm.service`: joins the MN through the ``zstack.services``
  entry point, with no edit to the core.
"""
