"""The image APIs, as ZStack's ``org.zstack.header.image`` defines them."""

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
from mn.image import constants as c
from mn.image.inventory import ImageInventory

SERVICE_ID = "image"
_PACKAGE = "org.zstack.header.image"

Name = Annotated[str, Field(max_length=255)]
Description = Annotated[str, Field(max_length=2048)]
ImageUuid = Annotated[str, Ref("ImageVO")]
#: A non-empty list of backup storage uuids (ZStack's ``nonempty = true``); the
#: optional form keeps the Ref on the field (outside the ``| None``).
BackupStorageUuids = Annotated[list[str], Field(min_length=1), Ref("BackupStorageVO", owner_check=False)]  # ZStack: noOwnerCheck
OptionalBackupStorageUuids = Annotated[list[str] | None, Field(min_length=1), Ref("BackupStorageVO")]
MediaType = Literal[c.MEDIA_TYPES]
Platform = Literal[c.PLATFORMS]
Architecture = Literal[c.ARCHITECTURES]
#: Formats an image may be added in (ZStack's VolumeFormat types).
Format = Literal[c.FORMATS]


class APIAddImageEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIAddImageEvent"
    inventory: ImageInventory | None = None


class APIAddImageMsg(APICreateMessage):
    """Add an image from ``url`` to backup storage; it is Ready when the event comes.

    The download is simulated: see :mod:`mn.image.download` for how the
    URL gives the image's sizes. A mediaType of ISO makes the format iso;
    without a format (and not an ISO) the image is refused.
    """

    RESOURCE_TYPE = "ImageVO"

    FULL_NAME = f"{_PACKAGE}.APIAddImageMsg"
    SERVICE = SERVICE_ID
    REST = Rest("POST", "/images")
    RESPONSE = APIAddImageEvent

    name: Name
    description: Description | None = None
    url: Annotated[str, Field(max_length=1024)]
    mediaType: MediaType | None = None
    guestOsType: Annotated[str, Field(max_length=255)] | None = None
    architecture: Architecture | None = None
    system: bool = False
    format: Format | None = None
    platform: Platform | None = None
    backupStorageUuids: BackupStorageUuids
    type: Literal[c.ZSTACK_IMAGE_TYPE] | None = None
    virtio: bool = True


class APIQueryImageReply(APIQueryReply):
    FULL_NAME = f"{_PACKAGE}.APIQueryImageReply"


class APIQueryImageMsg(APIQueryMessage):
    FULL_NAME = f"{_PACKAGE}.APIQueryImageMsg"
    SERVICE = SERVICE_ID
    REST = query_rest("/images")
    RESPONSE = APIQueryImageReply
    INVENTORY = ImageInventory


class APIUpdateImageEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIUpdateImageEvent"
    inventory: ImageInventory | None = None


class APIUpdateImageMsg(APIMessage):
    """Change an image's attributes (absent fields are kept)."""

    FULL_NAME = f"{_PACKAGE}.APIUpdateImageMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/images/{uuid}/actions", is_action=True)
    RESPONSE = APIUpdateImageEvent

    uuid: ImageUuid
    name: Name | None = None
    description: Description | None = None
    guestOsType: Annotated[str, Field(max_length=255)] | None = None
    mediaType: MediaType | None = None
    format: Literal[c.UPDATABLE_FORMATS] | None = None
    system: bool | None = None
    platform: Platform | None = None
    architecture: Architecture | None = None
    virtio: bool | None = None


class APIChangeImageStateEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIChangeImageStateEvent"
    inventory: ImageInventory | None = None


class APIChangeImageStateMsg(APIMessage):
    """Enable or disable an image (a disabled image makes no new VMs or volumes)."""

    FULL_NAME = f"{_PACKAGE}.APIChangeImageStateMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/images/{uuid}/actions", is_action=True)
    RESPONSE = APIChangeImageStateEvent

    uuid: ImageUuid
    stateEvent: Literal["enable", "disable"]


class APIDeleteImageEvent(APIEvent):
    """No inventory: success is the whole answer."""

    FULL_NAME = f"{_PACKAGE}.APIDeleteImageEvent"


class APIDeleteImageMsg(APIDeleteMessage):
    """Delete an image from some (``backupStorageUuids``) or all of its backup storages,
    following the global config ``image/deletionPolicy``.

    ``uuid`` is not a :class:`Ref`: deleting an image that does not exist
    succeeds, as ZStack's ``successIfResourceNotExisting``.
    """

    FULL_NAME = f"{_PACKAGE}.APIDeleteImageMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("DELETE", "/images/{uuid}", all_to=None)
    RESPONSE = APIDeleteImageEvent

    uuid: UuidParam
    backupStorageUuids: OptionalBackupStorageUuids = None


class APIExpungeImageEvent(APIEvent):
    """No inventory: success is the whole answer."""

    FULL_NAME = f"{_PACKAGE}.APIExpungeImageEvent"


class APIExpungeImageMsg(APIMessage):
    """Remove a deleted image's copies for good (from ``backupStorageUuids``, or from
    every backup storage where it is deleted), giving their capacity back.

    ``uuid`` is ZStack's alias of ``imageUuid`` kept for CloudFormation
    templates; ``imageUuid`` names the image.
    """

    FULL_NAME = f"{_PACKAGE}.APIExpungeImageMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "imageUuid"
    REST = Rest("PUT", "/images/{imageUuid}/actions", is_action=True, all_to=None)
    RESPONSE = APIExpungeImageEvent

    uuid: Annotated[str | None, Ref("ImageVO")] = None
    imageUuid: ImageUuid
    backupStorageUuids: OptionalBackupStorageUuids = None


class APIRecoverImageEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIRecoverImageEvent"
    inventory: ImageInventory | None = None


class APIRecoverImageMsg(APIMessage):
    """Make a deleted (not yet expunged) image Ready again, on ``backupStorageUuids``
    or on every backup storage where it is deleted."""

    FULL_NAME = f"{_PACKAGE}.APIRecoverImageMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "imageUuid"
    REST = Rest("PUT", "/images/{imageUuid}/actions", is_action=True)
    RESPONSE = APIRecoverImageEvent

    imageUuid: ImageUuid
    backupStorageUuids: list[str] | None = None
