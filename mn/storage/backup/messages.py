"""The backup storage APIs, as ZStack defines them.

ZStack's ``org.zstack.header.storage.backup`` (the generic APIs) and
``org.zstack.header.simulator.storage.backup`` (AddSimulatorBackupStorage).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

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
from mn.db.models.storage import SIMULATOR_BACKUP_STORAGE_TYPE
from mn.storage.backup.inventory import BackupStorageInventory

SERVICE_ID = "storage.backup"
_PACKAGE = "org.zstack.header.storage.backup"
_SIMULATOR = "org.zstack.header.simulator.storage.backup"

Name = Annotated[str, Field(max_length=255)]
Description = Annotated[str, Field(max_length=2048)]
#: Bytes; never negative.
Capacity = Annotated[int, Field(ge=0)]
BackupStorageUuid = Annotated[str, Ref("BackupStorageVO")]
ZoneUuid = Annotated[str, Ref("ZoneVO")]


class APIAddBackupStorageEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIAddBackupStorageEvent"
    inventory: BackupStorageInventory | None = None


class APIAddBackupStorageMsg(APICreateMessage):
    """What every AddXxxBackupStorage API takes (ZStack's abstract APIAddBackupStorageMsg).

    The storage is created Enabled and Connected and serves no zone until
    attached to one.
    """

    RESOURCE_TYPE = "BackupStorageVO"
    SERVICE = SERVICE_ID
    RESPONSE = APIAddBackupStorageEvent
    ADMIN_ONLY = True
    #: The ``type`` the storage is created with.
    STORAGE_TYPE: ClassVar[str] = ""

    # ZStack: emptyString = false.
    url: Annotated[str, Field(min_length=1, max_length=2048)]
    name: Name
    description: Description | None = None
    #: Import the images found on the storage (a simulator has none).
    importImages: bool = False


class APIAddSimulatorBackupStorageMsg(APIAddBackupStorageMsg):
    """A simulated backup storage with the capacities given."""

    FULL_NAME = f"{_SIMULATOR}.APIAddSimulatorBackupStorageMsg"
    REST = Rest("POST", "/backup-storage/simulators")
    STORAGE_TYPE = SIMULATOR_BACKUP_STORAGE_TYPE

    type: Literal["SimulatorBackupStorage"] | None = None
    totalCapacity: Capacity = 0
    availableCapacity: Capacity = 0

    @model_validator(mode="after")
    def _available_within_total(self) -> "APIAddSimulatorBackupStorageMsg":
        if self.availableCapacity > self.totalCapacity:
            raise ValueError(f"availableCapacity {self.availableCapacity} is more than totalCapacity "
                             f"{self.totalCapacity}")
        return self


class APIQueryBackupStorageReply(APIQueryReply):
    FULL_NAME = f"{_PACKAGE}.APIQueryBackupStorageReply"


class APIQueryBackupStorageMsg(APIQueryMessage):
    FULL_NAME = f"{_PACKAGE}.APIQueryBackupStorageMsg"
    SERVICE = SERVICE_ID
    REST = query_rest("/backup-storage")
    RESPONSE = APIQueryBackupStorageReply
    INVENTORY = BackupStorageInventory


class APIUpdateBackupStorageEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIUpdateBackupStorageEvent"
    inventory: BackupStorageInventory | None = None


class APIUpdateBackupStorageMsg(APIMessage):
    """Change the name or description of a backup storage (absent fields are kept)."""

    FULL_NAME = f"{_PACKAGE}.APIUpdateBackupStorageMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/backup-storage/{uuid}/actions", is_action=True)
    RESPONSE = APIUpdateBackupStorageEvent
    ADMIN_ONLY = True

    uuid: BackupStorageUuid
    name: Name | None = None
    description: Description | None = None


class APIChangeBackupStorageStateEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIChangeBackupStorageStateEvent"
    inventory: BackupStorageInventory | None = None


class APIChangeBackupStorageStateMsg(APIMessage):
    """Enable or disable: only Enabled backup storage takes new images."""

    FULL_NAME = f"{_PACKAGE}.APIChangeBackupStorageStateMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/backup-storage/{uuid}/actions", is_action=True)
    RESPONSE = APIChangeBackupStorageStateEvent
    ADMIN_ONLY = True

    uuid: BackupStorageUuid
    stateEvent: Literal["enable", "disable"]


class APIReconnectBackupStorageEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIReconnectBackupStorageEvent"
    inventory: BackupStorageInventory | None = None


class APIReconnectBackupStorageMsg(APIMessage):
    """Connect again (a simulator is Connected at once)."""

    FULL_NAME = f"{_PACKAGE}.APIReconnectBackupStorageMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/backup-storage/{uuid}/actions", is_action=True)
    RESPONSE = APIReconnectBackupStorageEvent
    ADMIN_ONLY = True

    uuid: BackupStorageUuid


class APIDeleteBackupStorageEvent(APIEvent):
    """No inventory: success is the whole answer."""

    FULL_NAME = f"{_PACKAGE}.APIDeleteBackupStorageEvent"


class APIDeleteBackupStorageMsg(APIDeleteMessage):
    """Delete a backup storage and what depends on it (image copies on it).

    ``uuid`` is not a :class:`Ref`: deleting a storage that does not exist
    succeeds, as in ZStack.
    """

    FULL_NAME = f"{_PACKAGE}.APIDeleteBackupStorageMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("DELETE", "/backup-storage/{uuid}", all_to=None)
    RESPONSE = APIDeleteBackupStorageEvent
    ADMIN_ONLY = True

    uuid: UuidParam


class APIAttachBackupStorageToZoneEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIAttachBackupStorageToZoneEvent"
    inventory: BackupStorageInventory | None = None


class APIAttachBackupStorageToZoneMsg(APIMessage):
    """Let a zone use a backup storage (one storage may serve several zones)."""

    FULL_NAME = f"{_PACKAGE}.APIAttachBackupStorageToZoneMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "backupStorageUuid"
    REST = Rest("POST", "/zones/{zoneUuid}/backup-storage/{backupStorageUuid}")
    RESPONSE = APIAttachBackupStorageToZoneEvent
    ADMIN_ONLY = True

    zoneUuid: ZoneUuid
    backupStorageUuid: BackupStorageUuid


class APIDetachBackupStorageFromZoneEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIDetachBackupStorageFromZoneEvent"
    inventory: BackupStorageInventory | None = None


class APIDetachBackupStorageFromZoneMsg(APIMessage):
    """Stop a zone using a backup storage."""

    FULL_NAME = f"{_PACKAGE}.APIDetachBackupStorageFromZoneMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "backupStorageUuid"
    REST = Rest("DELETE", "/zones/{zoneUuid}/backup-storage/{backupStorageUuid}")
    RESPONSE = APIDetachBackupStorageFromZoneEvent
    ADMIN_ONLY = True

    backupStorageUuid: BackupStorageUuid
    zoneUuid: ZoneUuid


class APIGetBackupStorageCapacityReply(APIReply):
    FULL_NAME = f"{_PACKAGE}.APIGetBackupStorageCapacityReply"
    totalCapacity: int = 0
    availableCapacity: int = 0


class APIGetBackupStorageCapacityMsg(APIMessage):
    """Capacity summed over the storage named, else over the storage attached
    to the zones named, else over all."""

    FULL_NAME = f"{_PACKAGE}.APIGetBackupStorageCapacityMsg"
    SERVICE = SERVICE_ID
    SYNC = True
    REST = Rest("GET", "/backup-storage/capacities", all_to=None,
                fields=("totalCapacity", "availableCapacity"))
    RESPONSE = APIGetBackupStorageCapacityReply
    ADMIN_ONLY = True

    # Ref on the whole optional list: pydantic keeps no metadata inside "X | None".
    zoneUuids: Annotated[list[str] | None, Ref("ZoneVO")] = None
    backupStorageUuids: Annotated[list[str] | None, Ref("BackupStorageVO")] = None
    all: bool = False

    @model_validator(mode="after")
    def _names_something(self) -> "APIGetBackupStorageCapacityMsg":
        if not (self.zoneUuids or self.backupStorageUuids or self.all):
            raise ValueError("zoneUuids, backupStorageUuids must have at least one be none-empty list, "
                             "or all is set to true")
        return self


class APIGetBackupStorageTypesReply(APIReply):
    FULL_NAME = f"{_PACKAGE}.APIGetBackupStorageTypesReply"
    backupStorageTypes: list[str] = []


class APIGetBackupStorageTypesMsg(APIMessage):
    """The backup storage types this MN can create."""

    FULL_NAME = f"{_PACKAGE}.APIGetBackupStorageTypesMsg"
    SERVICE = SERVICE_ID
    SYNC = True
    REST = Rest("GET", "/backup-storage/types", all_to=None, fields=("types=backupStorageTypes",))
    RESPONSE = APIGetBackupStorageTypesReply
