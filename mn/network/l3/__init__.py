"""L3 networks (ZStack's network.l3 service).

* :mod:`mn.network.l3.messages`: the L3 network, IP range, DNS and address APIs;
* :mod:`mn.network.l3.inventory`: L3NetworkInventory, IpRangeInventory, UsedIpInventory, ...;
* :mod:`mn.network.l3.ranges`: the rules a new IP range must respect, given the others;
* :mod:`mn.network.l3.addresses`: free addresses, availability of one, capacity;
* :mod:`mn.network.l3.service`: :class:`L3NetworkService`.
"""
