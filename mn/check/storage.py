"""Primary storage capacity: what PrimaryStorageCapacityVO says is used equals what volumes hold.

The rule mirrors :mod:`mn.volume.placement` and
:mod:`mn.storage.primary.capacity`: a volume holds ``size`` bytes of its
primary storage exactly while its ``primaryStorageUuid`` is set (placing
and unplacing change that column in the transaction that reserves or
releases), whatever its status (a destroyed VM's root volume, ``Deleted``,
keeps its bytes until expunged).

LocalStorage has no capacity of its own: it is the sum of its hosts'
shares (LocalStorageHostRefVO), and a volume's bytes come from the share
of the host recorded for it in LocalStorageResourceRefVO. When a host
leaves, its share and records go and the storage shrinks by the share
(:func:`mn.storage.primary.local.remove_host_share`); volumes left on it
then hold nothing anywhere, by design, so a volume without a record is
not a problem here.

SimulatorPrimaryStorage is added with a total and an available capacity of
the creator's choosing (ZStack's defaults: 100000000 and 10000000), and
what was used at that moment is not recorded. So by default only "more
held than used" is a problem there; with ``strict_storage`` (the storage
was added empty) "more used than held" is one too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from sqlalchemy import func, select

from mn.check.base import CheckContext, Problem, check
from mn.db.models.storage import (
    LOCAL_STORAGE_TYPE,
    LocalStorageHostRefVO,
    LocalStorageResourceRefVO,
    PrimaryStorageCapacityVO,
    PrimaryStorageVO,
)
from mn.db.models.volume import VolumeVO

NAME = "primary-storage-capacity"
PS = "PrimaryStorageVO"
VOLUME_RESOURCE_TYPE = VolumeVO.__tablename__


@check(NAME)
def primary_storage_capacity(ctx: CheckContext) -> Iterator[Problem]:
    """Each primary storage's used capacity equals what its volumes hold.

    0 <= availableCapacity <= totalCapacity everywhere. Non-LocalStorage:
    used (total - available) is at least the sum of the sizes of the
    volumes whose primaryStorageUuid is the storage, and equal to it with
    --strict-storage. LocalStorage: the storage's total and available are
    the sums of its hosts' shares; each share's used equals the sizes
    recorded on that host (LocalStorageResourceRefVO); each volume record
    names a volume on this storage of the recorded size, once, on a host
    that has a share.
    """
    session = ctx.session
    capacities = {row.uuid: row for row in session.scalars(select(PrimaryStorageCapacityVO))}
    held = dict(session.execute(select(VolumeVO.primaryStorageUuid, func.coalesce(func.sum(VolumeVO.size), 0))
                                .where(VolumeVO.primaryStorageUuid.is_not(None))
                                .group_by(VolumeVO.primaryStorageUuid)).all())
    for ps_uuid, ps_type in session.execute(select(PrimaryStorageVO.uuid, PrimaryStorageVO.type)
                                            .order_by(PrimaryStorageVO.uuid)):
        cap = capacities.get(ps_uuid)
        on_it = int(held.get(ps_uuid) or 0)
        if cap is None:
            if on_it:
                yield Problem(NAME, PS, ps_uuid, f"primary storage {ps_uuid} has no PrimaryStorageCapacityVO "
                                                 f"row but its volumes hold {on_it} bytes")
            continue
        yield from _bounds(PS, ps_uuid, f"primary storage {ps_uuid}", cap.totalCapacity, cap.availableCapacity)
        if ps_type == LOCAL_STORAGE_TYPE:
            yield from _local(ctx, ps_uuid, cap)
        else:
            yield from _shared(ctx, ps_uuid, cap, on_it)


def _bounds(resource_type: str, uuid: str, what: str, total: int, available: int) -> Iterator[Problem]:
    if available < 0:
        yield Problem(NAME, resource_type, uuid, f"{what}: availableCapacity {available} is below zero")
    if available > total:
        yield Problem(NAME, resource_type, uuid,
                      f"{what}: availableCapacity {available} is above totalCapacity {total}")


def _shared(ctx: CheckContext, ps_uuid: str, cap: PrimaryStorageCapacityVO, on_it: int) -> Iterator[Problem]:
    used = cap.totalCapacity - cap.availableCapacity
    if used < on_it or (ctx.strict_storage and used != on_it):
        yield Problem(NAME, PS, ps_uuid,
                      f"primary storage {ps_uuid}: used {used} bytes (total {cap.totalCapacity} - available "
                      f"{cap.availableCapacity}) but its volumes hold {on_it}")


def _local(ctx: CheckContext, ps_uuid: str, cap: PrimaryStorageCapacityVO) -> Iterator[Problem]:
    session = ctx.session
    share, record = LocalStorageHostRefVO, LocalStorageResourceRefVO
    shares = list(session.execute(select(share.hostUuid, share.totalCapacity, share.availableCapacity)
                                  .where(share.primaryStorageUuid == ps_uuid).order_by(share.hostUuid)))
    total, available = sum(s.totalCapacity for s in shares), sum(s.availableCapacity for s in shares)
    if (cap.totalCapacity, cap.availableCapacity) != (total, available):
        yield Problem(NAME, PS, ps_uuid,
                      f"local storage {ps_uuid}: total {cap.totalCapacity} and available "
                      f"{cap.availableCapacity} but its {len(shares)} host share(s) add up to total {total} "
                      f"and available {available}")
    records = list(session.execute(select(record.resourceUuid, record.hostUuid, record.size, record.resourceType)
                                   .where(record.primaryStorageUuid == ps_uuid)
                                   .order_by(record.hostUuid, record.resourceUuid)))
    recorded: dict[str, int] = defaultdict(int)
    for r in records:
        recorded[r.hostUuid] += r.size
    for s in shares:
        what = f"local storage {ps_uuid} on host {s.hostUuid}"
        yield from _bounds(PS, ps_uuid, what, s.totalCapacity, s.availableCapacity)
        used = s.totalCapacity - s.availableCapacity
        if used != recorded.get(s.hostUuid, 0):
            yield Problem(NAME, PS, ps_uuid,
                          f"{what}: used {used} bytes (total {s.totalCapacity} - available {s.availableCapacity}) "
                          f"but the volumes recorded there hold {recorded.get(s.hostUuid, 0)}")
    yield from _records(ctx, ps_uuid, {s.hostUuid for s in shares}, records)


def _records(ctx: CheckContext, ps_uuid: str, share_hosts: set[str], records: list) -> Iterator[Problem]:
    volumes = [r for r in records if r.resourceType == VOLUME_RESOURCE_TYPE]
    found, sizes = {}, {}
    for uuid, on_ps, size in ctx.session.execute(
            select(VolumeVO.uuid, VolumeVO.primaryStorageUuid, VolumeVO.size)
            .where(VolumeVO.uuid.in_([r.resourceUuid for r in volumes]))):
        found[uuid], sizes[uuid] = on_ps, size
    hosts_of: dict[str, list[str]] = defaultdict(list)
    for r in records:
        hosts_of[r.resourceUuid].append(r.hostUuid)
        if r.hostUuid not in share_hosts:
            yield Problem(NAME, PS, ps_uuid,
                          f"local storage {ps_uuid}: {r.resourceType} {r.resourceUuid} ({r.size} bytes) is "
                          f"recorded on host {r.hostUuid}, which has no share of it: those bytes are counted "
                          f"nowhere")
    for r in volumes:
        if r.resourceUuid not in found:
            yield Problem(NAME, PS, ps_uuid,
                          f"local storage {ps_uuid} on host {r.hostUuid}: {r.size} bytes are recorded for volume "
                          f"{r.resourceUuid}, which does not exist")
        elif found[r.resourceUuid] != ps_uuid:
            yield Problem(NAME, "VolumeVO", r.resourceUuid,
                          f"volume {r.resourceUuid} is recorded on local storage {ps_uuid} (host {r.hostUuid}, "
                          f"{r.size} bytes) but its primaryStorageUuid is {found[r.resourceUuid]}")
        elif sizes[r.resourceUuid] != r.size:
            yield Problem(NAME, "VolumeVO", r.resourceUuid,
                          f"volume {r.resourceUuid} has size {sizes[r.resourceUuid]} but local storage {ps_uuid} "
                          f"records {r.size} bytes for it on host {r.hostUuid}")
    for resource_uuid, hosts in sorted(hosts_of.items()):
        if len(hosts) > 1:
            yield Problem(NAME, PS, ps_uuid,
                          f"local storage {ps_uuid}: {resource_uuid} is recorded on {len(hosts)} hosts "
                          f"({', '.join(sorted(hosts))})")
