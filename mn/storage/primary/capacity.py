"""Primary storage capacity: what VM and volume code calls to place volumes.

Every function is synchronous and takes the caller's SQLAlchemy session, so
a reservation commits or rolls back with the rest of the caller's
transaction (``await node.db.run(fn)``)::

    def place_root_volume(session):
        for ps_uuid in candidate_primary_storages(session, cluster_uuid, size, host_uuid):
            if reserve_primary_storage_capacity(session, ps_uuid, size, host_uuid,
                                                resource_uuid=volume_uuid):
                return ps_uuid
        raise OperationError.of(SysErrors.OPERATION_ERROR, "no primary storage has ...")

Safe against callers on several MNs at once without reading first: a
reservation is one conditional UPDATE (``availableCapacity >= size``) whose
row count says whether it fitted, so available capacity never goes below
zero and two reservations never both take the last bytes.

LocalStorage: a volume lives on one host's disk, so a reservation takes
from that host's LocalStorageHostRefVO row and from the storage's
PrimaryStorageCapacityVO row (which is the sum of its hosts). Locks are
always taken in one order, the storage's capacity row first, then host
rows: reservations do it by updating the capacity row first, and
changes of the set of hosts (:mod:`mn.storage.primary.local`) lock it with
:func:`lock_capacity` before touching host rows. Holding that row lock is
therefore exclusive access to the storage's accounting.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, case, delete, exists, or_, select, update
from sqlalchemy.orm import Session

from mn.db.models.host import HostVO
from mn.db.models.storage import (
    LOCAL_STORAGE_TYPE,
    STATE_ENABLED,
    STATUS_CONNECTED,
    LocalStorageHostRefVO,
    LocalStorageResourceRefVO,
    PrimaryStorageCapacityVO,
    PrimaryStorageClusterRefVO,
    PrimaryStorageVO,
)
from mn.db.types import utcnow
from mn.errors import OperationError, SysErrors

#: ``resourceType`` recorded for volumes placed on LocalStorage.
VOLUME_RESOURCE_TYPE = "VolumeVO"

_NO_SYNC = {"synchronize_session": False}


def usable(storage: Any = PrimaryStorageVO) -> tuple[ColumnElement[bool], ...]:
    """Conditions of a primary storage that may take new volumes: Enabled and Connected."""
    return storage.state == STATE_ENABLED, storage.status == STATUS_CONNECTED


def storage_type(session: Session, ps_uuid: str) -> str | None:
    """The type of the primary storage, or None if it does not exist."""
    return session.scalar(select(PrimaryStorageVO.type).where(PrimaryStorageVO.uuid == ps_uuid))


def lock_capacity(session: Session, ps_uuid: str) -> bool:
    """Lock the storage's capacity row until the transaction ends; False if there is none.

    An UPDATE rather than SELECT ... FOR UPDATE: it also takes SQLite's
    write lock, which a read would not.
    """
    result = session.execute(update(PrimaryStorageCapacityVO)
                             .where(PrimaryStorageCapacityVO.uuid == ps_uuid)
                             .values(lastOpDate=utcnow()), execution_options=_NO_SYNC)
    return result.rowcount > 0


def _check_size(size: int) -> None:
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                f"a capacity must be a whole number of bytes, at least 0, not {size!r}")


def _needs_host(ps_uuid: str) -> OperationError:
    return OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                             f"primary storage[uuid:{ps_uuid}] is a LocalStorage: the host whose disk "
                             f"holds the volume must be given")


def _fits(available: Any, size: int) -> ColumnElement[bool]:
    """``available >= size`` in a form no index can serve.

    So MariaDB runs a conditional UPDATE by primary key alone. Given
    ``availableCapacity >= :size`` it may scan that column's index first and
    then lock the row, the reverse of the order an UPDATE by primary key
    takes those two locks in, and two such UPDATEs deadlock.
    """
    return available - size >= 0


def _capped(value: Any, limit: Any) -> Any:
    """``min(value, limit)`` in SQL that MariaDB and SQLite both know."""
    return case((value > limit, limit), else_=value)


def reserve_primary_storage_capacity(session: Session, ps_uuid: str, size: int,
                                     host_uuid: str | None = None, *, resource_uuid: str | None = None,
                                     resource_type: str = VOLUME_RESOURCE_TYPE) -> bool:
    """Take ``size`` bytes of the primary storage for a new volume; False if they do not fit.

    False (nothing taken) too when the storage no longer exists or is no
    longer Enabled and Connected. On LocalStorage ``host_uuid`` is required
    (the bytes come from that host's disk; False if the host has no share or
    too little) and ``resource_uuid`` (the volume's uuid), if given, records
    the volume on that host (LocalStorageResourceRefVO of ``resource_type``).
    On other types ``host_uuid`` and ``resource_uuid`` are ignored.
    """
    _check_size(size)
    # A shared lock on the storage's row: it stays usable (a state change
    # waits) until this transaction ends.
    kind = session.scalar(select(PrimaryStorageVO.type).where(PrimaryStorageVO.uuid == ps_uuid, *usable())
                          .with_for_update(read=True))
    if kind is None:
        return False
    local = kind == LOCAL_STORAGE_TYPE
    if local and host_uuid is None:
        raise _needs_host(ps_uuid)
    capacity = PrimaryStorageCapacityVO
    taken = session.execute(
        update(capacity).where(capacity.uuid == ps_uuid, _fits(capacity.availableCapacity, size))
        .values(availableCapacity=capacity.availableCapacity - size), execution_options=_NO_SYNC)
    if taken.rowcount == 0:
        return False
    if not local:
        return True
    share = LocalStorageHostRefVO
    on_host = session.execute(
        update(share)
        .where(share.hostUuid == host_uuid, share.primaryStorageUuid == ps_uuid,
               _fits(share.availableCapacity, size))
        .values(availableCapacity=share.availableCapacity - size), execution_options=_NO_SYNC)
    if on_host.rowcount == 0:
        # The storage had room, the host not: give the storage its bytes back.
        session.execute(update(capacity).where(capacity.uuid == ps_uuid)
                        .values(availableCapacity=capacity.availableCapacity + size),
                        execution_options=_NO_SYNC)
        return False
    if resource_uuid is not None:
        session.add(LocalStorageResourceRefVO(resourceUuid=resource_uuid, primaryStorageUuid=ps_uuid,
                                              hostUuid=host_uuid, size=size, resourceType=resource_type))
        session.flush()
    return True


def release_primary_storage_capacity(session: Session, ps_uuid: str, size: int,
                                     host_uuid: str | None = None, *,
                                     resource_uuid: str | None = None) -> None:
    """Give back ``size`` bytes a volume held on the primary storage.

    Available capacity never rises above total. Nothing happens if the
    storage is gone. On LocalStorage the bytes go back to the host given
    (or, without ``host_uuid``, the host recorded for ``resource_uuid``;
    one of the two is required) and ``resource_uuid``'s record is removed;
    if that host has left the storage, its share (and these bytes with it)
    already left the storage's total, so nothing goes back.
    """
    _check_size(size)
    kind = storage_type(session, ps_uuid)
    if kind is None:
        return
    capacity = PrimaryStorageCapacityVO
    if kind != LOCAL_STORAGE_TYPE:
        session.execute(update(capacity).where(capacity.uuid == ps_uuid)
                        .values(availableCapacity=_capped(capacity.availableCapacity + size,
                                                          capacity.totalCapacity)),
                        execution_options=_NO_SYNC)
        return
    record = LocalStorageResourceRefVO
    if host_uuid is None:
        if resource_uuid is None:
            raise _needs_host(ps_uuid)
        host_uuid = session.scalar(select(record.hostUuid).where(record.resourceUuid == resource_uuid,
                                                                 record.primaryStorageUuid == ps_uuid))
        if host_uuid is None:
            return  # its host left the storage (taking the record and these bytes along)
    if not lock_capacity(session, ps_uuid):
        return
    if resource_uuid is not None:
        session.execute(delete(record).where(record.resourceUuid == resource_uuid,
                                             record.primaryStorageUuid == ps_uuid),
                        execution_options=_NO_SYNC)
    share = LocalStorageHostRefVO
    row = session.execute(select(share.availableCapacity, share.totalCapacity)
                          .where(share.hostUuid == host_uuid, share.primaryStorageUuid == ps_uuid)).first()
    if row is None:
        return
    back = max(0, min(size, row.totalCapacity - row.availableCapacity))
    if back == 0:
        return
    session.execute(update(share).where(share.hostUuid == host_uuid, share.primaryStorageUuid == ps_uuid)
                    .values(availableCapacity=share.availableCapacity + back), execution_options=_NO_SYNC)
    session.execute(update(capacity).where(capacity.uuid == ps_uuid)
                    .values(availableCapacity=_capped(capacity.availableCapacity + back,
                                                      capacity.totalCapacity)),
                    execution_options=_NO_SYNC)


def candidate_primary_storages(session: Session, cluster_uuid: str, size: int,
                               host_uuid: str | None = None) -> list[str]:
    """Primary storage a new volume of ``size`` bytes of a host of the cluster may go to.

    Attached to the cluster, Enabled, Connected, with ``size`` bytes
    available; a LocalStorage only if the host's share has them (without
    ``host_uuid``: if some host of the cluster's has). Most available first.
    Nothing is reserved: the caller reserves one, and tries the next if a
    concurrent caller took it first.
    """
    _check_size(size)
    storage, capacity, ref = PrimaryStorageVO, PrimaryStorageCapacityVO, PrimaryStorageClusterRefVO
    stmt = (select(storage.uuid)
            .join(capacity, capacity.uuid == storage.uuid)
            .join(ref, ref.primaryStorageUuid == storage.uuid)
            .where(ref.clusterUuid == cluster_uuid, *usable(), capacity.availableCapacity >= size,
                   or_(storage.type != LOCAL_STORAGE_TYPE,
                       _host_share_fits(storage.uuid, host_uuid, size, cluster_uuid)))
            .order_by(capacity.availableCapacity.desc(), storage.uuid))
    return list(session.scalars(stmt))


def _host_share_fits(ps_uuid: Any, host_uuid: Any, size: int, cluster_uuid: Any) -> ColumnElement[bool]:
    share = LocalStorageHostRefVO
    conditions = [share.primaryStorageUuid == ps_uuid, share.availableCapacity >= size]
    if host_uuid is not None:
        conditions.append(share.hostUuid == host_uuid)
    else:
        conditions.append(share.hostUuid.in_(select(HostVO.uuid).where(HostVO.clusterUuid == cluster_uuid)))
    return exists().where(*conditions)


def primary_storage_fits(host_uuid: Any, cluster_uuid: Any, size: int,
                         primary_storage_uuid: str | None = None) -> ColumnElement[bool]:
    """SQL condition for host allocators: the host reaches a usable primary storage
    with ``size`` bytes available.

    ``host_uuid`` and ``cluster_uuid`` are the host's columns in the
    allocator's own query (``HostVO.uuid``, ``HostVO.clusterUuid``) or
    values; with ``primary_storage_uuid`` only that storage counts. The
    same rules as :func:`candidate_primary_storages`, in one query for all
    candidate hosts::

        select(HostVO.uuid).where(..., primary_storage_fits(HostVO.uuid, HostVO.clusterUuid, disk))
    """
    _check_size(size)
    storage, capacity, ref = PrimaryStorageVO, PrimaryStorageCapacityVO, PrimaryStorageClusterRefVO
    share = LocalStorageHostRefVO
    on_host = exists().where(share.primaryStorageUuid == storage.uuid, share.hostUuid == host_uuid,
                             share.availableCapacity >= size)
    conditions = [ref.clusterUuid == cluster_uuid, ref.primaryStorageUuid == storage.uuid,
                  capacity.uuid == storage.uuid, *usable(), capacity.availableCapacity >= size,
                  or_(storage.type != LOCAL_STORAGE_TYPE, on_host)]
    if primary_storage_uuid is not None:
        conditions.append(storage.uuid == primary_storage_uuid)
    return exists().where(*conditions)
