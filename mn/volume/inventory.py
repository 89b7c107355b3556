"""VolumeInventory: a volume as the API shows it."""

from __future__ import annotations

from datetime import datetime

# The inventories our relations name are imported so that they are registered
# wherever volumes are used (VmInstanceInventory registers itself: its module
# imports this one).
import mn.image.inventory  # noqa: F401
import mn.offering.inventory  # noqa: F401
import mn.storage.primary.inventory  # noqa: F401
from mn.api.inventory import Inventory, Relation
from mn.db.models.volume import VolumeVO


class VolumeInventory(Inventory):
    """ZStack's VolumeInventory; vmInstance, diskOffering, primaryStorage and
    image (by ``rootImageUuid``) are its expanded queries."""

    VO = VolumeVO
    RELATIONS = {
        "vmInstance": Relation("VmInstanceInventory", "vmInstanceUuid", "uuid", many=False, expanded=True),
        "diskOffering": Relation("DiskOfferingInventory", "diskOfferingUuid", "uuid", many=False,
                                 expanded=True),
        "primaryStorage": Relation("PrimaryStorageInventory", "primaryStorageUuid", "uuid", many=False,
                                   expanded=True),
        "image": Relation("ImageInventory", "rootImageUuid", "uuid", many=False, expanded=True),
    }

    uuid: str
    name: str
    description: str | None = None
    primaryStorageUuid: str | None = None
    vmInstanceUuid: str | None = None
    diskOfferingUuid: str | None = None
    rootImageUuid: str | None = None
    installPath: str | None = None
    type: str
    format: str | None = None
    size: int
    actualSize: int | None = None
    deviceId: int | None = None
    state: str
    status: str
    createDate: datetime
    lastOpDate: datetime
    isShareable: bool = False
    volumeQos: str | None = None
    lastDetachDate: datetime | None = None
    lastVmInstanceUuid: str | None = None
    lastAttachDate: datetime | None = None
    protocol: str | None = None
