"""ImageInventory and ImageBackupStorageRefInventory: images as the API shows them."""

from __future__ import annotations

from datetime import datetime

from mn.api.inventory import Inventory, Relation
from mn.db.models.image import ImageBackupStorageRefVO, ImageVO


class ImageBackupStorageRefInventory(Inventory):
    """ZStack's ImageBackupStorageRefInventory: one copy of an image on one backup storage.

    ``image`` and ``backupStorage`` are ZStack's expanded queries
    (``backupStorageRefs.backupStorage.name=bs1`` from an image query).
    """

    VO = ImageBackupStorageRefVO
    RELATIONS = {
        "image": Relation("ImageInventory", "imageUuid", "uuid", many=False, expanded=True),
        "backupStorage": Relation("BackupStorageInventory", "backupStorageUuid", "uuid", many=False,
                                  expanded=True),
    }

    imageUuid: str
    backupStorageUuid: str
    installPath: str | None = None
    status: str
    exportMd5Sum: str | None = None
    exportUrl: str | None = None
    createDate: datetime
    lastOpDate: datetime


class ImageInventory(Inventory):
    """ZStack's ImageInventory; ``backupStorageRefs`` lists its copies.

    ``backupStorageRef`` is ZStack's hidden expanded query of the same rows.
    ZStack's ``volume`` expanded query (volumes made from the image) joins
    once volumes exist.
    """

    VO = ImageVO
    RELATIONS = {
        "backupStorageRefs": Relation("ImageBackupStorageRefInventory", "uuid", "imageUuid", many=True),
        "backupStorageRef": Relation("ImageBackupStorageRefInventory", "uuid", "imageUuid", many=True,
                                     expanded=True),
    }

    uuid: str
    name: str
    description: str | None = None
    state: str
    status: str
    size: int | None = None
    actualSize: int | None = None
    md5Sum: str | None = None
    url: str | None = None
    mediaType: str
    guestOsType: str | None = None
    type: str | None = None
    platform: str | None = None
    architecture: str | None = None
    format: str | None = None
    system: bool = False
    virtio: bool | None = None
    createDate: datetime
    lastOpDate: datetime
    backupStorageRefs: list[ImageBackupStorageRefInventory] = []
