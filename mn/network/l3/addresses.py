"""Read-only answers about the addresses of L3 networks: free addresses,
whether one address is available, and capacity (ZStack's GetFreeIp,
CheckIpAvailability and GetIpAddressCapacity)."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mn.db.models.network import IpRangeVO, L3NetworkVO, UsedIpVO
from mn.db.models.zone import ZoneVO
from mn.network.ipam import free_addresses
from mn.network.ipv4 import Ipv4Range, to_int, to_text
from mn.network.l3.inventory import FreeIpInventory
from mn.network.l3.messages import (
    MAX_FREE_IPS,
    APICheckIpAvailabilityReply,
    APIGetIpAddressCapacityMsg,
    APIGetIpAddressCapacityReply,
    APIGetFreeIpMsg,
    IpCapacityData,
)

#: ZStack's IpNotAvailabilityReason texts.
REASON_GATEWAY = "it is gateway"
REASON_NOT_IN_RANGE = "it is not in this range"
REASON_USED = "it is used"


def free_ips(session: Session, msg: APIGetFreeIpMsg) -> list[FreeIpInventory]:
    """Free addresses of the message's range, or of its L3 network's ranges in order."""
    limit = MAX_FREE_IPS if msg.limit < 0 else min(msg.limit, MAX_FREE_IPS)
    start = to_int(msg.start, "start") if msg.start is not None else 0
    if msg.ipRangeUuid is not None:
        ranges = [session.get(IpRangeVO, msg.ipRangeUuid)]
    else:
        ranges = session.scalars(select(IpRangeVO).where(IpRangeVO.l3NetworkUuid == msg.l3NetworkUuid)
                                 .order_by(IpRangeVO.createDate, IpRangeVO.uuid)).all()
    found: list[FreeIpInventory] = []
    for row in ranges:
        if row is None or len(found) >= limit:
            continue
        for address in free_addresses(session, row, start, limit - len(found)):
            found.append(FreeIpInventory(ipRangeUuid=row.uuid, ip=to_text(address), netmask=row.netmask,
                                         gateway=row.gateway))
    return found


def check_availability(session: Session, l3_network_uuid: str, ip: str,
                       range_check: bool = True) -> APICheckIpAvailabilityReply:
    """ZStack's checkIpAvailability: not a gateway, in a range (unless
    ``range_check`` is off or the network has no range), and not in use."""
    address = to_int(ip, "ip")
    canonical = to_text(address)
    ranges = [Ipv4Range.of(row) for row in session.scalars(
        select(IpRangeVO).where(IpRangeVO.l3NetworkUuid == l3_network_uuid))]
    if any(span.gateway == address for span in ranges):
        return APICheckIpAvailabilityReply(available=False, reason=REASON_GATEWAY)
    if range_check and ranges and not any(span.contains(address) for span in ranges):
        return APICheckIpAvailabilityReply(available=False, reason=REASON_NOT_IN_RANGE)
    used = session.scalar(select(UsedIpVO.uuid).where(UsedIpVO.l3NetworkUuid == l3_network_uuid,
                                                      UsedIpVO.ip == canonical))
    if used is not None:
        return APICheckIpAvailabilityReply(available=False, reason=REASON_USED)
    return APICheckIpAvailabilityReply(available=True, reason="")


def capacity(session: Session, msg: APIGetIpAddressCapacityMsg) -> APIGetIpAddressCapacityReply:
    """Totals and per-resource capacity of the first non-empty of ``ipRangeUuids``,
    ``l3NetworkUuids`` and ``zoneUuids`` (every zone with ``all``)."""
    if msg.ipRangeUuids:
        resource_type, uuids = IpRangeVO.__tablename__, msg.ipRangeUuids
        range_owner, used_owner = IpRangeVO.uuid, UsedIpVO.ipRangeUuid
    elif msg.l3NetworkUuids:
        resource_type, uuids = L3NetworkVO.__tablename__, msg.l3NetworkUuids
        range_owner, used_owner = IpRangeVO.l3NetworkUuid, UsedIpVO.l3NetworkUuid
    else:
        resource_type = ZoneVO.__tablename__
        uuids = msg.zoneUuids or list(session.scalars(select(ZoneVO.uuid).order_by(ZoneVO.uuid)))
        range_owner = used_owner = L3NetworkVO.zoneUuid
    # Both joined to the L3 network, which is what knows its zone.
    total: dict[str, int] = defaultdict(int)
    for owner, start_ip, end_ip in session.execute(
            select(range_owner, IpRangeVO.startIp, IpRangeVO.endIp)
            .join(L3NetworkVO, L3NetworkVO.uuid == IpRangeVO.l3NetworkUuid).where(range_owner.in_(uuids))):
        total[owner] += to_int(end_ip) - to_int(start_ip) + 1
    # Distinct addresses, as ZStack counts them.
    used = {owner: count for owner, count in session.execute(
        select(used_owner, func.count(UsedIpVO.ip.distinct()))
        .join(L3NetworkVO, L3NetworkVO.uuid == UsedIpVO.l3NetworkUuid).where(used_owner.in_(uuids))
        .group_by(used_owner))}
    reply = APIGetIpAddressCapacityReply(resourceType=resource_type)
    for uuid in dict.fromkeys(uuids):
        if uuid not in total and uuid not in used:
            continue
        size, taken = total[uuid], used.get(uuid, 0)
        reply.capacityData.append(IpCapacityData(
            resourceUuid=uuid, totalCapacity=size, availableCapacity=size - taken, usedIpAddressNumber=taken,
            ipv4TotalCapacity=size, ipv4AvailableCapacity=size - taken, ipv4UsedIpAddressNumber=taken))
    size = sum(d.totalCapacity for d in reply.capacityData)
    taken = sum(d.usedIpAddressNumber for d in reply.capacityData)
    reply.totalCapacity = reply.ipv4TotalCapacity = size
    reply.usedIpAddressNumber = reply.ipv4UsedIpAddressNumber = taken
    reply.availableCapacity = reply.ipv4AvailableCapacity = size - taken
    return reply
