"""The data volume APIs, as ZStack's ``org.zstack.header.volume`` defines them."""

from __future__ import annotations

from typing import Annotated

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
from mn.volume.inventory import VolumeInventory

SERVICE_ID = "volume"
_PACKAGE = "org.zstack.header.volume"

VolumeUuid = Annotated[str, Ref("VolumeVO")]
VmUuid = Annotated[str, Ref("VmInstanceVO")]


class _VolumeEvent(APIEvent):
    inventory: VolumeInventory | None = None


class APICreateDataVolumeEvent(_VolumeEvent):
    FULL_NAME = f"{_PACKAGE}.APICreateDataVolumeEvent"


class APICreateDataVolumeMsg(APICreateMessage):
    """Create a data volume of a disk offering's size (or ``diskSize`` bytes).

    With ``primaryStorageUuid`` it is made there at once (Ready); without,
    it is NotInstantiated and gets storage when first attached to a VM. On
    LocalStorage the host is named by the system tag
    ``localStorage::hostUuid::<uuid>``.
    """

    RESOURCE_TYPE = "VolumeVO"

    FULL_NAME = f"{_PACKAGE}.APICreateDataVolumeMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "resourceUuid"
    REST = Rest("POST", "/volumes/data")
    RESPONSE = APICreateDataVolumeEvent

    name: Annotated[str, Field(min_length=1, max_length=255)]
    description: Annotated[str, Field(max_length=2048)] | None = None
    diskOfferingUuid: Annotated[str | None, Ref("DiskOfferingVO")] = None
    diskSize: Annotated[int, Field(ge=0)] = 0
    primaryStorageUuid: Annotated[str | None, Ref("PrimaryStorageVO", owner_check=False)] = None


class APIQueryVolumeReply(APIQueryReply):
    FULL_NAME = f"{_PACKAGE}.APIQueryVolumeReply"


class APIQueryVolumeMsg(APIQueryMessage):
    FULL_NAME = f"{_PACKAGE}.APIQueryVolumeMsg"
    SERVICE = SERVICE_ID
    REST = query_rest("/volumes")
    RESPONSE = APIQueryVolumeReply
    INVENTORY = VolumeInventory


class APIAttachDataVolumeToVmEvent(_VolumeEvent):
    FULL_NAME = f"{_PACKAGE}.APIAttachDataVolumeToVmEvent"


class APIAttachDataVolumeToVmMsg(APIMessage):
    """Attach a data volume to a VM (routed to the VM's owner, run in its queue)."""

    FULL_NAME = f"{_PACKAGE}.APIAttachDataVolumeToVmMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "vmInstanceUuid"
    REST = Rest("POST", "/volumes/{volumeUuid}/vm-instances/{vmInstanceUuid}")
    RESPONSE = APIAttachDataVolumeToVmEvent

    vmInstanceUuid: VmUuid
    volumeUuid: VolumeUuid


class APIDetachDataVolumeFromVmEvent(_VolumeEvent):
    FULL_NAME = f"{_PACKAGE}.APIDetachDataVolumeFromVmEvent"


class APIDetachDataVolumeFromVmMsg(APIMessage):
    """Detach a data volume from the VM it is attached to (``vmUuid``, if given, must be that VM)."""

    FULL_NAME = f"{_PACKAGE}.APIDetachDataVolumeFromVmMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("DELETE", "/volumes/{uuid}/vm-instances")
    RESPONSE = APIDetachDataVolumeFromVmEvent

    uuid: VolumeUuid
    vmUuid: Annotated[str | None, Ref("VmInstanceVO")] = None


class APIDeleteDataVolumeEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIDeleteDataVolumeEvent"


class APIDeleteDataVolumeMsg(APIDeleteMessage):
    """Delete a data volume: detached first, then Deleted (recoverable) or, with
    ``volume/deletionPolicy`` Direct, expunged. Deleting one that does not
    exist succeeds, as ZStack's ``successIfResourceNotExisting``."""

    FULL_NAME = f"{_PACKAGE}.APIDeleteDataVolumeMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("DELETE", "/volumes/{uuid}", all_to=None)
    RESPONSE = APIDeleteDataVolumeEvent

    uuid: UuidParam


class APIExpungeDataVolumeEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIExpungeDataVolumeEvent"


class APIExpungeDataVolumeMsg(APIMessage):
    """Delete a Deleted data volume for good, giving its storage back."""

    FULL_NAME = f"{_PACKAGE}.APIExpungeDataVolumeMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/volumes/{uuid}/actions", is_action=True, all_to=None)
    RESPONSE = APIExpungeDataVolumeEvent

    uuid: UuidParam


class APIRecoverDataVolumeEvent(_VolumeEvent):
    FULL_NAME = f"{_PACKAGE}.APIRecoverDataVolumeEvent"


class APIRecoverDataVolumeMsg(APIMessage):
    """Bring a Deleted data volume back (Ready, or NotInstantiated if it had no storage)."""

    FULL_NAME = f"{_PACKAGE}.APIRecoverDataVolumeMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/volumes/{uuid}/actions", is_action=True)
    RESPONSE = APIRecoverDataVolumeEvent

    uuid: VolumeUuid
