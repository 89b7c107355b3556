"""Backup storage capacity: what image code calls to place image copies.

Synchronous functions taking the caller's SQLAlchemy session, so a
reservation commits or rolls back with the caller's transaction. A
reservation is one conditional UPDATE (``availableCapacity >= size``), so
available capacity never goes below zero, whatever number of callers on
whatever number of MNs.
"""

from __future__ import annotations

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from mn.db.models.storage import STATE_ENABLED, STATUS_CONNECTED, BackupStorageVO, BackupStorageZoneRefVO
from mn.errors import OperationError, SysErrors

_NO_SYNC = {"synchronize_session": False}


def _check_size(size: int) -> None:
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                f"a capacity must be a whole number of bytes, at least 0, not {size!r}")


def reserve_backup_storage_capacity(session: Session, bs_uuid: str, size: int) -> bool:
    """Take ``size`` bytes of the backup storage; False (nothing taken) if they do not
    fit or the storage is gone or no longer Enabled and Connected."""
    _check_size(size)
    bs = BackupStorageVO
    # Lock the row by primary key first, then update it by primary key alone:
    # an UPDATE whose WHERE names indexed columns (state, status) may lock an
    # index entry before the row, the reverse of a state change, and deadlock.
    usable = session.scalar(select(bs.uuid).where(bs.uuid == bs_uuid, bs.state == STATE_ENABLED,
                                                  bs.status == STATUS_CONNECTED).with_for_update())
    if usable is None:
        return False
    result = session.execute(
        update(bs).where(bs.uuid == bs_uuid, bs.availableCapacity - size >= 0)
        .values(availableCapacity=bs.availableCapacity - size), execution_options=_NO_SYNC)
    return result.rowcount > 0


def release_backup_storage_capacity(session: Session, bs_uuid: str, size: int) -> None:
    """Give back ``size`` bytes (never above the total); nothing happens if the storage is gone."""
    _check_size(size)
    bs = BackupStorageVO
    back = bs.availableCapacity + size
    session.execute(update(bs).where(bs.uuid == bs_uuid)
                    .values(availableCapacity=case((back > bs.totalCapacity, bs.totalCapacity), else_=back)),
                    execution_options=_NO_SYNC)


def candidate_backup_storages(session: Session, size: int, zone_uuid: str | None = None) -> list[str]:
    """Backup storage that may take ``size`` bytes now: Enabled, Connected, with room,
    attached to the zone if one is given. Most available first; nothing reserved."""
    _check_size(size)
    bs, ref = BackupStorageVO, BackupStorageZoneRefVO
    stmt = select(bs.uuid).where(bs.state == STATE_ENABLED, bs.status == STATUS_CONNECTED,
                                 bs.availableCapacity >= size)
    if zone_uuid is not None:
        stmt = stmt.where(bs.uuid.in_(select(ref.backupStorageUuid).where(ref.zoneUuid == zone_uuid)))
    return list(session.scalars(stmt.order_by(bs.availableCapacity.desc(), bs.uuid)))
