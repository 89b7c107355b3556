"""Hosts: the machines VMs run on (ZStack's host service), Simulator hosts first.

* :mod:`mn.host.messages`: the host APIs, their events, internal messages
  and :class:`~mn.host.messages.HostStatusChangedEvent`;
* :mod:`mn.host.inventory`: :class:`~mn.host.inventory.HostInventory`;
* :mod:`mn.host.service`: :class:`~mn.host.service.HostService`, the ``host`` service;
* :mod:`mn.host.factory`: what a hypervisor type adds (its rows, connecting);
* :mod:`mn.host.simulator`: Simulator hosts (no agent: connected at once);
* :mod:`mn.host.state`: the state (Enabled... Maintenance) and status machines;
* :mod:`mn.host.config`: the overcommit ratios (global config);
* :mod:`mn.host.capacity`: reserving and releasing CPU and memory of a host;
* :mod:`mn.host.allocator`: choosing (and reserving) a host for a VM;
* :mod:`mn.host.extensions`: hooks other services add (maintenance, add, state);
* :mod:`mn.host.cluster_extension`: hosts follow their cluster's state;
* :mod:`mn.host.cascade`: hosts in cascade deletions (under clusters).

Tables: ``HostVO``, ``HostCapacityVO``, ``SimulatorHostVO`` (``mn.db.models.host``).
"""
