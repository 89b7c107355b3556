"""IP addresses: none held twice, and nics and UsedIpVO rows pointing at each other.

The rule mirrors :mod:`mn.vm.nics` and :mod:`mn.network.ipam`: a nic's
address is a UsedIpVO row created with ``vmNicUuid`` set to the nic, and
the nic copies it (``usedIpUuid``, ``ip``); giving it back clears all of
the nic's address columns and deletes the row, in one transaction.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from sqlalchemy import func, select

from mn.check.base import CheckContext, Problem, check
from mn.db.models.network import IpRangeVO, UsedIpVO
from mn.db.models.vm import VmNicVO

NAME = "ip-addresses"


@check(NAME)
def ip_addresses(ctx: CheckContext) -> Iterator[Problem]:
    """No address is allocated twice, and every nic and its UsedIpVO agree.

    UsedIpVO is unique per (l3NetworkUuid, ip), checked even though a
    constraint exists. A UsedIpVO with vmNicUuid names an existing nic
    whose usedIpUuid is that row; a nic's usedIpUuid names an existing
    UsedIpVO of the nic's L3 network, address and uuid; a nic without
    usedIpUuid shows no ip. A UsedIpVO lies in its IP range, which is on
    its L3 network, and its ipInLong is its ip.
    """
    yield from _duplicates(ctx)
    used = {row.uuid: row for row in ctx.session.scalars(select(UsedIpVO))}
    nics = {row.uuid: row for row in ctx.session.scalars(select(VmNicVO))}
    for nic in sorted(nics.values(), key=lambda n: n.uuid):
        yield from _nic(nic, used.get(nic.usedIpUuid) if nic.usedIpUuid else None)
    ranges = {row.uuid: row for row in ctx.session.scalars(select(IpRangeVO))}
    for ip in sorted(used.values(), key=lambda u: u.uuid):
        if ip.vmNicUuid is not None:
            nic = nics.get(ip.vmNicUuid)
            if nic is None:
                yield Problem(NAME, "UsedIpVO", ip.uuid,
                              f"address {ip.ip} of L3 network {ip.l3NetworkUuid} is held for nic {ip.vmNicUuid}, "
                              f"which does not exist")
            elif nic.usedIpUuid != ip.uuid:
                yield Problem(NAME, "UsedIpVO", ip.uuid,
                              f"address {ip.ip} of L3 network {ip.l3NetworkUuid} is held for nic {nic.uuid}, "
                              f"whose usedIpUuid is {nic.usedIpUuid}: the address is held by nobody")
        yield from _in_range(ip, ranges.get(ip.ipRangeUuid))


def _duplicates(ctx: CheckContext) -> Iterator[Problem]:
    rows = ctx.session.execute(
        select(UsedIpVO.l3NetworkUuid, UsedIpVO.ip, func.count())
        .group_by(UsedIpVO.l3NetworkUuid, UsedIpVO.ip).having(func.count() > 1)
        .order_by(UsedIpVO.l3NetworkUuid, UsedIpVO.ip))
    for l3_uuid, ip, count in rows:
        holders = ctx.session.scalars(select(UsedIpVO.vmNicUuid).where(
            UsedIpVO.l3NetworkUuid == l3_uuid, UsedIpVO.ip == ip).order_by(UsedIpVO.uuid))
        yield Problem(NAME, "L3NetworkVO", l3_uuid,
                      f"address {ip} of L3 network {l3_uuid} is allocated {count} times (nics: "
                      f"{', '.join(str(h) for h in holders)})")


def _nic(nic: VmNicVO, ip: UsedIpVO | None) -> Iterator[Problem]:
    if nic.usedIpUuid is None:
        if nic.ip is not None:
            yield Problem(NAME, "VmNicVO", nic.uuid,
                          f"nic {nic.uuid} shows address {nic.ip} but holds none (usedIpUuid is NULL)")
        return
    if ip is None:
        yield Problem(NAME, "VmNicVO", nic.uuid,
                      f"nic {nic.uuid} holds UsedIpVO {nic.usedIpUuid} ({nic.ip}), which does not exist")
        return
    wrong = []
    if ip.ip != nic.ip:
        wrong.append(f"its address is {ip.ip}, the nic shows {nic.ip}")
    if ip.l3NetworkUuid != nic.l3NetworkUuid:
        wrong.append(f"it is on L3 network {ip.l3NetworkUuid}, the nic on {nic.l3NetworkUuid}")
    if ip.vmNicUuid != nic.uuid:
        wrong.append(f"it is held for nic {ip.vmNicUuid}")
    if wrong:
        yield Problem(NAME, "VmNicVO", nic.uuid,
                      f"nic {nic.uuid} holds UsedIpVO {ip.uuid}, but " + "; ".join(wrong))


def _in_range(ip: UsedIpVO, ip_range: IpRangeVO | None) -> Iterator[Problem]:
    try:
        value = int(ipaddress.IPv4Address(ip.ip))
    except ValueError:
        yield Problem(NAME, "UsedIpVO", ip.uuid, f"UsedIpVO {ip.uuid}: {ip.ip!r} is not an IPv4 address")
        return
    if value != ip.ipInLong:
        yield Problem(NAME, "UsedIpVO", ip.uuid,
                      f"address {ip.ip} has ipInLong {ip.ipInLong}, not {value}: allocation would not see it")
    if ip_range is None:
        yield Problem(NAME, "UsedIpVO", ip.uuid,
                      f"address {ip.ip} belongs to IP range {ip.ipRangeUuid}, which does not exist")
        return
    start, end = int(ipaddress.IPv4Address(ip_range.startIp)), int(ipaddress.IPv4Address(ip_range.endIp))
    if ip_range.l3NetworkUuid != ip.l3NetworkUuid or not start <= value <= end:
        yield Problem(NAME, "UsedIpVO", ip.uuid,
                      f"address {ip.ip} of L3 network {ip.l3NetworkUuid} is outside its IP range "
                      f"{ip_range.uuid} ({ip_range.startIp}-{ip_range.endIp} of L3 network "
                      f"{ip_range.l3NetworkUuid})")
