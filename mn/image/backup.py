"""Copies of images on backup storage: placing them, releasing them, finding them.

Backup storage belongs to the storage service; this module reads its tables
(``BackupStorageVO``, ``BackupStorageZoneRefVO``) by name from the shared
metadata and changes capacity only through
:mod:`mn.storage.backup.capacity`, whose conditional updates keep
concurrent callers on several MNs from overcommitting a backup storage.
Every function takes the caller's session, so it composes into the
caller's transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from sqlalchemy import Table, and_, exists, select
from sqlalchemy.orm import Session

from mn.db.models.base import Base
from mn.db.models.image import ImageBackupStorageRefVO, ImageVO
from mn.errors import OperationError, SysErrors
from mn.image.constants import READY
from mn.storage.backup.capacity import release_backup_storage_capacity, reserve_backup_storage_capacity

#: ZStack's BackupStorageState and BackupStorageStatus values a download needs.
BS_ENABLED = "Enabled"
BS_CONNECTED = "Connected"


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


@dataclasses.dataclass(frozen=True)
class BackupStorage:
    """What image operations need to know of one backup storage."""

    uuid: str
    name: str
    url: str | None
    state: str
    status: str
    availableCapacity: int


def backup_storages(session: Session, uuids: Iterable[str]) -> dict[str, BackupStorage]:
    """The backup storages among ``uuids`` that exist, by uuid."""
    bs = _table("BackupStorageVO")
    rows = session.execute(select(bs.c.uuid, bs.c.name, bs.c.url, bs.c.state, bs.c.status,
                                  bs.c.availableCapacity).where(bs.c.uuid.in_(list(uuids))))
    return {row.uuid: BackupStorage(*row) for row in rows}


def download_targets(session: Session, bs_uuids: list[str], actual_size: int) -> list[BackupStorage]:
    """The backup storages an image of ``actual_size`` bytes is added to, in uuid order.

    As ZStack: the named storages that are not Connected are dropped (none
    left: SYS.1006); each one kept must be Enabled and have room for the
    image (else SYS.1006, nothing changes). ZStack also drops a storage
    that is exactly full, so the same request sometimes lands on fewer
    storages and sometimes fails; here a full storage always fails it.
    """
    found = backup_storages(session, bs_uuids)
    kept = [found[u] for u in sorted(set(bs_uuids)) if u in found and found[u].status == BS_CONNECTED]
    if not kept:
        raise OperationError.of(
            SysErrors.OPERATION_ERROR,
            f"no backup storage specified in uuids{bs_uuids} is available for adding this image; they are "
            f"not in status {BS_CONNECTED} or not in state {BS_ENABLED}, or the uuid is invalid backup "
            f"storage uuid")
    for bs in kept:
        refusal = _refusal(bs, actual_size)
        if refusal is not None:
            raise refusal
    return kept


def _refusal(bs: BackupStorage, actual_size: int) -> OperationError | None:
    """Why ``bs`` cannot take a copy of ``actual_size`` bytes (as ZStack's
    DownloadImageMsg state, status and capacity checks), or None."""
    for what, value, wanted in (("state", bs.state, BS_ENABLED), ("status", bs.status, BS_CONNECTED)):
        if value != wanted:
            return OperationError.of(
                SysErrors.OPERATION_ERROR,
                f"backup storage[uuid:{bs.uuid}, name:{bs.name}] cannot download images because its "
                f"{what} is {value}")
    if bs.availableCapacity < actual_size:
        return _no_room(bs, actual_size)
    return None


def _no_room(bs: BackupStorage, actual_size: int) -> OperationError:
    return OperationError.of(
        SysErrors.OPERATION_ERROR,
        f"the backup storage[uuid:{bs.uuid}, name:{bs.name}] has not enough capacity to download the "
        f"image. Required size:{actual_size}, available size:{bs.availableCapacity}")


def add_copy(session: Session, image: ImageVO, bs: BackupStorage, install_path: str) -> ImageBackupStorageRefVO:
    """Reserve ``image.actualSize`` on ``bs`` and record a Ready copy there.

    Raises OperationError SYS.1006 if the storage cannot take it any more
    (a concurrent reservation won, or it was disabled meanwhile); the
    caller's transaction then rolls back every reservation it made.
    """
    if not reserve_backup_storage_capacity(session, bs.uuid, image.actualSize):
        now = backup_storages(session, [bs.uuid]).get(bs.uuid)
        if now is None:
            raise OperationError.of(SysErrors.OPERATION_ERROR,
                                    f"backup storage[uuid:{bs.uuid}, name:{bs.name}] has been deleted")
        # Capacity freed again since our UPDATE still means it did not fit then.
        raise _refusal(now, image.actualSize) or _no_room(now, image.actualSize)
    ref = ImageBackupStorageRefVO(imageUuid=image.uuid, backupStorageUuid=bs.uuid, status=READY,
                                  installPath=install_path)
    session.add(ref)
    return ref


def drop_copy(session: Session, image: ImageVO, ref: ImageBackupStorageRefVO, *,
              release_capacity: bool = True) -> None:
    """Delete a copy and give its capacity back to the backup storage (unless told not to:
    a backup storage being deleted keeps nothing to give back)."""
    if release_capacity:
        release_backup_storage_capacity(session, ref.backupStorageUuid, image.actualSize)
    session.delete(ref)


def copies_of(session: Session, image_uuid: str) -> list[ImageBackupStorageRefVO]:
    """The image's copies, in backup storage uuid order."""
    return list(session.scalars(select(ImageBackupStorageRefVO)
                                .where(ImageBackupStorageRefVO.imageUuid == image_uuid)
                                .order_by(ImageBackupStorageRefVO.backupStorageUuid)))


def image_backup_storages(session: Session, image_uuid: str, zone_uuid: str | None = None) -> list[str]:
    """Backup storages holding a Ready copy of the image that a VM can be made from now:
    Enabled and Connected and, with ``zone_uuid``, attached to that zone. In uuid order."""
    bs = _table("BackupStorageVO")
    ref = ImageBackupStorageRefVO
    stmt = (select(ref.backupStorageUuid)
            .join(bs, bs.c.uuid == ref.backupStorageUuid)
            .where(ref.imageUuid == image_uuid, ref.status == READY,
                   bs.c.state == BS_ENABLED, bs.c.status == BS_CONNECTED)
            .order_by(ref.backupStorageUuid))
    if zone_uuid is not None:
        zones = _table("BackupStorageZoneRefVO")
        stmt = stmt.where(exists().where(and_(zones.c.backupStorageUuid == ref.backupStorageUuid,
                                              zones.c.zoneUuid == zone_uuid)))
    return list(session.scalars(stmt))
