"""IPv4 arithmetic and the shape rules of IP ranges (ZStack's L3NetworkApiInterceptor).

Pure functions, no database: an address is an ``int`` (ZStack's
``ipInLong``) or its dotted text. Everything invalid raises OperationError
SYS.1007 with a message naming the bad value. IPv6 is not supported by this
management node: an IPv6 address is refused with a message saying so.
"""

from __future__ import annotations

import dataclasses
import ipaddress

from mn.errors import OperationError, SysErrors

#: Address blocks no range may touch, with the reason ZStack gives.
RESERVED_BLOCKS = (
    ("224.0.0.0", "239.255.255.255", "D class addresses which are for multicast"),
    ("240.0.0.0", "255.255.255.255", "E class addresses which are reserved"),
    ("169.254.1.0", "169.254.254.255", "link local addresses which are reserved"),
)


def invalid(details: str) -> OperationError:
    return OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR, details)


def to_int(ip: str, what: str = "ip") -> int:
    """``ip`` as an integer; SYS.1007 naming ``what`` if it is not an IPv4 address."""
    try:
        return int(ipaddress.IPv4Address(ip))
    except (ipaddress.AddressValueError, ValueError, TypeError):
        pass
    try:
        ipaddress.IPv6Address(ip)
    except (ipaddress.AddressValueError, ValueError, TypeError):
        raise invalid(f"{what}[{ip}] is not a IPv4 address") from None
    raise invalid(f"{what}[{ip}] is an IPv6 address; this management node supports IPv4 only")


def to_text(value: int) -> str:
    return str(ipaddress.IPv4Address(value))


def prefix_of_netmask(netmask: str) -> int:
    """The prefix length of ``netmask``; SYS.1007 unless it is a contiguous mask other than 0.0.0.0."""
    try:
        prefix = ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen
    except (ipaddress.NetmaskValueError, ValueError, TypeError):
        prefix = 0
    if prefix == 0 or not _is_dotted(netmask):
        raise invalid(f"netmask[{netmask}] is not a netmask, and the IP range netmask cannot be 0.0.0.0")
    return prefix


def _is_dotted(value: str) -> bool:
    # IPv4Network also takes "24" as a netmask; the API wants the dotted form.
    return isinstance(value, str) and value.count(".") == 3


def netmask_of_prefix(prefix: int) -> str:
    return str(ipaddress.IPv4Network(f"0.0.0.0/{prefix}").netmask)


@dataclasses.dataclass(frozen=True)
class Ipv4Range:
    """An IP range as IpRangeVO stores it: ``start``..``end`` inclusive in
    the subnet ``network_cidr``, whose gateway is ``gateway``."""

    start: int
    end: int
    gateway: int
    prefix_len: int

    @property
    def start_ip(self) -> str:
        return to_text(self.start)

    @property
    def end_ip(self) -> str:
        return to_text(self.end)

    @property
    def gateway_ip(self) -> str:
        return to_text(self.gateway)

    @property
    def netmask(self) -> str:
        return netmask_of_prefix(self.prefix_len)

    @property
    def network_cidr(self) -> str:
        return str(ipaddress.IPv4Network((self.gateway, self.prefix_len), strict=False))

    @property
    def size(self) -> int:
        return self.end - self.start + 1

    @classmethod
    def of(cls, row) -> "Ipv4Range":
        """The range of an IpRangeVO (or any object with its columns)."""
        return cls(start=to_int(row.startIp), end=to_int(row.endIp), gateway=to_int(row.gateway),
                   prefix_len=row.prefixLen)

    def contains(self, address: int) -> bool:
        return self.start <= address <= self.end

    def overlaps(self, start: int, end: int) -> bool:
        return self.start <= end and start <= self.end


