"""The L2 network APIs, as ZStack's ``org.zstack.header.network.l2`` defines them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from mn.api.message import (
    APICreateMessage,
    APIDeleteMessage,
    APIEvent,
    APIMessage,
    APIQueryMessage,
    APIQueryReply,
    Ref,
    Rest,
    UuidParam,
    query_rest,
)
from mn.network.l2.inventory import L2NetworkInventory, L2VlanNetworkInventory

#: ZStack's L2NetworkConstant.SERVICE_ID.
SERVICE_ID = "network.l2"
_PACKAGE = "org.zstack.header.network.l2"

Name = Annotated[str, Field(max_length=255)]
Description = Annotated[str, Field(max_length=2048)]
L2NetworkUuid = Annotated[str, Ref("L2NetworkVO")]
ClusterUuid = Annotated[str, Ref("ClusterVO")]
#: ZStack's valid vSwitch types of a new L2 network.
VSwitchType = Literal["LinuxBridge", "OvsDpdk", "MacVlan"]


class APICreateL2NetworkEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APICreateL2NetworkEvent"
    inventory: L2NetworkInventory | None = None


class APICreateL2VlanNetworkEvent(APICreateL2NetworkEvent):
    FULL_NAME = f"{_PACKAGE}.APICreateL2VlanNetworkEvent"
    inventory: L2VlanNetworkInventory | None = None


class APICreateL2NetworkMsg(APICreateMessage):
    """What both kinds of L2 network are created with (abstract, as in ZStack).

    ``type`` is accepted and ignored: the API decides it, as ZStack's
    ``getType()`` overrides do.
    """

    RESOURCE_TYPE = "L2NetworkVO"
    SERVICE = SERVICE_ID
    ADMIN_ONLY = True

    name: Name
    description: Description | None = None
    zoneUuid: Annotated[str, Ref("ZoneVO")]
    physicalInterface: Annotated[str, Field(min_length=1, max_length=1024)]
    type: str | None = None
    vSwitchType: VSwitchType = "LinuxBridge"
    isolated: bool = False
    pvlan: Annotated[str, Field(min_length=1, max_length=255)] | None = None


class APICreateL2NoVlanNetworkMsg(APICreateL2NetworkMsg):
    """Create an L2 network without VLAN tagging on ``physicalInterface`` of the hosts."""

    FULL_NAME = f"{_PACKAGE}.APICreateL2NoVlanNetworkMsg"
    REST = Rest("POST", "/l2-networks/no-vlan")
    RESPONSE = APICreateL2NetworkEvent


class APICreateL2VlanNetworkMsg(APICreateL2NetworkMsg):
    """Create an 802.1Q VLAN L2 network: VLAN ``vlan`` on ``physicalInterface``."""

    FULL_NAME = f"{_PACKAGE}.APICreateL2VlanNetworkMsg"
    REST = Rest("POST", "/l2-networks/vlan")
    RESPONSE = APICreateL2VlanNetworkEvent

    vlan: Annotated[int, Field(ge=1, le=4094)]


class APIQueryL2NetworkReply(APIQueryReply):
    FULL_NAME = f"{_PACKAGE}.APIQueryL2NetworkReply"


class APIQueryL2NetworkMsg(APIQueryMessage):
    FULL_NAME = f"{_PACKAGE}.APIQueryL2NetworkMsg"
    SERVICE = SERVICE_ID
    REST = query_rest("/l2-networks")
    RESPONSE = APIQueryL2NetworkReply
    INVENTORY = L2NetworkInventory


class APIQueryL2VlanNetworkReply(APIQueryReply):
    FULL_NAME = f"{_PACKAGE}.APIQueryL2VlanNetworkReply"


class APIQueryL2VlanNetworkMsg(APIQueryMessage):
    FULL_NAME = f"{_PACKAGE}.APIQueryL2VlanNetworkMsg"
    SERVICE = SERVICE_ID
    REST = query_rest("/l2-networks/vlan")
    RESPONSE = APIQueryL2VlanNetworkReply
    INVENTORY = L2VlanNetworkInventory


class APIUpdateL2NetworkEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIUpdateL2NetworkEvent"
    inventory: L2VlanNetworkInventory | L2NetworkInventory | None = None


class APIUpdateL2NetworkMsg(APIMessage):
    """Change the name or description of an L2 network (absent fields are kept)."""

    FULL_NAME = f"{_PACKAGE}.APIUpdateL2NetworkMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/l2-networks/{uuid}/actions", is_action=True)
    RESPONSE = APIUpdateL2NetworkEvent

    uuid: L2NetworkUuid
    name: Name | None = None
    description: Description | None = None


class APIDeleteL2NetworkEvent(APIEvent):
    """No inventory: success is the whole answer."""

    FULL_NAME = f"{_PACKAGE}.APIDeleteL2NetworkEvent"


class APIDeleteL2NetworkMsg(APIDeleteMessage):
    """Delete an L2 network and, leaves first, its L3 networks and what is on them.

    ``uuid`` is not a :class:`Ref`: deleting an L2 network that does not
    exist succeeds, as ZStack's ``successIfResourceNotExisting``.
    """

    FULL_NAME = f"{_PACKAGE}.APIDeleteL2NetworkMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("DELETE", "/l2-networks/{uuid}", all_to=None)
    RESPONSE = APIDeleteL2NetworkEvent
    ADMIN_ONLY = True

    uuid: UuidParam


class APIAttachL2NetworkToClusterEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIAttachL2NetworkToClusterEvent"
    inventory: L2VlanNetworkInventory | L2NetworkInventory | None = None


class APIAttachL2NetworkToClusterMsg(APIMessage):
    """Make an L2 network reachable from the hosts of a cluster of its zone."""

    FULL_NAME = f"{_PACKAGE}.APIAttachL2NetworkToClusterMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "l2NetworkUuid"
    REST = Rest("POST", "/l2-networks/{l2NetworkUuid}/clusters/{clusterUuid}")
    RESPONSE = APIAttachL2NetworkToClusterEvent
    ADMIN_ONLY = True

    l2NetworkUuid: L2NetworkUuid
    clusterUuid: ClusterUuid
    l2ProviderType: Literal["LinuxBridge"] | None = None


class APIDetachL2NetworkFromClusterEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIDetachL2NetworkFromClusterEvent"
    inventory: L2VlanNetworkInventory | L2NetworkInventory | None = None


class APIDetachL2NetworkFromClusterMsg(APIMessage):
    """Detach an L2 network from a cluster; refused while VMs of the cluster use it."""

    FULL_NAME = f"{_PACKAGE}.APIDetachL2NetworkFromClusterMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "l2NetworkUuid"
    REST = Rest("DELETE", "/l2-networks/{l2NetworkUuid}/clusters/{clusterUuid}")
    RESPONSE = APIDetachL2NetworkFromClusterEvent
    ADMIN_ONLY = True

    l2NetworkUuid: L2NetworkUuid
    clusterUuid: ClusterUuid
