"""Backup storage as the API shows it, and the inventory of its zone refs."""

from __future__ import annotations

import importlib
from datetime import datetime

from mn.api.inventory import Inventory, Relation
from mn.db.models.storage import BackupStorageVO, BackupStorageZoneRefVO


class BackupStorageInventory(Inventory):
    """ZStack's BackupStorageInventory.

    ``zoneRef`` and ``imageRef`` are ZStack's expanded queries
    (``zoneRef.zoneUuid=...`` finds the backup storage attached to a zone;
    ``zoneRef.zone.name=z1`` and ``imageRef.image.name=i1`` too; ZStack's
    aliases ``zone`` and ``image`` are not supported). ``attachedZoneUuids``
    is shown but, unlike ZStack, not queryable: query ``zoneRef.zoneUuid``
    instead.
    """

    READABLE_BY_ALL = True

    VO = BackupStorageVO
    RELATIONS = {
        "zoneRef": Relation("BackupStorageZoneRefInventory", "uuid", "backupStorageUuid", expanded=True),
        "imageRef": Relation("ImageBackupStorageRefInventory", "uuid", "backupStorageUuid", expanded=True),
    }

    uuid: str
    name: str
    url: str
    description: str | None = None
    totalCapacity: int | None = None
    availableCapacity: int | None = None
    type: str
    state: str
    status: str
    createDate: datetime
    lastOpDate: datetime
    attachedZoneUuids: list[str] = []


class BackupStorageZoneRefInventory(Inventory):
    """ZStack's BackupStorageZoneRefInventory: reached by queries only."""

    READABLE_BY_ALL = True

    VO = BackupStorageZoneRefVO
    RELATIONS = {
        "zone": Relation("ZoneInventory", "zoneUuid", "uuid", many=False, expanded=True),
        "backupStorage": Relation("BackupStorageInventory", "backupStorageUuid", "uuid", many=False,
                                  expanded=True),
    }

    id: int
    backupStorageUuid: str
    zoneUuid: str
    createDate: datetime
    lastOpDate: datetime


# The inventories our relations name (and zones' and clusters' relations
# name), registered wherever backup storage is queried (at the end: those
# modules may import this one).
for _module in ("mn.cluster.inventory", "mn.host.inventory", "mn.image.inventory", "mn.zone.inventory"):
    importlib.import_module(_module)
