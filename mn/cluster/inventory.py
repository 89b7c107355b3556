"""ClusterInventory: a cluster as the API shows it."""

from __future__ import annotations

from datetime import datetime

from mn.api.inventory import Inventory, Relation
from mn.db.models.cluster import ClusterVO


class ClusterInventory(Inventory):
    """ZStack's ClusterInventory.

    ``zone`` is ZStack's expanded query (``zone.name=z1`` finds the clusters
    of that zone); host, vmInstance, l2Network and primaryStorage join when
    those inventories exist.
    """

    READABLE_BY_ALL = True

    VO = ClusterVO
    RELATIONS = {
        "zone": Relation("ZoneInventory", "zoneUuid", "uuid", many=False, expanded=True),
        "host": Relation("HostInventory", "uuid", "clusterUuid", many=True, expanded=True),
    }

    name: str
    uuid: str
    description: str | None = None
    state: str
    hypervisorType: str
    createDate: datetime
    lastOpDate: datetime
    zoneUuid: str
    type: str
    architecture: str | None = None
