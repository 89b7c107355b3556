"""The primary storage APIs, as ZStack defines them.

ZStack's ``org.zstack.header.storage.primary`` (the generic APIs),
``org.zstack.header.simulator.storage.primary`` (AddSimulatorPrimaryStorage)
and ``org.zstack.storage.primary.local`` (the LocalStorage APIs).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator

from mn.api.message import (
    APICreateMessage,
    APIDeleteMessage,
    APIEvent,
    APIMessage,
    APIQueryMessage,
    APIQueryReply,
    APIReply,
    Ref,
    Rest,
    UuidParam,
    query_rest,
)
from mn.db.models.storage import LOCAL_STORAGE_TYPE, SIMULATOR_PRIMARY_STORAGE_TYPE
from mn.storage.primary.inventory import LocalStorageResourceRefInventory, PrimaryStorageInventory

SERVICE_ID = "storage.primary"
_PACKAGE = "org.zstack.header.storage.primary"
_SIMULATOR = "org.zstack.header.simulator.storage.primary"
_LOCAL = "org.zstack.storage.primary.local"

Name = Annotated[str, Field(max_length=255)]
Description = Annotated[str, Field(max_length=2048)]
Url = Annotated[str, Field(max_length=2048)]
#: Bytes; never negative.
Capacity = Annotated[int, Field(ge=0)]
PrimaryStorageUuid = Annotated[str, Ref("PrimaryStorageVO")]
ClusterUuid = Annotated[str, Ref("ClusterVO")]
ZoneUuid = Annotated[str, Ref("ZoneVO")]
StateEvent = Literal["enable", "disable", "maintain", "deleting"]


def _local_path(url: str) -> str:
    # ZStack's LocalStorageApiInterceptor.
    if not url.startswith("/"):
        raise ValueError(f"the url[{url}] is not an absolute path starting with '/'")
    if url.startswith(("/dev", "/proc", "/sys")):
        raise ValueError("the url contains an invalid folder[/dev or /proc or /sys]")
    return url


class APIAddPrimaryStorageEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIAddPrimaryStorageEvent"
    inventory: PrimaryStorageInventory | None = None


class APIAddPrimaryStorageMsg(APICreateMessage):
    """What every AddXxxPrimaryStorage API takes (ZStack's abstract APIAddPrimaryStorageMsg).

    The storage is created Enabled in ``zoneUuid``; it serves no host until
    attached to a cluster.
    """

    RESOURCE_TYPE = "PrimaryStorageVO"
    SERVICE = SERVICE_ID
    RESPONSE = APIAddPrimaryStorageEvent
    ADMIN_ONLY = True
    #: The ``type`` the storage is created with.
    STORAGE_TYPE: ClassVar[str] = ""

    url: Url
    name: Name
    description: Description | None = None
    zoneUuid: ZoneUuid


class APIAddSimulatorPrimaryStorageMsg(APIAddPrimaryStorageMsg):
    """A simulated primary storage with the capacities given (ZStack's defaults when absent)."""

    FULL_NAME = f"{_SIMULATOR}.APIAddSimulatorPrimaryStorageMsg"
    REST = Rest("POST", "/primary-storage/simulators")
    STORAGE_TYPE = SIMULATOR_PRIMARY_STORAGE_TYPE

    type: Literal["SimulatorPrimaryStorage"] | None = None
    totalCapacity: Capacity = 100000000
    availableCapacity: Capacity = 10000000
    availablePhysicalCapacity: Capacity = 10000000
    totalPhysicalCapacity: Capacity = 10000000

    @model_validator(mode="after")
    def _available_within_total(self) -> "APIAddSimulatorPrimaryStorageMsg":
        if self.availableCapacity > self.totalCapacity:
            raise ValueError(f"availableCapacity {self.availableCapacity} is more than totalCapacity "
                             f"{self.totalCapacity}")
        if self.availablePhysicalCapacity > self.totalPhysicalCapacity:
            raise ValueError(f"availablePhysicalCapacity {self.availablePhysicalCapacity} is more than "
                             f"totalPhysicalCapacity {self.totalPhysicalCapacity}")
        return self


class APIAddLocalPrimaryStorageMsg(APIAddPrimaryStorageMsg):
    """A LocalStorage: each host of the clusters it is attached to gives its own disk at ``url``."""

    FULL_NAME = f"{_LOCAL}.APIAddLocalPrimaryStorageMsg"
    REST = Rest("POST", "/primary-storage/local-storage")
    STORAGE_TYPE = LOCAL_STORAGE_TYPE

    url: Annotated[Url, AfterValidator(_local_path)]
    type: Literal["LocalStorage"] | None = None


class APIQueryPrimaryStorageReply(APIQueryReply):
    FULL_NAME = f"{_PACKAGE}.APIQueryPrimaryStorageReply"


class APIQueryPrimaryStorageMsg(APIQueryMessage):
    FULL_NAME = f"{_PACKAGE}.APIQueryPrimaryStorageMsg"
    SERVICE = SERVICE_ID
    REST = query_rest("/primary-storage")
    RESPONSE = APIQueryPrimaryStorageReply
    INVENTORY = PrimaryStorageInventory


class APIUpdatePrimaryStorageEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIUpdatePrimaryStorageEvent"
    inventory: PrimaryStorageInventory | None = None


class APIUpdatePrimaryStorageMsg(APIMessage):
    """Change the name, description or url of a primary storage (absent fields are kept)."""

    FULL_NAME = f"{_PACKAGE}.APIUpdatePrimaryStorageMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/primary-storage/{uuid}/actions", is_action=True)
    RESPONSE = APIUpdatePrimaryStorageEvent
    ADMIN_ONLY = True

    uuid: PrimaryStorageUuid
    name: Name | None = None
    description: Description | None = None
    url: Url | None = None


class APIChangePrimaryStorageStateEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIChangePrimaryStorageStateEvent"
    inventory: PrimaryStorageInventory | None = None


class APIChangePrimaryStorageStateMsg(APIMessage):
    """Enable, disable, maintain or mark deleting: only Enabled storage takes new volumes."""

    FULL_NAME = f"{_PACKAGE}.APIChangePrimaryStorageStateMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/primary-storage/{uuid}/actions", is_action=True)
    RESPONSE = APIChangePrimaryStorageStateEvent
    ADMIN_ONLY = True

    uuid: PrimaryStorageUuid
    stateEvent: StateEvent


class APIReconnectPrimaryStorageEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIReconnectPrimaryStorageEvent"
    inventory: PrimaryStorageInventory | None = None


class APIReconnectPrimaryStorageMsg(APIMessage):
    """Connect again: the storage is Connected; a LocalStorage also gives every host
    of its clusters that lacks one its share, and sums its capacity again."""

    FULL_NAME = f"{_PACKAGE}.APIReconnectPrimaryStorageMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/primary-storage/{uuid}/actions", is_action=True)
    RESPONSE = APIReconnectPrimaryStorageEvent
    ADMIN_ONLY = True

    uuid: PrimaryStorageUuid


class APIDeletePrimaryStorageEvent(APIEvent):
    """No inventory: success is the whole answer."""

    FULL_NAME = f"{_PACKAGE}.APIDeletePrimaryStorageEvent"


class APIDeletePrimaryStorageMsg(APIDeleteMessage):
    """Delete a primary storage detached from every cluster, and what is on it.

    ``uuid`` is not a :class:`Ref`: deleting a storage that does not exist
    succeeds, as in ZStack.
    """

    FULL_NAME = f"{_PACKAGE}.APIDeletePrimaryStorageMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("DELETE", "/primary-storage/{uuid}", all_to=None)
    RESPONSE = APIDeletePrimaryStorageEvent
    ADMIN_ONLY = True

    uuid: UuidParam


class APIAttachPrimaryStorageToClusterEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIAttachPrimaryStorageToClusterEvent"
    inventory: PrimaryStorageInventory | None = None


class APIAttachPrimaryStorageToClusterMsg(APIMessage):
    """Let the hosts of a cluster (of the storage's zone) use a primary storage."""

    FULL_NAME = f"{_PACKAGE}.APIAttachPrimaryStorageToClusterMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "primaryStorageUuid"
    REST = Rest("POST", "/clusters/{clusterUuid}/primary-storage/{primaryStorageUuid}")
    RESPONSE = APIAttachPrimaryStorageToClusterEvent
    ADMIN_ONLY = True

    clusterUuid: ClusterUuid
    primaryStorageUuid: PrimaryStorageUuid


class APIDetachPrimaryStorageFromClusterEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIDetachPrimaryStorageFromClusterEvent"
    inventory: PrimaryStorageInventory | None = None


class APIDetachPrimaryStorageFromClusterMsg(APIMessage):
    """Stop a cluster's hosts using a primary storage; refused while VMs of the
    cluster have volumes on it."""

    FULL_NAME = f"{_PACKAGE}.APIDetachPrimaryStorageFromClusterMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "primaryStorageUuid"
    REST = Rest("DELETE", "/clusters/{clusterUuid}/primary-storage/{primaryStorageUuid}")
    RESPONSE = APIDetachPrimaryStorageFromClusterEvent
    ADMIN_ONLY = True

    primaryStorageUuid: PrimaryStorageUuid
    clusterUuid: ClusterUuid


