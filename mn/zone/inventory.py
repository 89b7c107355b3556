"""ZoneInventory: a zone as the API shows it."""

from __future__ import annotations

from datetime import datetime

from mn.api.inventory import Inventory, Relation
from mn.db.models.zone import ZoneVO


class ZoneInventory(Inventory):
    """ZStack's ZoneInventory.

    ``cluster`` is ZStack's expanded query (``cluster.name=c1`` finds the
    zones of that cluster); the other expanded queries of ZStack (host,
    vmInstance, primaryStorage, l2Network, l3Network) join when those
    inventories exist.
    """

    READABLE_BY_ALL = True

    VO = ZoneVO
    RELATIONS = {
        "cluster": Relation("ClusterInventory", "uuid", "zoneUuid", many=True, expanded=True),
        "host": Relation("HostInventory", "uuid", "zoneUuid", many=True, expanded=True),
    }

    uuid: str
    name: str
    description: str | None = None
    state: str
    type: str
    isDefault: bool = False
    createDate: datetime
    lastOpDate: datetime
