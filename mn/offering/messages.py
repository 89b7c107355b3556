"""The offering APIs, as ZStack's ``org.zstack.header.configuration`` defines them.

As ZStack's RBAC: only the admin may create instance offerings and update,
enable/disable or delete any offering; every account may create disk
offerings and query both.
"""

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
from mn.offering import constants as c
from mn.offering.inventory import DiskOfferingInventory, InstanceOfferingInventory

SERVICE_ID = "configuration"
_PACKAGE = "org.zstack.header.configuration"

Name = Annotated[str, Field(max_length=255)]
Description = Annotated[str, Field(max_length=2048)]
Uuid = UuidParam
InstanceOfferingUuid = Annotated[str, Ref("InstanceOfferingVO")]
DiskOfferingUuid = Annotated[str, Ref("DiskOfferingVO")]
StateEvent = Literal["enable", "disable"]
#: Bytes, at least 1 (ZStack's ``numberRange = {1, Long.MAX_VALUE}``).
Bytes = Annotated[int, Field(ge=1, le=2 ** 63 - 1)]


# -- instance offerings -------------------------------------------------------------

class APICreateInstanceOfferingEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APICreateInstanceOfferingEvent"
    inventory: InstanceOfferingInventory | None = None


class APICreateInstanceOfferingMsg(APICreateMessage):
    """Create an instance offering: ``cpuNum`` CPUs (1 to 1024) and ``memorySize``
    bytes of memory (at least 16 MiB); it starts Enabled."""

    RESOURCE_TYPE = "InstanceOfferingVO"

    FULL_NAME = f"{_PACKAGE}.APICreateInstanceOfferingMsg"
    SERVICE = SERVICE_ID
    REST = Rest("POST", "/instance-offerings")
    RESPONSE = APICreateInstanceOfferingEvent
    ADMIN_ONLY = True

    name: Name
    description: Description | None = None
    cpuNum: Annotated[int, Field(ge=1, le=1024)]
    #: Hidden in ZStack's documentation (@APINoSee) but accepted.
    cpuSpeed: Annotated[int, Field(ge=0)] = 0
    memorySize: Bytes
    reservedMemorySize: Annotated[int, Field(ge=0, le=2 ** 63 - 1)] = 0
    allocatorStrategy: str | None = None
    sortKey: int = 0
    type: str | None = None


class APIQueryInstanceOfferingReply(APIQueryReply):
    FULL_NAME = f"{_PACKAGE}.APIQueryInstanceOfferingReply"


class APIQueryInstanceOfferingMsg(APIQueryMessage):
    FULL_NAME = f"{_PACKAGE}.APIQueryInstanceOfferingMsg"
    SERVICE = SERVICE_ID
    REST = query_rest("/instance-offerings")
    RESPONSE = APIQueryInstanceOfferingReply
    INVENTORY = InstanceOfferingInventory


class APIUpdateInstanceOfferingEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIUpdateInstanceOfferingEvent"
    inventory: InstanceOfferingInventory | None = None


class APIUpdateInstanceOfferingMsg(APIMessage):
    """Change the name, description or allocator strategy of an instance offering."""

    FULL_NAME = f"{_PACKAGE}.APIUpdateInstanceOfferingMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/instance-offerings/{uuid}/actions", is_action=True)
    RESPONSE = APIUpdateInstanceOfferingEvent
    ADMIN_ONLY = True

    uuid: InstanceOfferingUuid
    name: Name | None = None
    description: Description | None = None
    allocatorStrategy: str | None = None


class APIChangeInstanceOfferingStateEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIChangeInstanceOfferingStateEvent"
    inventory: InstanceOfferingInventory | None = None


class APIChangeInstanceOfferingStateMsg(APIMessage):
    """Enable or disable an instance offering (a disabled one makes no new VMs)."""

    FULL_NAME = f"{_PACKAGE}.APIChangeInstanceOfferingStateMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/instance-offerings/{uuid}/actions", is_action=True)
    RESPONSE = APIChangeInstanceOfferingStateEvent
    ADMIN_ONLY = True

    uuid: InstanceOfferingUuid
    stateEvent: StateEvent