class APIGetPrimaryStorageCapacityReply(APIReply):
    FULL_NAME = f"{_PACKAGE}.APIGetPrimaryStorageCapacityReply"
    totalCapacity: int = 0
    availableCapacity: int = 0
    totalPhysicalCapacity: int = 0
    availablePhysicalCapacity: int = 0


class APIGetPrimaryStorageCapacityMsg(APIMessage):
    """Capacity summed over the storage named, else over the storage attached to
    the clusters named, else over the storage of the zones named (or all)."""

    FULL_NAME = f"{_PACKAGE}.APIGetPrimaryStorageCapacityMsg"
    SERVICE = SERVICE_ID
    SYNC = True
    REST = Rest("GET", "/primary-storage/capacities", all_to=None,
                fields=("totalCapacity", "availableCapacity", "totalPhysicalCapacity",
                        "availablePhysicalCapacity"))
    RESPONSE = APIGetPrimaryStorageCapacityReply
    ADMIN_ONLY = True

    # Ref on the whole optional list: pydantic keeps no metadata inside "X | None".
    zoneUuids: Annotated[list[str] | None, Ref("ZoneVO")] = None
    clusterUuids: Annotated[list[str] | None, Ref("ClusterVO")] = None
    primaryStorageUuids: Annotated[list[str] | None, Ref("PrimaryStorageVO")] = None
    all: bool = False

    @model_validator(mode="after")
    def _names_something(self) -> "APIGetPrimaryStorageCapacityMsg":
        if not (self.zoneUuids or self.clusterUuids or self.primaryStorageUuids or self.all):
            raise ValueError("zoneUuids, clusterUuids, primaryStorageUuids must have at least one be "
                             "none-empty list, or all is set to true")
        return self


class APIGetPrimaryStorageTypesReply(APIReply):
    FULL_NAME = f"{_PACKAGE}.APIGetPrimaryStorageTypesReply"
    primaryStorageTypes: list[str] = []


class APIGetPrimaryStorageTypesMsg(APIMessage):
    """The primary storage types this MN can create."""

    FULL_NAME = f"{_PACKAGE}.APIGetPrimaryStorageTypesMsg"
    SERVICE = SERVICE_ID
    SYNC = True
    REST = Rest("GET", "/primary-storage/types", all_to=None, fields=("types=primaryStorageTypes",))
    RESPONSE = APIGetPrimaryStorageTypesReply


class APIQueryLocalStorageResourceRefReply(APIQueryReply):
    FULL_NAME = f"{_LOCAL}.APIQueryLocalStorageResourceRefReply"


class APIQueryLocalStorageResourceRefMsg(APIQueryMessage):
    """Which host of a LocalStorage holds each volume."""

    FULL_NAME = f"{_LOCAL}.APIQueryLocalStorageResourceRefMsg"
    SERVICE = SERVICE_ID
    REST = Rest("GET", "/primary-storage/local-storage/resource-refs", all_to="inventories")
    RESPONSE = APIQueryLocalStorageResourceRefReply
    INVENTORY = LocalStorageResourceRefInventory
    ADMIN_ONLY = True


class HostDiskCapacity(BaseModel):
    """ZStack's APIGetLocalStorageHostDiskCapacityReply.HostDiskCapacity."""

    hostUuid: str
    totalCapacity: int
    availableCapacity: int
    totalPhysicalCapacity: int
    availablePhysicalCapacity: int


class APIGetLocalStorageHostDiskCapacityReply(APIReply):
    FULL_NAME = f"{_LOCAL}.APIGetLocalStorageHostDiskCapacityReply"
    inventories: list[HostDiskCapacity] = []


class APIGetLocalStorageHostDiskCapacityMsg(APIMessage):
    """Each host's share of a LocalStorage (or one host's, with ``hostUuid``)."""

    FULL_NAME = f"{_LOCAL}.APIGetLocalStorageHostDiskCapacityMsg"
    SERVICE = SERVICE_ID
    SYNC = True
    REST = Rest("GET", "/primary-storage/local-storage/{primaryStorageUuid}/capacities",
                all_to="inventories")
    RESPONSE = APIGetLocalStorageHostDiskCapacityReply
    ADMIN_ONLY = True

    hostUuid: Annotated[str | None, Ref("HostVO")] = None
    primaryStorageUuid: PrimaryStorageUuid
