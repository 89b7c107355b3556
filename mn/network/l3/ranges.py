"""IP ranges of an L3 network: what a new range must respect, given the others.

The shape of a range alone is checked by :mod:`mn.network.ipv4`; here are
ZStack's rules against existing ranges: no overlap with any range of any
L3 network on the same L2 network (they share one broadcast domain), and
within one L3 network a single CIDR and a single gateway.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mn.db.models.network import IPV4, IpRangeVO, L2NetworkVO, L3NetworkVO
from mn.errors import OperationError, SysErrors
from mn.network.ipv4 import Ipv4Range, check_range, invalid, ranges_of_cidr


def requested_ranges(msg) -> list[Ipv4Range]:
    """The ranges an AddIpRange or AddIpRangeByNetworkCidr message asks for, shape-checked."""
    if hasattr(msg, "networkCidr"):
        return ranges_of_cidr(msg.networkCidr, msg.gateway)
    return [check_range(msg.startIp, msg.endIp, msg.netmask, msg.gateway)]


def check_against_existing(session: Session, l3: L3NetworkVO, new: list[Ipv4Range]) -> None:
    """Raise SYS.1007 if ``new`` ranges conflict with the ranges of the L3 networks of ``l3``'s L2."""
    neighbours = select(L3NetworkVO.uuid).where(L3NetworkVO.l2NetworkUuid == l3.l2NetworkUuid)
    existing = session.scalars(select(IpRangeVO).where(IpRangeVO.l3NetworkUuid.in_(neighbours),
                                                       IpRangeVO.ipVersion == IPV4)
                               .order_by(IpRangeVO.createDate, IpRangeVO.uuid)).all()
    for candidate in new:
        for row in existing:
            other = Ipv4Range.of(row)
            if other.overlaps(candidate.start, candidate.end):
                raise invalid(f"overlap with ip range[uuid:{row.uuid}, start ip:{row.startIp}, end ip: {row.endIp}]")
            if row.l3NetworkUuid != l3.uuid:
                continue
            if other.network_cidr != candidate.network_cidr:
                raise invalid(f"multiple CIDR on the same L3 network is not allowed. There has been a IP range"
                              f"[uuid:{row.uuid}, CIDR:{other.network_cidr}], the new IP range"
                              f"[CIDR:{candidate.network_cidr}] is not in the CIDR with the existing one")
            if row.gateway != candidate.gateway_ip:
                raise invalid(f"new add ip range gateway {candidate.gateway_ip} is different from old gateway "
                              f"{row.gateway}")


def lock_for_new_ranges(session: Session, l3_network_uuid: str) -> L3NetworkVO:
    """The L3 network, with its L2 network's row locked exclusively: ranges are
    added to the L3 networks of one L2 network one at a time, on every MN,
    so the overlap check holds until the new ranges are committed."""
    l3 = session.get(L3NetworkVO, l3_network_uuid)
    if l3 is None:
        raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                                f"unable to find L3 network[uuid:{l3_network_uuid}], it may have been deleted")
    session.scalars(select(L2NetworkVO.uuid).where(L2NetworkVO.uuid == l3.l2NetworkUuid).with_for_update()).first()
    return l3


def new_range_row(l3: L3NetworkVO, span: Ipv4Range, name: str, description: str | None) -> IpRangeVO:
    return IpRangeVO(l3NetworkUuid=l3.uuid, name=name, description=description, startIp=span.start_ip,
                     endIp=span.end_ip, netmask=span.netmask, gateway=span.gateway_ip,
                     networkCidr=span.network_cidr, ipVersion=IPV4, prefixLen=span.prefix_len)
