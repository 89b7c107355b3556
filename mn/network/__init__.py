"""Networks: L2 networks (ZStack's network.l2 service) and L3 networks with
their IP ranges, DNS servers and IP address management (network.l3).

* :mod:`mn.network.l2`: L2NoVlan and L2Vlan networks and their attachment to clusters;
* :mod:`mn.network.l3`: L3 networks, IP ranges (by range or CIDR), DNS, free IPs, capacity;
* :mod:`mn.network.ipam`: ``allocate_ip`` / ``release_ip``, what VM nics use;
* :mod:`mn.network.ipv4`: IPv4 arithmetic and the shape rules of ranges.

IPv4 only: IPv6 addresses, ranges and networks are refused with a message
saying so. Tables: ``mn.db.models.network``.
"""

# L2 and L3 inventories name each other in their relations (resolved by
# class name when queried): importing the package registers both.
from mn.network.l2 import inventory as _l2_inventory  # noqa: E402,F401
from mn.network.l3 import inventory as _l3_inventory  # noqa: E402,F401
