"""The host APIs, as ZStack's ``org.zstack.header.host`` (and the simulator
plugin's ``org.zstack.header.simulator``) define them, the messages hosts
send each other, and the broadcast of a host's status change."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

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
from mn.bus import Event, Message, Reply
from mn.host.inventory import HostInventory

SERVICE_ID = "host"
_PACKAGE = "org.zstack.header.host"
_SIMULATOR_PACKAGE = "org.zstack.header.simulator"

# RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens.
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def _management_ip(value: str) -> str:
    # ZStack's HostApiInterceptor: an IPv4 address or a host name.
    try:
        ipaddress.IPv4Address(value)
        return value
    except ValueError:
        pass
    if _HOSTNAME.match(value) and not re.fullmatch(r"[0-9.]+", value):
        return value
    raise ValueError(f"managementIp[{value}] is neither an IPv4 address nor a valid hostname")


Name = Annotated[str, Field(max_length=255)]
Description = Annotated[str, Field(max_length=2048)]
ManagementIp = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_management_ip)]
HostUuid = Annotated[str, Ref("HostVO")]
#: What the API accepts (ZStack's validValues); ``maintain`` passes through PreMaintenance.
ApiStateEvent = Literal["enable", "disable", "maintain"]
#: ZStack's HostStatusEvent.
StatusEvent = Literal["connecting", "connected", "disconnected"]
#: CPUs of a Simulator host: HostCapacityVO.cpuNum is an int column.
SimulatorCpus = Annotated[int, Field(ge=1, le=2**31 - 1)]
SimulatorMemory = Annotated[int, Field(ge=1, le=2**63 - 1)]


class APIAddHostEvent(APIEvent):
    """The result of every AddXxxHost API (ZStack's APIAddHostEvent)."""

    FULL_NAME = f"{_PACKAGE}.APIAddHostEvent"
    inventory: HostInventory | None = None


class APIAddSimulatorHostMsg(APICreateMessage):
    """Add a Simulator host: no agent, Connected as soon as it is added.

    ``cpuCapacity`` is its CPU count (HostCapacityVO.cpuNum, as ZStack's
    simulator reports it) and ``memoryCapacity`` its memory in bytes.
    """

    RESOURCE_TYPE = "HostVO"

    FULL_NAME = f"{_SIMULATOR_PACKAGE}.APIAddSimulatorHostMsg"
    SERVICE = SERVICE_ID
    REST = Rest("POST", "/hosts/simulators")
    RESPONSE = APIAddHostEvent
    ADMIN_ONLY = True

    memoryCapacity: SimulatorMemory
    cpuCapacity: SimulatorCpus
    name: Name
    description: Description | None = None
    managementIp: ManagementIp
    clusterUuid: Annotated[str, Ref("ClusterVO")]


class APIQueryHostReply(APIQueryReply):
    FULL_NAME = f"{_PACKAGE}.APIQueryHostReply"


class APIQueryHostMsg(APIQueryMessage):
    FULL_NAME = f"{_PACKAGE}.APIQueryHostMsg"
    SERVICE = SERVICE_ID
    REST = query_rest("/hosts")
    RESPONSE = APIQueryHostReply
    INVENTORY = HostInventory


class APIUpdateHostEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIUpdateHostEvent"
    inventory: HostInventory | None = None


class APIUpdateHostMsg(APIMessage):
    """Change the name, description or management address of a host (absent fields are kept)."""

    FULL_NAME = f"{_PACKAGE}.APIUpdateHostMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/hosts/{uuid}/actions", is_action=True)
    RESPONSE = APIUpdateHostEvent
    ADMIN_ONLY = True

    uuid: HostUuid
    name: Name | None = None
    description: Description | None = None
    managementIp: ManagementIp | None = None


class APIChangeHostStateEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIChangeHostStateEvent"
    inventory: HostInventory | None = None


class APIChangeHostStateMsg(APIMessage):
    """Enable or disable a host, or put it into Maintenance.

    ``maintain`` sets PreMaintenance, lets the services that care empty the
    host (the VM service stops or migrates its VMs), then sets Maintenance;
    if they fail, the host goes back to its state and the call fails.
    """

    FULL_NAME = f"{_PACKAGE}.APIChangeHostStateMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/hosts/{uuid}/actions", is_action=True)
    RESPONSE = APIChangeHostStateEvent
    ADMIN_ONLY = True

    uuid: HostUuid
    stateEvent: ApiStateEvent


class APIReconnectHostEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIReconnectHostEvent"
    inventory: HostInventory | None = None


class APIReconnectHostMsg(APIMessage):
    """Connect to the host again (a Simulator host is Connected at once)."""

    FULL_NAME = f"{_PACKAGE}.APIReconnectHostMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/hosts/{uuid}/actions", is_action=True)
    RESPONSE = APIReconnectHostEvent
    ADMIN_ONLY = True

    uuid: HostUuid


class APIDeleteHostEvent(APIEvent):
    """No inventory: success is the whole answer."""

    FULL_NAME = f"{_PACKAGE}.APIDeleteHostEvent"


class APIDeleteHostMsg(APIDeleteMessage):
    """Delete a host and, leaves first, what depends on it.

    ``uuid`` is not a :class:`Ref`: deleting a host that does not exist
    succeeds, as in ZStack (HostApiInterceptor).
    """

    FULL_NAME = f"{_PACKAGE}.APIDeleteHostMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("DELETE", "/hosts/{uuid}", all_to=None)
    RESPONSE = APIDeleteHostEvent
    ADMIN_ONLY = True

    uuid: UuidParam


# -- between MNs -------------------------------------------------------------------


class ChangeHostStateReply(Reply):
    TYPE = "host.ChangeHostStateReply"
    inventory: HostInventory | None = None


class ChangeHostStateMsg(Message):
    """Change one host's state on its owner MN without asking the host's
    extensions first (the cluster being changed has asked them already).

    As in ZStack, a host in PreMaintenance or Maintenance does not follow.
    """

    TYPE = "host.ChangeHostStateMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"

    uuid: str
    stateEvent: Literal["enable", "disable"]


class ChangeHostConnectionStateReply(Reply):
    TYPE = "host.ChangeHostConnectionStateReply"
    inventory: HostInventory | None = None


class ChangeHostConnectionStateMsg(Message):
    """Set a host's status (ZStack's ChangeHostConnectionStateMsg), e.g. to
    simulate a Simulator host losing its connection in tests."""

    TYPE = "host.ChangeHostConnectionStateMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"

    uuid: str
    connectionStateEvent: StatusEvent


class ReconnectHostReply(Reply):
    TYPE = "host.ReconnectHostReply"
    inventory: HostInventory | None = None


class ReconnectHostMsg(Message):
    """Reconnect a host on its owner MN (ZStack's ReconnectHostMsg): what the
    host tracker sends when a host stopped answering or its agent must be
    upgraded. Fails like APIReconnectHostMsg (HOST.1002)."""

    TYPE = "host.ReconnectHostMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"

    uuid: str


class HostStatusChangedEvent(Event):
    """Broadcast after a host's status changed and the change is stored
    (ZStack's canonical event ``/host/status/change``, HostStatusChangedData)."""

    TYPE = "host.HostStatusChangedEvent"

    hostUuid: str
    oldStatus: str
    newStatus: str
    inventory: HostInventory
