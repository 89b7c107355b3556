"""L2 network inventories: what the API shows of L2 networks and their cluster attachments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import field_validator
from sqlalchemy.orm import Session

from mn.api.inventory import Inventory, Relation
from mn.api.query import build_inventories, inventory_schema
from mn.db.models.network import L2NetworkClusterRefVO, L2NetworkVO, L2VlanNetworkVO

# Relations name ZoneInventory and ClusterInventory; importing them registers them.
from mn.cluster import inventory as _cluster_inventory  # noqa: E402,F401
from mn.zone import inventory as _zone_inventory  # noqa: E402,F401


class L2NetworkClusterRefInventory(Inventory):
    """ZStack's L2NetworkClusterRefInventory: one attachment of an L2 network to a cluster."""

    VO = L2NetworkClusterRefVO
    RELATIONS = {
        "cluster": Relation("ClusterInventory", "clusterUuid", "uuid", many=False, expanded=True),
        "l2Network": Relation("L2NetworkInventory", "l2NetworkUuid", "uuid", many=False, expanded=True),
    }

    clusterUuid: str
    l2NetworkUuid: str
    l2ProviderType: str | None = None
    createDate: datetime
    lastOpDate: datetime


class L2NetworkInventory(Inventory):
    """ZStack's L2NetworkInventory.

    ``attachedClusterUuids`` lists the clusters it is attached to; queries
    reach them as ``attachedClusterUuids.clusterUuid`` or through the
    expanded ``clusterRef`` (``clusterRef.cluster.name``). ``zone`` and
    ``l3Network`` are ZStack's other expanded queries.
    """

    VO = L2NetworkVO
    RELATIONS = {
        "zone": Relation("ZoneInventory", "zoneUuid", "uuid", many=False, expanded=True),
        "l3Network": Relation("L3NetworkInventory", "uuid", "l2NetworkUuid", many=True, expanded=True),
        "clusterRef": Relation("L2NetworkClusterRefInventory", "uuid", "l2NetworkUuid", many=True,
                               expanded=True),
        "attachedClusterUuids": Relation("L2NetworkClusterRefInventory", "uuid", "l2NetworkUuid", many=True),
    }

    uuid: str
    name: str
    description: str | None = None
    zoneUuid: str
    physicalInterface: str
    type: str
    vSwitchType: str
    virtualNetworkId: int
    isolated: bool
    pvlan: str | None = None
    createDate: datetime
    lastOpDate: datetime
    attachedClusterUuids: list[str] = []

    @field_validator("attachedClusterUuids", mode="before")
    @classmethod
    def _cluster_uuids(cls, value: Any) -> Any:
        # The query engine loads the attachments as inventories; ZStack shows their cluster uuids.
        return [ref["clusterUuid"] if isinstance(ref, dict) else ref for ref in value or []]


class L2VlanNetworkInventory(L2NetworkInventory):
    """ZStack's L2VlanNetworkInventory: an L2 network with its VLAN id."""

    VO = L2VlanNetworkVO

    vlan: int


def l2_inventory(session: Session, vo: L2NetworkVO) -> L2NetworkInventory:
    """The inventory of ``vo`` as queries show it (a VLAN network's with its vlan)."""
    cls = L2VlanNetworkInventory if isinstance(vo, L2VlanNetworkVO) else L2NetworkInventory
    [data] = build_inventories(session, inventory_schema(cls), [vo])
    return cls.model_validate(data)
