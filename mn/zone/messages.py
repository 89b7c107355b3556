"""The zone APIs, as ZStack's ``org.zstack.header.zone`` defines them."""

from __future__ import annotations

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
from mn.zone.inventory import ZoneInventory

SERVICE_ID = "zone"
_PACKAGE = "org.zstack.header.zone"

# ZStack's validRegexValues of a zone name: letters, digits, CJK ideographs,
# blanks and -_.():+" but no leading or trailing blank.
_ZONE_NAME = re.compile(r'^(?! )[\u4e00-\u9fa5a-zA-Z0-9\-_.():+" ]*(?<! )$')


def _zone_name(value: str) -> str:
    if not _ZONE_NAME.match(value):
        raise ValueError('a zone name may hold only letters, digits, Chinese characters, blanks and '
                         '-_.():+" and must neither start nor end with a blank')
    return value


ZoneName = Annotated[str, Field(max_length=255), AfterValidator(_zone_name)]
Description = Annotated[str, Field(max_length=2048)]
ZoneUuid = Annotated[str, Ref("ZoneVO")]
StateEvent = Literal["enable", "disable"]


class APICreateZoneEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APICreateZoneEvent"
    inventory: ZoneInventory | None = None


class APICreateZoneMsg(APICreateMessage):
    """Create a zone; ``isDefault`` takes the default mark from any other zone."""

    RESOURCE_TYPE = "ZoneVO"

    FULL_NAME = f"{_PACKAGE}.APICreateZoneMsg"
    SERVICE = SERVICE_ID
    REST = Rest("POST", "/zones")
    RESPONSE = APICreateZoneEvent
    ADMIN_ONLY = True

    name: ZoneName
    description: Description | None = None
    #: Reserved by ZStack for other zone types; "zstack" is the only one.
    type: Literal["zstack"] | None = None
    isDefault: bool | None = None


class APIQueryZoneReply(APIQueryReply):
    FULL_NAME = f"{_PACKAGE}.APIQueryZoneReply"


class APIQueryZoneMsg(APIQueryMessage):
    FULL_NAME = f"{_PACKAGE}.APIQueryZoneMsg"
    SERVICE = SERVICE_ID
    REST = query_rest("/zones")
    RESPONSE = APIQueryZoneReply
    INVENTORY = ZoneInventory


class APIUpdateZoneEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIUpdateZoneEvent"
    inventory: ZoneInventory | None = None


class APIUpdateZoneMsg(APIMessage):
    """Change the name, description or default mark of a zone (absent fields are kept)."""

    FULL_NAME = f"{_PACKAGE}.APIUpdateZoneMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/zones/{uuid}/actions", is_action=True)
    RESPONSE = APIUpdateZoneEvent
    ADMIN_ONLY = True

    uuid: ZoneUuid
    name: ZoneName | None = None
    description: Description | None = None
    isDefault: bool | None = None


class APIChangeZoneStateEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIChangeZoneStateEvent"
    inventory: ZoneInventory | None = None


class APIChangeZoneStateMsg(APIMessage):
    """Enable or disable a zone; its clusters follow."""

    FULL_NAME = f"{_PACKAGE}.APIChangeZoneStateMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/zones/{uuid}/actions", is_action=True)
    RESPONSE = APIChangeZoneStateEvent
    ADMIN_ONLY = True

    uuid: ZoneUuid
    stateEvent: StateEvent


class APIDeleteZoneEvent(APIEvent):
    """No inventory: success is the whole answer."""

    FULL_NAME = f"{_PACKAGE}.APIDeleteZoneEvent"


class APIDeleteZoneMsg(APIDeleteMessage):
    """Delete a zone and, leaves first, everything in it.

    ``uuid`` is not a :class:`Ref`: deleting a zone that does not exist
    succeeds, as ZStack's ``successIfResourceNotExisting``.
    """

    FULL_NAME = f"{_PACKAGE}.APIDeleteZoneMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("DELETE", "/zones/{uuid}", all_to=None)
    RESPONSE = APIDeleteZoneEvent
    ADMIN_ONLY = True

    uuid: UuidParam
