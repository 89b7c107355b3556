"""LocalStorage accounting: each host's disk is its share of the storage.

A LocalStorage primary storage has no disk of its own: every host of every
cluster it is attached to brings one, recorded as a LocalStorageHostRefVO
row (the host's share), and the storage's PrimaryStorageCapacityVO is the
sum of its shares. Shares come and go with hosts and attachments:

* attaching a LocalStorage to a cluster gives each host of the cluster a
  share (:func:`attach_local_storage`); detaching takes them away
  (:func:`detach_local_storage`);
* a host added to a cluster gets a share of each LocalStorage attached to
  the cluster: the host service calls :func:`ensure_local_storage_refs`
  inside the transaction that adds the host;
* a deleted host's shares leave with it (the cascade extension in
  :mod:`mn.storage.primary.cascade` calls :func:`remove_hosts_from_local_storage`).

Simulator hosts have no disk to measure: each share is
:data:`SIMULATOR_HOST_CAPACITY` bytes (a global config), less what resources
recorded on that host already hold.

Every change locks the storage's capacity row first (see
:mod:`mn.storage.primary.capacity`), so it never interleaves with a
reservation or another change on the same storage. A host joining a
cluster and the cluster being attached at the same moment are ordered by
the cluster row: attach and detach lock it exclusively before anything
else, and :func:`ensure_local_storage_refs` takes a shared lock on it, so
one of them always sees the other's work.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.orm import Session

from mn.db.models.cluster import ClusterVO
from mn.db.models.host import HostVO
from mn.db.models.storage import (
    LOCAL_STORAGE_TYPE,
    LocalStorageHostRefVO,
    LocalStorageResourceRefVO,
    PrimaryStorageCapacityVO,
    PrimaryStorageClusterRefVO,
    PrimaryStorageVO,
)
from mn.errors import OperationError, SysErrors
from mn.globalconfig import GlobalConfig, at_least
from mn.storage.primary.capacity import lock_capacity

#: ZStack's category of LocalStorage settings (LocalStoragePrimaryStorageGlobalConfig).
CATEGORY = "localStoragePrimaryStorage"

#: 1 TiB.
TIB = 1 << 40

#: Bytes of local disk a Simulator host gives each LocalStorage attached to its
#: cluster. Read when the host's share is created (a change applies to shares
#: created afterwards, not to existing ones).
SIMULATOR_HOST_CAPACITY = GlobalConfig(
    CATEGORY, "simulator.hostCapacity", int, TIB,
    description="Bytes of local disk each Simulator host gives every LocalStorage primary storage "
                "attached to its cluster (simulated hosts have no disk to measure); applies to "
                "shares created after a change",
    validators=[at_least(0)])

_NO_SYNC = {"synchronize_session": False}

#: Capacity columns a host's share adds to its storage's capacity row.
_SUMMED = ("totalCapacity", "availableCapacity", "totalPhysicalCapacity", "availablePhysicalCapacity",
           "systemUsedCapacity")


def hosts_of_cluster(session: Session, cluster_uuid: str) -> list[str]:
    return list(session.scalars(select(HostVO.uuid).where(HostVO.clusterUuid == cluster_uuid)
                                .order_by(HostVO.uuid)))


def local_storages_of_cluster(session: Session, cluster_uuid: str) -> list[str]:
    """LocalStorage primary storage attached to the cluster, in uuid order (the lock order)."""
    ref = PrimaryStorageClusterRefVO
    return list(session.scalars(
        select(PrimaryStorageVO.uuid).join(ref, ref.primaryStorageUuid == PrimaryStorageVO.uuid)
        .where(ref.clusterUuid == cluster_uuid, PrimaryStorageVO.type == LOCAL_STORAGE_TYPE)
        .order_by(PrimaryStorageVO.uuid)))


def ensure_local_storage_refs(session: Session, host_uuid: str, *, capacity: int | None = None) -> list[str]:
    """Give the host its share of every LocalStorage attached to its cluster.

    Call it in the transaction that adds the host, after the HostVO row is
    flushed. ``capacity`` is the host's disk in bytes (default: the
    Simulator's :data:`SIMULATOR_HOST_CAPACITY`). Shares the host already
    has are left alone. Returns the uuids of the storage that got a new
    share. RESOURCE_NOT_FOUND if there is no such host.
    """
    cluster_uuid = session.scalar(select(HostVO.clusterUuid).where(HostVO.uuid == host_uuid))
    if cluster_uuid is None:
        raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                                f"unable to find host[uuid:{host_uuid}], it may have been deleted")
    # A shared lock on the cluster: an attach or detach of a LocalStorage
    # (which locks the row exclusively) either committed before this read,
    # and its ref is seen below, or waits for this transaction and then
    # sees this host.
    session.execute(select(ClusterVO.uuid).where(ClusterVO.uuid == cluster_uuid).with_for_update(read=True))
    return [ps_uuid for ps_uuid in local_storages_of_cluster(session, cluster_uuid)
            if add_host_share(session, ps_uuid, host_uuid, capacity=capacity)]


def add_host_share(session: Session, ps_uuid: str, host_uuid: str, *, capacity: int | None = None) -> bool:
    """Add the host's share to the LocalStorage; False if it has one already (or the storage is gone).

    The share is ``capacity`` bytes (default :data:`SIMULATOR_HOST_CAPACITY`);
    what resources recorded on that host of the storage hold is not
    available.
    """
    total = SIMULATOR_HOST_CAPACITY.value if capacity is None else capacity
    if not isinstance(total, int) or total < 0:
        raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                f"a host's local disk must be at least 0 bytes, not {total!r}")
    if not lock_capacity(session, ps_uuid):
        return False
    share = LocalStorageHostRefVO
    if session.scalar(select(share.hostUuid).where(share.hostUuid == host_uuid,
                                                   share.primaryStorageUuid == ps_uuid)) is not None:
        return False
    record = LocalStorageResourceRefVO
    used = session.scalar(select(func.coalesce(func.sum(record.size), 0))
                          .where(record.primaryStorageUuid == ps_uuid, record.hostUuid == host_uuid))
    available = max(total - int(used), 0)
    values = {"totalCapacity": total, "availableCapacity": available, "totalPhysicalCapacity": total,
              "availablePhysicalCapacity": available, "systemUsedCapacity": 0}
    session.execute(insert(share).values(hostUuid=host_uuid, primaryStorageUuid=ps_uuid, **values))
    _add_to_storage(session, ps_uuid, values, sign=1)
    return True


def set_host_disk(session: Session, ps_uuid: str, host_uuid: str, total: int, available_physical: int) -> bool:
    """Make the host's share of the LocalStorage the disk its agent measured:
    ``total`` bytes, of which ``available_physical`` are free on the file system.

    What volumes on the host hold stays held: the available capacity moves by
    as much as the total. A host without a share gets one. False if the
    storage is gone.
    """
    if total < 0 or available_physical < 0:
        raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                f"a host's local disk cannot be {total} bytes with {available_physical} free")
    # A new share starts at ``total``; an existing one is resized below.
    if not add_host_share(session, ps_uuid, host_uuid, capacity=total) and not lock_capacity(session, ps_uuid):
        return False
    share = LocalStorageHostRefVO
    row = session.execute(select(*(getattr(share, name) for name in _SUMMED))
                          .where(share.hostUuid == host_uuid, share.primaryStorageUuid == ps_uuid)).first()
    if row is None:
        return False
    before = dict(row._mapping)
    after = {"totalCapacity": total,
             "availableCapacity": before["availableCapacity"] + total - before["totalCapacity"],
             "totalPhysicalCapacity": total, "availablePhysicalCapacity": available_physical,
             "systemUsedCapacity": before["systemUsedCapacity"] or 0}
    deltas = {name: after[name] - (before[name] or 0) for name in after}
    if any(deltas.values()):
        session.execute(update(share).where(share.hostUuid == host_uuid, share.primaryStorageUuid == ps_uuid)
                        .values(**after), execution_options=_NO_SYNC)
        _add_to_storage(session, ps_uuid, deltas, sign=1)
    return True


def remove_host_share(session: Session, ps_uuid: str, host_uuid: str) -> bool:
    """Take the host's share (and the records of what it held) out of the LocalStorage.

    False if the host had no share. The storage's capacity drops by the
    share's total and available capacity.
    """
    if not lock_capacity(session, ps_uuid):
        return False
    share = LocalStorageHostRefVO
    row = session.execute(select(*(getattr(share, name) for name in _SUMMED))
                          .where(share.hostUuid == host_uuid, share.primaryStorageUuid == ps_uuid)).first()
    if row is None:
        return False
    record = LocalStorageResourceRefVO
    session.execute(delete(record).where(record.primaryStorageUuid == ps_uuid, record.hostUuid == host_uuid),
                    execution_options=_NO_SYNC)
    session.execute(delete(share).where(share.hostUuid == host_uuid, share.primaryStorageUuid == ps_uuid),
                    execution_options=_NO_SYNC)
    _add_to_storage(session, ps_uuid, dict(row._mapping), sign=-1)
    return True


def _add_to_storage(session: Session, ps_uuid: str, values: dict[str, int], sign: int) -> None:
    capacity = PrimaryStorageCapacityVO
    changes: dict[str, Any] = {}
    for name, amount in values.items():
        column = getattr(capacity, name)
        current = func.coalesce(column, 0) if name == "systemUsedCapacity" else column
        changed = current + sign * int(amount or 0)
        # Never below zero, whatever rounding or repair happened before.
        changes[name] = case((changed < 0, 0), else_=changed)
    session.execute(update(capacity).where(capacity.uuid == ps_uuid).values(**changes),
                    execution_options=_NO_SYNC)


def attach_local_storage(session: Session, ps_uuid: str, cluster_uuid: str, *,
                         capacity: int | None = None) -> list[str]:
    """Give every host of the cluster its share of the LocalStorage; returns the hosts given one.

    Call it in the attaching transaction, which must already hold the
    exclusive lock on the cluster row.
    """
    return [host for host in hosts_of_cluster(session, cluster_uuid)
            if add_host_share(session, ps_uuid, host, capacity=capacity)]


def detach_local_storage(session: Session, ps_uuid: str, cluster_uuid: str) -> list[str]:
    """Take the shares of the cluster's hosts out of the LocalStorage; returns those hosts.

    Call it in the detaching transaction, which must already hold the
    exclusive lock on the cluster row.
    """
    return [host for host in hosts_of_cluster(session, cluster_uuid)
            if remove_host_share(session, ps_uuid, host)]


def remove_hosts_from_local_storage(session: Session, host_uuids: list[str]) -> list[tuple[str, str]]:
    """Take every share of these hosts out of their LocalStorage (hosts being deleted).

    Returns the ``(hostUuid, primaryStorageUuid)`` pairs removed. Storage is
    locked in uuid order, so two such calls never deadlock.
    """
    share = LocalStorageHostRefVO
    by_storage: dict[str, list[str]] = defaultdict(list)
    for host, ps in session.execute(select(share.hostUuid, share.primaryStorageUuid)
                                    .where(share.hostUuid.in_(host_uuids))):
        by_storage[ps].append(host)
    removed = []
    for ps in sorted(by_storage):
        removed += [(host, ps) for host in sorted(by_storage[ps]) if remove_host_share(session, ps, host)]
    return removed


def recalculate_local_storage_capacity(session: Session, ps_uuid: str) -> None:
    """Set the LocalStorage's capacity to the sum of its hosts' shares (a repair)."""
    if not lock_capacity(session, ps_uuid):
        return
    share = LocalStorageHostRefVO
    sums = session.execute(select(*(func.coalesce(func.sum(getattr(share, name)), 0) for name in _SUMMED))
                           .where(share.primaryStorageUuid == ps_uuid)).one()
    session.execute(update(PrimaryStorageCapacityVO).where(PrimaryStorageCapacityVO.uuid == ps_uuid)
                    .values(**{name: int(value) for name, value in zip(_SUMMED, sums)}),
                    execution_options=_NO_SYNC)


def sync_local_storage(session: Session, ps_uuid: str, *, capacity: int | None = None) -> list[str]:
    """Give a share to every host of the storage's clusters that lacks one, then
    sum the storage's capacity again; returns the hosts given a share."""
    ref = PrimaryStorageClusterRefVO
    clusters = list(session.scalars(select(ref.clusterUuid).where(ref.primaryStorageUuid == ps_uuid)
                                    .order_by(ref.clusterUuid)))
    # Clusters first, then the capacity row: the lock order of attach and detach.
    session.execute(select(ClusterVO.uuid).where(ClusterVO.uuid.in_(clusters)).order_by(ClusterVO.uuid)
                    .with_for_update(read=True))
    added = []
    for cluster_uuid in clusters:
        added += attach_local_storage(session, ps_uuid, cluster_uuid, capacity=capacity)
    recalculate_local_storage_capacity(session, ps_uuid)
    return added
