"""The cluster APIs, as ZStack's ``org.zstack.header.cluster`` defines them, and
the message a zone uses to change the state of its clusters."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

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
from mn.bus import Message, Reply
from mn.cluster.inventory import ClusterInventory

SERVICE_ID = "cluster"
_PACKAGE = "org.zstack.header.cluster"

Name = Annotated[str, Field(max_length=255)]
Description = Annotated[str, Field(max_length=2048)]
ClusterUuid = Annotated[str, Ref("ClusterVO")]
StateEvent = Literal["enable", "disable"]
#: ZStack's valid hypervisor types of a cluster.
HypervisorType = Literal["KVM", "Simulator", "baremetal", "baremetal2", "xdragon"]
#: ZStack's valid cluster types ("zstack" when absent).
ClusterType = Literal["zstack", "baremetal", "baremetal2"]
Architecture = Literal["x86_64", "aarch64", "mips64el", "loongarch64"]


class APICreateClusterEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APICreateClusterEvent"
    inventory: ClusterInventory | None = None


class APICreateClusterMsg(APICreateMessage):
    """Create a cluster in a zone; it starts Enabled."""

    RESOURCE_TYPE = "ClusterVO"

    FULL_NAME = f"{_PACKAGE}.APICreateClusterMsg"
    SERVICE = SERVICE_ID
    REST = Rest("POST", "/clusters")
    RESPONSE = APICreateClusterEvent
    ADMIN_ONLY = True

    zoneUuid: Annotated[str, Ref("ZoneVO")]
    name: Name
    description: Description | None = None
    hypervisorType: HypervisorType
    type: ClusterType | None = None
    architecture: Architecture | None = None

    @model_validator(mode="after")
    def _baremetal_goes_together(self) -> "APICreateClusterMsg":
        # ZStack's ClusterApiInterceptor: a baremetal cluster hosts only baremetal.
        if self.type is not None and (self.type == "baremetal") != (self.hypervisorType == "baremetal"):
            raise ValueError("if cluster type is baremetal, then hypervisorType must be baremetal too, "
                             "or vice versa")
        return self


class APIQueryClusterReply(APIQueryReply):
    FULL_NAME = f"{_PACKAGE}.APIQueryClusterReply"


class APIQueryClusterMsg(APIQueryMessage):
    FULL_NAME = f"{_PACKAGE}.APIQueryClusterMsg"
    SERVICE = SERVICE_ID
    REST = query_rest("/clusters")
    RESPONSE = APIQueryClusterReply
    INVENTORY = ClusterInventory


class APIUpdateClusterEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIUpdateClusterEvent"
    inventory: ClusterInventory | None = None


class APIUpdateClusterMsg(APIMessage):
    """Change the name or description of a cluster (absent fields are kept)."""

    FULL_NAME = f"{_PACKAGE}.APIUpdateClusterMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/clusters/{uuid}/actions", is_action=True)
    RESPONSE = APIUpdateClusterEvent
    ADMIN_ONLY = True

    uuid: ClusterUuid
    name: Name | None = None
    description: Description | None = None


class APIChangeClusterStateEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIChangeClusterStateEvent"
    inventory: ClusterInventory | None = None


class APIChangeClusterStateMsg(APIMessage):
    """Enable or disable a cluster."""

    FULL_NAME = f"{_PACKAGE}.APIChangeClusterStateMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/clusters/{uuid}/actions", is_action=True)
    RESPONSE = APIChangeClusterStateEvent
    ADMIN_ONLY = True

    uuid: ClusterUuid
    stateEvent: StateEvent


class APIDeleteClusterEvent(APIEvent):
    """No inventory: success is the whole answer."""

    FULL_NAME = f"{_PACKAGE}.APIDeleteClusterEvent"


class APIDeleteClusterMsg(APIDeleteMessage):
    """Delete a cluster and, leaves first, everything in it.

    ``uuid`` is not a :class:`Ref`: deleting a cluster that does not exist
    succeeds, as ZStack's ``successIfResourceNotExisting``.
    """

    FULL_NAME = f"{_PACKAGE}.APIDeleteClusterMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("DELETE", "/clusters/{uuid}", all_to=None)
    RESPONSE = APIDeleteClusterEvent
    ADMIN_ONLY = True

    uuid: UuidParam


class ChangeClusterStateReply(Reply):
    TYPE = "cluster.ChangeClusterStateReply"
    inventory: ClusterInventory | None = None


class ChangeClusterStateMsg(Message):
    """Change one cluster's state on its owner MN, without asking its extensions
    first (the zone being changed has asked them already)."""

    TYPE = "cluster.ChangeClusterStateMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"

    uuid: str
    stateEvent: StateEvent
