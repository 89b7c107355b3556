"""Primary storage as the API shows it, and the inventories of its refs."""

from __future__ import annotations

import importlib
from datetime import datetime

from mn.api.inventory import Inventory, Relation
from mn.db.models.storage import (
    LocalStorageHostRefVO,
    LocalStorageResourceRefVO,
    PrimaryStorageClusterRefVO,
    PrimaryStorageVO,
)


class PrimaryStorageInventory(Inventory):
    """ZStack's PrimaryStorageInventory.

    The capacity fields come from PrimaryStorageCapacityVO and are queryable
    (``availableCapacity>1073741824``). ``zone``, ``volume`` and
    ``clusterRef`` are ZStack's expanded queries (``clusterRef.clusterUuid=...``
    finds the storage attached to a cluster; ``clusterRef.cluster.name=c1``
    too; ZStack's alias ``cluster`` is not supported).
    ``attachedClusterUuids`` is shown but, unlike ZStack, not queryable
    (the query engine walks relations to inventories, not lists of values):
    query ``clusterRef.clusterUuid`` instead.
    """

    READABLE_BY_ALL = True

    VO = PrimaryStorageVO
    RELATIONS = {
        "zone": Relation("ZoneInventory", "zoneUuid", "uuid", many=False, expanded=True),
        "volume": Relation("VolumeInventory", "uuid", "primaryStorageUuid", expanded=True),
        "clusterRef": Relation("PrimaryStorageClusterRefInventory", "uuid", "primaryStorageUuid",
                               expanded=True),
    }

    uuid: str
    zoneUuid: str
    name: str
    url: str
    description: str | None = None
    totalCapacity: int | None = None
    availableCapacity: int | None = None
    totalPhysicalCapacity: int | None = None
    availablePhysicalCapacity: int | None = None
    systemUsedCapacity: int | None = None
    type: str
    state: str
    status: str
    mountPath: str | None = None
    createDate: datetime
    lastOpDate: datetime
    attachedClusterUuids: list[str] = []


class PrimaryStorageClusterRefInventory(Inventory):
    """ZStack's PrimaryStorageClusterRefInventory: reached by queries only."""

    READABLE_BY_ALL = True

    VO = PrimaryStorageClusterRefVO
    RELATIONS = {
        "cluster": Relation("ClusterInventory", "clusterUuid", "uuid", many=False, expanded=True),
        "primaryStorage": Relation("PrimaryStorageInventory", "primaryStorageUuid", "uuid", many=False,
                                   expanded=True),
    }

    id: int
    clusterUuid: str
    primaryStorageUuid: str
    createDate: datetime
    lastOpDate: datetime


class LocalStorageHostRefInventory(Inventory):
    """ZStack's LocalStorageHostRefInventory: one host's share of a LocalStorage."""

    READABLE_BY_ALL = True

    VO = LocalStorageHostRefVO
    RELATIONS = {
        "host": Relation("HostInventory", "hostUuid", "uuid", many=False, expanded=True),
        "primaryStorage": Relation("PrimaryStorageInventory", "primaryStorageUuid", "uuid", many=False,
                                   expanded=True),
    }

    primaryStorageUuid: str
    hostUuid: str
    totalCapacity: int
    availableCapacity: int
    totalPhysicalCapacity: int
    availablePhysicalCapacity: int
    createDate: datetime
    lastOpDate: datetime


class LocalStorageResourceRefInventory(Inventory):
    """ZStack's LocalStorageResourceRefInventory: which host holds a resource.

    ``volume`` and ``image`` are ZStack's expanded queries (snapshots do not
    exist here).
    """

    VO = LocalStorageResourceRefVO
    RELATIONS = {
        "volume": Relation("VolumeInventory", "resourceUuid", "uuid", many=False, expanded=True),
        "image": Relation("ImageInventory", "resourceUuid", "uuid", many=False, expanded=True),
    }

    resourceUuid: str
    primaryStorageUuid: str
    hostUuid: str
    size: int
    resourceType: str
    createDate: datetime
    lastOpDate: datetime


# The inventories our relations name, registered wherever primary storage is
# queried (at the end: those modules import this one).
for _module in ("mn.cluster.inventory", "mn.host.inventory", "mn.image.inventory", "mn.volume.inventory",
                "mn.zone.inventory"):
    importlib.import_module(_module)
