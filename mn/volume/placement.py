"""Putting volumes on primary storage and taking them off, capacity included.

A volume holds ``size`` bytes of its primary storage exactly while its
``primaryStorageUuid`` is set: :func:`place_volume` reserves the capacity
and sets it in the caller's transaction, :func:`unplace_volume` clears it
(conditionally, so twice gives back once) and releases the capacity in one.
On LocalStorage the volume also lives on one host: the reservation takes
from that host's share, and the storage records which host it was
(LocalStorageResourceRefVO) so the release gives it back there.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mn.db.models.storage import LOCAL_STORAGE_TYPE, LocalStorageResourceRefVO
from mn.db.models.volume import VolumeVO
from mn.errors import OperationError, SysErrors
from mn.storage.primary.capacity import (
    candidate_primary_storages,
    release_primary_storage_capacity,
    reserve_primary_storage_capacity,
    storage_type,
)
from mn.vm.records import forget
from mn.volume.bits import queue_bits_deletion

VOLUME_RESOURCE_TYPE = VolumeVO.__tablename__


def is_local(session: Session, ps_uuid: str | None) -> bool:
    return ps_uuid is not None and storage_type(session, ps_uuid) == LOCAL_STORAGE_TYPE


def local_host_of(session: Session, volume_uuid: str) -> str | None:
    """The host whose local storage holds the volume, if it is on LocalStorage."""
    return session.scalar(select(LocalStorageResourceRefVO.hostUuid)
                          .where(LocalStorageResourceRefVO.resourceUuid == volume_uuid))


def place_volume(session: Session, volume: VolumeVO, ps_uuid: str, host_uuid: str | None) -> bool:
    """Reserve the volume's size on ``ps_uuid`` and put the volume there.

    ``host_uuid`` is the host a LocalStorage volume lives on (required
    there, ignored elsewhere; the storage records the volume on it).
    Returns False, changing nothing, when the storage (or that host's share
    of it) has not enough room left or is no longer usable.
    """
    if not reserve_primary_storage_capacity(session, ps_uuid, volume.size, host_uuid,
                                            resource_uuid=volume.uuid, resource_type=VOLUME_RESOURCE_TYPE):
        return False
    volume.primaryStorageUuid = ps_uuid
    session.flush()
    return True


def place_on_candidates(session: Session, volume: VolumeVO, cluster_uuid: str, host_uuid: str | None,
                        preferred: list[str] = ()) -> str:
    """Put the volume on a primary storage of the cluster with room for it; return its uuid.

    Tries ``preferred`` first (those that are candidates), then the others;
    a storage filled by a concurrent reservation is skipped. Raises
    OperationError SYS.1006 when none has room.
    """
    ps_uuid = reserve_on_candidates(session, volume, cluster_uuid, host_uuid, preferred)
    volume.primaryStorageUuid = ps_uuid
    session.flush()
    return ps_uuid


def reserve_on_candidates(session: Session, volume: VolumeVO, cluster_uuid: str, host_uuid: str | None,
                          preferred: list[str] = ()) -> str:
    """Like :func:`place_on_candidates`, for a volume whose row is not written
    yet: reserve its ``size`` and return the storage; the caller sets
    ``primaryStorageUuid`` before the row is written in this transaction."""
    candidates = candidate_primary_storages(session, cluster_uuid, volume.size, host_uuid)
    ordered = [ps for ps in preferred if ps in candidates] + [ps for ps in candidates if ps not in preferred]
    for ps_uuid in ordered:
        if reserve_primary_storage_capacity(session, ps_uuid, volume.size, host_uuid, resource_uuid=volume.uuid,
                                            resource_type=VOLUME_RESOURCE_TYPE):
            return ps_uuid
    where = f"cluster[uuid:{cluster_uuid}]" + (f" for host[uuid:{host_uuid}]" if host_uuid else "")
    raise OperationError.of(SysErrors.OPERATION_ERROR,
                            f"no primary storage attached to {where} has {volume.size} bytes available "
                            f"for volume[uuid:{volume.uuid}, name:{volume.name}]"
                            + (f" (tried {', '.join(ordered)})" if ordered else ""))


def unplace_volume(session: Session, volume_uuid: str) -> bool:
    """Take the volume off its primary storage and give its capacity back; the
    deletion of its file on its host, if it has one, is queued in the same
    transaction (:mod:`mn.volume.bits`).

    Conditional on the volume still being there, so a second call changes
    nothing. Returns whether capacity was given back.
    """
    row = session.execute(select(VolumeVO.primaryStorageUuid, VolumeVO.size)
                          .where(VolumeVO.uuid == volume_uuid)).first()
    if row is None or row.primaryStorageUuid is None:
        return False
    ps_uuid, size = row
    volume = session.get(VolumeVO, volume_uuid)
    result = session.execute(
        update(VolumeVO).where(VolumeVO.uuid == volume_uuid, VolumeVO.primaryStorageUuid == ps_uuid)
        .values(primaryStorageUuid=None), execution_options={"synchronize_session": False})
    if result.rowcount != 1:
        return False
    # Before the release: it removes the LocalStorage record naming the host.
    queue_bits_deletion(session, volume, ps_uuid)
    release_primary_storage_capacity(session, ps_uuid, size, resource_uuid=volume_uuid)
    return True


def expunge_volume(session: Session, node: Any, volume_uuid: str) -> bool:
    """Give the volume's storage back and delete it (with its tags and owner); False if gone."""
    unplace_volume(session, volume_uuid)
    volume = session.get(VolumeVO, volume_uuid)
    if volume is None:
        return False
    session.delete(volume)
    session.flush()
    forget(node, session, [volume_uuid])
    return True
