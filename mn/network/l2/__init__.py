"""L2 networks (ZStack's network.l2 service).

* :mod:`mn.network.l2.messages`: the L2 APIs and their events;
* :mod:`mn.network.l2.inventory`: L2NetworkInventory, L2VlanNetworkInventory, L2NetworkClusterRefInventory;
* :mod:`mn.network.l2.vms`: the VMs that keep an L2 network attached to a cluster;
* :mod:`mn.network.l2.service`: :class:`L2NetworkService`.
"""