class APIDeleteInstanceOfferingEvent(APIEvent):
    """No inventory: success is the whole answer."""

    FULL_NAME = f"{_PACKAGE}.APIDeleteInstanceOfferingEvent"


class APIDeleteInstanceOfferingMsg(APIDeleteMessage):
    """Delete an instance offering (VMs made with it keep running).

    ``uuid`` is not a :class:`Ref`: deleting one that does not exist
    succeeds, as ZStack's ``successIfResourceNotExisting``.
    """

    FULL_NAME = f"{_PACKAGE}.APIDeleteInstanceOfferingMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("DELETE", "/instance-offerings/{uuid}", all_to=None)
    RESPONSE = APIDeleteInstanceOfferingEvent
    ADMIN_ONLY = True

    uuid: Uuid


# -- disk offerings -----------------------------------------------------------------

class APICreateDiskOfferingEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APICreateDiskOfferingEvent"
    inventory: DiskOfferingInventory | None = None


class APICreateDiskOfferingMsg(APICreateMessage):
    """Create a disk offering of ``diskSize`` bytes; it starts Enabled.

    ``allocationStrategy`` (sic, ZStack's name) becomes the offering's
    ``allocatorStrategy``.
    """

    RESOURCE_TYPE = "DiskOfferingVO"

    FULL_NAME = f"{_PACKAGE}.APICreateDiskOfferingMsg"
    SERVICE = SERVICE_ID
    REST = Rest("POST", "/disk-offerings")
    RESPONSE = APICreateDiskOfferingEvent

    name: Name
    description: Description | None = None
    diskSize: Bytes
    sortKey: int = 0
    allocationStrategy: str | None = None
    type: Literal[c.ZSTACK_DISK_OFFERING_TYPE] | None = None


class APIQueryDiskOfferingReply(APIQueryReply):
    FULL_NAME = f"{_PACKAGE}.APIQueryDiskOfferingReply"


class APIQueryDiskOfferingMsg(APIQueryMessage):
    FULL_NAME = f"{_PACKAGE}.APIQueryDiskOfferingMsg"
    SERVICE = SERVICE_ID
    REST = query_rest("/disk-offerings")
    RESPONSE = APIQueryDiskOfferingReply
    INVENTORY = DiskOfferingInventory


class APIUpdateDiskOfferingEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIUpdateDiskOfferingEvent"
    inventory: DiskOfferingInventory | None = None


class APIUpdateDiskOfferingMsg(APIMessage):
    """Change the name or description of a disk offering."""

    FULL_NAME = f"{_PACKAGE}.APIUpdateDiskOfferingMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/disk-offerings/{uuid}/actions", is_action=True)
    RESPONSE = APIUpdateDiskOfferingEvent
    ADMIN_ONLY = True

    uuid: DiskOfferingUuid
    name: Name | None = None
    description: Description | None = None


class APIChangeDiskOfferingStateEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIChangeDiskOfferingStateEvent"
    inventory: DiskOfferingInventory | None = None


class APIChangeDiskOfferingStateMsg(APIMessage):
    """Enable or disable a disk offering (a disabled one makes no new volumes)."""

    FULL_NAME = f"{_PACKAGE}.APIChangeDiskOfferingStateMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/disk-offerings/{uuid}/actions", is_action=True)
    RESPONSE = APIChangeDiskOfferingStateEvent
    ADMIN_ONLY = True

    uuid: DiskOfferingUuid
    stateEvent: StateEvent


class APIDeleteDiskOfferingEvent(APIEvent):
    """No inventory: success is the whole answer."""

    FULL_NAME = f"{_PACKAGE}.APIDeleteDiskOfferingEvent"


class APIDeleteDiskOfferingMsg(APIDeleteMessage):
    """Delete a disk offering (volumes made with it stay).

    ``uuid`` is not a :class:`Ref`: deleting one that does not exist
    succeeds, as ZStack's ``successIfResourceNotExisting``.
    """

    FULL_NAME = f"{_PACKAGE}.APIDeleteDiskOfferingMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("DELETE", "/disk-offerings/{uuid}", all_to=None)
    RESPONSE = APIDeleteDiskOfferingEvent
    ADMIN_ONLY = True

    uuid: Uuid
