"""IP address management: allocate and release addresses of L3 networks (IPv4).

Both functions are synchronous and take an SQLAlchemy session, so a caller
composes them with its own work in one transaction::

    used = await node.db.run(lambda s: allocate_ip(s, l3_uuid, vm_nic_uuid=nic_uuid))

Why an address is never handed out twice, even by several management
nodes at once: ``UsedIpVO`` has ``UNIQUE (l3NetworkUuid, ip)``, so two
transactions can never both hold one address. Allocators of one L3 network
also take turns: each first locks the network's IpRangeVO rows exclusively
(``SELECT ... FOR UPDATE``) until its transaction ends, so it searches
addresses no other allocator is inserting. Without that turn-taking,
allocators racing for the last addresses of a network collide on the
unique key, and InnoDB's duplicate-key checks take gap locks that make the
colliding transactions deadlock (seen with 8 allocators on 10 addresses).
The unique key stays the guarantee: an insert that still collides (SQLite
takes no row locks; a writer that skips the ranges' lock) is undone alone,
inside a SAVEPOINT on MariaDB (SQLite undoes just the failed statement by
itself, and pysqlite's SAVEPOINT cannot be a transaction's first write:
releasing it would commit), and the allocator tries another address.

Why it stays fast with many addresses in use: the search starts at a
random address and finds the next free one in one SQL query: an index
probe of the start and an ordered scan of ``(ipRangeUuid, ipInLong)`` from
it that stops at the first gap. The cost is the run of used addresses after
the random start (a few rows when used addresses are spread, at worst the
longest contiguous block), not the number of addresses in use.

Callers: keep the transaction short, since allocations of one L3 network
wait for it to end; nics can be inserted before or after (no lock of the
L3 network row itself is taken). Allocating on several L3 networks in one
transaction takes their ranges' locks one network after the other; do it
in a fixed order (e.g. sorted L3 uuids) or concurrent transactions taking
them in opposite orders may deadlock (MariaDB then rolls one back).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from sqlalchemy import BigInteger, and_, bindparam, delete, exists, func, insert, select, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, make_transient_to_detached

from mn.db.models.network import IPV4, IpRangeVO, L3NetworkVO, UsedIpVO
from mn.db.types import utcnow
from mn.errors import OperationError, SysErrors
from mn.ids import new_uuid
from mn.network.ipv4 import Ipv4Range, invalid, to_int, to_text

#: Inserts an allocation tries before giving up. Each failed insert means a
#: transaction that did not wait for its turn got that address first.
MAX_ATTEMPTS = 64

#: ``usedFor`` of addresses of VM nics (ZStack's IpAllocatedReason.Vm).
USED_FOR_VM = "Vm"

#: Used addresses read per query while listing free ones.
_SCAN_CHUNK = 1000

_random = random.Random()


def allocate_ip(session: Session, l3_network_uuid: str, *, ip: str | None = None,
                used_for: str = USED_FOR_VM, vm_nic_uuid: str | None = None) -> UsedIpVO:
    """Take a free address of the L3 network (``ip`` if given) and return its UsedIpVO.

    A free address is any address of the network's IP ranges that no
    UsedIpVO holds; gateways, network and broadcast addresses are never in
    a range. Other allocations on this L3 network wait until the caller's
    transaction ends. Raises OperationError:

    * SYS.1003 if the L3 network does not exist;
    * SYS.1007 if ``ip`` is not an IPv4 address, is a gateway of the
      network or is in none of its ranges;
    * SYS.1006 if ``ip`` is already in use, if the network has no free
      address ("L3 network[uuid:...] has no free IP address"), or if
      other transactions took every address tried.
    """
    # Shared on the network, before its ranges: deleting it waits for us
    # rather than deadlocking with our insert's foreign-key check.
    if session.scalars(_LOCK_NETWORK, {"l3": l3_network_uuid}).first() is None:
        raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                                f"unable to find L3 network[uuid:{l3_network_uuid}], it may have been deleted")
    # Our turn on this network: its other allocators wait for our transaction
    # to end (and its ranges cannot be deleted under us).
    rows = session.scalars(_LOCK_RANGES, {"l3": l3_network_uuid}).all()
    ranges = [(row, Ipv4Range.of(row)) for row in rows]
    if ip is not None:
        return _allocate_requested(session, l3_network_uuid, ranges, ip, used_for, vm_nic_uuid)
    if not ranges:
        raise _no_free_ip(l3_network_uuid, "it has no IP range")
    for _ in range(MAX_ATTEMPTS):
        found = _find_free(session, ranges)
        if found is None:
            raise _no_free_ip(l3_network_uuid, f"all {sum(r.size for _, r in ranges)} addresses of its "
                                               f"IP ranges are in use")
        row, address = found
        used = _insert(session, row, address, used_for, vm_nic_uuid)
        if used is not None:
            return used
    raise OperationError.of(SysErrors.OPERATION_ERROR,
                            f"could not allocate an IP address of L3 network[uuid:{l3_network_uuid}]: "
                            f"other transactions took each of the {MAX_ATTEMPTS} addresses tried; try again")


def release_ip(session: Session, used_ip_uuid: str) -> None:
    """Return the address held by UsedIpVO ``used_ip_uuid``; nothing happens if it is gone already."""
    session.execute(delete(UsedIpVO).where(UsedIpVO.uuid == used_ip_uuid),
                    execution_options={"synchronize_session": False})


def free_addresses(session: Session, ip_range: IpRangeVO, start: int, limit: int) -> list[int]:
    """Up to ``limit`` free addresses of ``ip_range`` from ``start`` on, ascending."""
    span = Ipv4Range.of(ip_range)
    current, found = max(start, span.start), []
    while current <= span.end and len(found) < limit:
        used = session.scalars(select(UsedIpVO.ipInLong)
                               .where(UsedIpVO.ipRangeUuid == ip_range.uuid, UsedIpVO.ipInLong >= current,
                                      UsedIpVO.ipInLong <= span.end)
                               .order_by(UsedIpVO.ipInLong).limit(_SCAN_CHUNK)).all()
        last_chunk = len(used) < _SCAN_CHUNK
        # The addresses before each used one are free; after the last chunk, all the rest.
        for stop in [*used, span.end + 1] if last_chunk else used:
            while current < stop and len(found) < limit:
                found.append(current)
                current += 1
            current = stop + 1
        if last_chunk:
            break
    return found


# -- internals ------------------------------------------------------------------


def _no_free_ip(l3_network_uuid: str, why: str) -> OperationError:
    return OperationError.of(SysErrors.OPERATION_ERROR,
                             f"L3 network[uuid:{l3_network_uuid}] has no free IP address: {why}")


def _allocate_requested(session: Session, l3_network_uuid: str, ranges: Sequence[tuple[IpRangeVO, Ipv4Range]],
                        ip: str, used_for: str, vm_nic_uuid: str | None) -> UsedIpVO:
    address = to_int(ip, "ip")
    if any(span.gateway == address for _, span in ranges):
        raise invalid(f"IP[{ip}] is the gateway of L3 network[uuid:{l3_network_uuid}] and cannot be allocated")
    row = next((row for row, span in ranges if span.contains(address)), None)
    if row is None:
        shown = ", ".join(f"{span.start_ip}-{span.end_ip}" for _, span in ranges) or "none"
        raise invalid(f"IP[{ip}] is not in any IP range of L3 network[uuid:{l3_network_uuid}] "
                      f"(its ranges: {shown})")
    used = _insert(session, row, address, used_for, vm_nic_uuid)
    if used is None:
        raise OperationError.of(SysErrors.OPERATION_ERROR,
                                f"IP[{to_text(address)}] of L3 network[uuid:{l3_network_uuid}] is already in use")
    return used


def _find_free(session: Session, ranges: Sequence[tuple[IpRangeVO, Ipv4Range]]) -> tuple[IpRangeVO, int] | None:
    """A free address at or after a random one, wrapping around all ranges."""
    offset = _random.randrange(sum(span.size for _, span in ranges))
    first = 0
    while offset >= ranges[first][1].size:
        offset -= ranges[first][1].size
        first += 1
    row, span = ranges[first]
    pivot = span.start + offset
    segments = [(row, pivot, span.end)]
    segments += [(r, s.start, s.end) for r, s in ranges[first + 1:]]
    segments += [(r, s.start, s.end) for r, s in ranges[:first]]
    if pivot > span.start:
        segments.append((row, span.start, pivot - 1))
    for segment_row, low, high in segments:
        address = _first_free(session, segment_row.uuid, low, high)
        if address is not None:
            return segment_row, address
    return None


def _first_free_statement():
    """The query of :func:`_first_free`, with the range and bounds as parameters."""
    # ``low`` if it is free; else the successor of the first used address
    # whose successor is free: the end of the run of used addresses from
    # ``low``. A LEFT JOIN, not NOT EXISTS: MariaDB materializes a NOT EXISTS
    # over the whole range (every used address, each time), while this join
    # probes the successor of each row by index and stops at the first gap.
    range_uuid = bindparam("range_uuid")
    low, high = bindparam("low", type_=BigInteger), bindparam("high", type_=BigInteger)
    taken = exists().where(UsedIpVO.ipRangeUuid == range_uuid, UsedIpVO.ipInLong == low)
    at_low = select(low.label("address")).where(~taken)
    used, successor = aliased(UsedIpVO), aliased(UsedIpVO)
    after_run = (
        select((used.ipInLong + 1).label("address"))
        .outerjoin(successor, and_(successor.ipRangeUuid == used.ipRangeUuid,
                                   successor.ipInLong == used.ipInLong + 1))
        .where(used.ipRangeUuid == range_uuid, used.ipInLong >= low, used.ipInLong < high,
               successor.uuid.is_(None))
        .order_by(used.ipInLong).limit(1).subquery())
    candidates = union_all(at_low, select(after_run.c.address)).subquery()
    return select(func.min(candidates.c.address))


# Built once: an allocation runs them while it holds its network's turn, and
# building these (aliases, a union) costs several times what running them does.
_FIRST_FREE = _first_free_statement()
_LOCK_NETWORK = (select(L3NetworkVO.uuid).where(L3NetworkVO.uuid == bindparam("l3"))
                 .with_for_update(read=True))
_LOCK_RANGES = (select(IpRangeVO).where(IpRangeVO.l3NetworkUuid == bindparam("l3"))
                .order_by(IpRangeVO.createDate, IpRangeVO.uuid).with_for_update())
_INSERT_USED = insert(UsedIpVO.__table__)  # the table: no ORM bulk-insert machinery


def _first_free(session: Session, range_uuid: str, low: int, high: int) -> int | None:
    """The lowest free address in ``low``..``high`` of one range, or None (one query)."""
    return session.scalar(_FIRST_FREE, {"range_uuid": range_uuid, "low": low, "high": high})


def _insert(session: Session, row: IpRangeVO, address: int, used_for: str,
            vm_nic_uuid: str | None) -> UsedIpVO | None:
    """Insert the UsedIpVO of ``address``; None if another transaction holds it."""
    now = utcnow()
    values = dict(uuid=new_uuid(), ipRangeUuid=row.uuid, l3NetworkUuid=row.l3NetworkUuid, ipVersion=IPV4,
                  ip=to_text(address), gateway=row.gateway, netmask=row.netmask, ipInLong=address,
                  usedFor=used_for, vmNicUuid=vm_nic_uuid, metaData=None, createDate=now, lastOpDate=now)
    try:
        # No savepoint: a duplicate key undoes this statement only (InnoDB and
        # SQLite alike), and the two round trips of one would be spent while
        # this network's ranges are locked.
        session.execute(_INSERT_USED, values)
    except IntegrityError:
        return None
    # The row as the session's own object, without reading it back.
    used = UsedIpVO(**values)
    make_transient_to_detached(used)
    session.add(used)
    return used