def _subnet(address: int, prefix_len: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network((address, prefix_len), strict=False)


def check_range(start_ip: str, end_ip: str, netmask: str, gateway: str | None) -> Ipv4Range:
    """A range given by its ends, netmask and gateway, checked as ZStack does:
    IPv4 addresses, a real netmask, a gateway in the subnet of ``start_ip``
    but outside the range, ``end_ip`` in that subnet, ``start_ip <= end_ip``,
    neither the network nor the broadcast address inside, and no multicast,
    class E or link-local address."""
    if gateway is None:
        raise invalid("adding normal ip range must specify gateway ip address")
    start = to_int(start_ip, "start ip")
    end = to_int(end_ip, "end ip")
    gw = to_int(gateway, "gateway")
    prefix = prefix_of_netmask(netmask)
    _check_not_reserved(start, end)
    subnet = _subnet(start, prefix)
    if not int(subnet.network_address) < gw < int(subnet.broadcast_address):
        raise invalid(f"the gateway[{gateway}] is not in the subnet {start_ip}/{netmask}")
    if start > end:
        raise invalid(f"start ip[{start_ip}] is behind end ip[{end_ip}]")
    if not int(subnet.network_address) <= end <= int(subnet.broadcast_address):
        raise invalid(f"the endip[{end_ip}] is not in the subnet {start_ip}/{netmask}")
    if start == int(subnet.network_address) or end == int(subnet.broadcast_address):
        raise invalid(f"ip allocation can not contain network address or broadcast address: "
                      f"{subnet.network_address} and {subnet.broadcast_address} of {subnet}")
    if start <= gw <= end:
        raise invalid(f"gateway[{gateway}] can not be part of range[{start_ip}, {end_ip}]")
    return Ipv4Range(start=start, end=end, gateway=gw, prefix_len=prefix)


def _check_not_reserved(start: int, end: int) -> None:
    for low, high, reason in RESERVED_BLOCKS:
        if int(ipaddress.IPv4Address(low)) <= end and start <= int(ipaddress.IPv4Address(high)):
            raise invalid(f"the IP range[{to_text(start)} ~ {to_text(end)}] contains {reason}")


def ranges_of_cidr(network_cidr: str, gateway: str | None = None) -> list[Ipv4Range]:
    """The ranges ZStack's AddIpRangeByNetworkCidr makes of a subnet.

    Usable addresses are those between the network and the broadcast
    address. The gateway is the first usable address unless given; the
    range is the other usable addresses, split in two when the gateway is
    neither the first nor the last of them.
    """
    try:
        subnet = ipaddress.IPv4Network(network_cidr, strict=False)
    except (ipaddress.AddressValueError, ipaddress.NetmaskValueError, ValueError, TypeError):
        raise invalid(f"{network_cidr} is not a valid network cidr") from None
    if "/" not in network_cidr:
        raise invalid(f"{network_cidr} is not a valid network cidr: it needs a prefix length, "
                      f"e.g. {network_cidr}/24")
    low, high = int(subnet.network_address) + 1, int(subnet.broadcast_address) - 1
    if low > high:
        raise invalid(f"{network_cidr} is not an allowed network cidr, because it doesn't have usable ip range")
    gw = low if gateway is None else to_int(gateway, "gateway")
    if not low <= gw <= high:
        raise invalid(f"the gateway[{gateway}] is not in the subnet {subnet}")
    prefix = subnet.prefixlen
    if gw == low:
        spans = [(low + 1, high)]
    elif gw == high:
        spans = [(low, high - 1)]
    else:
        spans = [(low, gw - 1), (gw + 1, high)]
    ranges = []
    for start, end in spans:
        if start > end:
            raise invalid(f"{network_cidr} is not an allowed network cidr, because it doesn't have "
                          f"usable ip range besides the gateway {to_text(gw)}")
        _check_not_reserved(start, end)
        ranges.append(Ipv4Range(start=start, end=end, gateway=gw, prefix_len=prefix))
    return ranges


def check_ip(ip: str, what: str = "ip") -> str:
    """``ip`` in its canonical dotted form; SYS.1007 unless it is an IPv4 address."""
    return to_text(to_int(ip, what))
