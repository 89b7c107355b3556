"""The tag APIs (ZStack's ``org.zstack.header.tag``) and their service.

Creating a tag names a resource by type (its table, ``ZoneVO``) and uuid:
the type must be a table of this MN, the resource must exist, and a caller
other than the admin must be allowed to see it. System tags must match a
pattern registered for the type (``node.tags``); user tags are free text.
Queries run over SystemTagVO and UserTagVO through the query engine.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from mn.api.dispatch import permission_denied
from mn.api.inventory import Inventory
from mn.api.message import (
    APIDeleteMessage,
    APIEvent,
    APIMessage,
    APIQueryMessage,
    APIQueryReply,
    Rest,
    SessionInfo,
    UuidParam,
    query_rest,
)
from mn.db.models.base import model_of_table
from mn.db.models.tag import SYSTEM_TAG_TYPE, TAG_MAX_LENGTH, SystemTagVO, UserTagVO
from mn.errors import OperationError, SysErrors
from mn.service import Service, handles, intercepts
from mn.tags import store

SERVICE_ID = "tag"
_PACKAGE = "org.zstack.header.tag"

ResourceType = Annotated[str, Field(min_length=1, max_length=64)]
Uuid = UuidParam
TagText = Annotated[str, Field(min_length=1, max_length=TAG_MAX_LENGTH)]


class SystemTagInventory(Inventory):
    """ZStack's SystemTagInventory."""

    VO = SystemTagVO

    uuid: str
    resourceUuid: str
    resourceType: str
    tag: str
    type: str
    inherent: bool = False
    createDate: datetime
    lastOpDate: datetime


class UserTagInventory(Inventory):
    """ZStack's UserTagInventory (without tag patterns, which this MN does not have)."""

    VO = UserTagVO

    uuid: str
    resourceUuid: str
    resourceType: str
    tag: str
    type: str
    createDate: datetime
    lastOpDate: datetime


class APICreateSystemTagEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APICreateSystemTagEvent"
    inventory: SystemTagInventory | None = None


class APICreateSystemTagMsg(APIMessage):
    """Put a system tag on a resource; it must match a pattern of the resource's type."""

    FULL_NAME = f"{_PACKAGE}.APICreateSystemTagMsg"
    SERVICE = SERVICE_ID
    REST = Rest("POST", "/system-tags")
    RESPONSE = APICreateSystemTagEvent

    resourceType: ResourceType
    resourceUuid: Uuid
    tag: TagText


class APICreateUserTagEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APICreateUserTagEvent"
    inventory: UserTagInventory | None = None


class APICreateUserTagMsg(APIMessage):
    """Put a user tag (a free label) on a resource."""

    FULL_NAME = f"{_PACKAGE}.APICreateUserTagMsg"
    SERVICE = SERVICE_ID
    REST = Rest("POST", "/user-tags")
    RESPONSE = APICreateUserTagEvent

    resourceType: ResourceType
    resourceUuid: Uuid
    tag: TagText


class APIQuerySystemTagReply(APIQueryReply):
    FULL_NAME = f"{_PACKAGE}.APIQuerySystemTagReply"


class APIQuerySystemTagMsg(APIQueryMessage):
    FULL_NAME = f"{_PACKAGE}.APIQuerySystemTagMsg"
    SERVICE = SERVICE_ID
    REST = query_rest("/system-tags")
    RESPONSE = APIQuerySystemTagReply
    INVENTORY = SystemTagInventory


class APIQueryUserTagReply(APIQueryReply):
    FULL_NAME = f"{_PACKAGE}.APIQueryUserTagReply"


class APIQueryUserTagMsg(APIQueryMessage):
    FULL_NAME = f"{_PACKAGE}.APIQueryUserTagMsg"
    SERVICE = SERVICE_ID
    REST = query_rest("/user-tags")
    RESPONSE = APIQueryUserTagReply
    INVENTORY = UserTagInventory


class APIUpdateSystemTagEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIUpdateSystemTagEvent"
    inventory: SystemTagInventory | None = None


class APIUpdateSystemTagMsg(APIMessage):
    """Change a system tag's text, checked as a new tag of its resource."""

    FULL_NAME = f"{_PACKAGE}.APIUpdateSystemTagMsg"
    SERVICE = SERVICE_ID
    REST = Rest("PUT", "/system-tags/{uuid}/actions", is_action=True)
    RESPONSE = APIUpdateSystemTagEvent

    uuid: Uuid
    tag: TagText


class APIDeleteTagEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIDeleteTagEvent"


class APIDeleteTagMsg(APIDeleteMessage):
    """Delete a system or user tag; a tag that does not exist is already deleted."""

    FULL_NAME = f"{_PACKAGE}.APIDeleteTagMsg"
    SERVICE = SERVICE_ID
    REST = Rest("DELETE", "/tags/{uuid}", all_to=None)
    RESPONSE = APIDeleteTagEvent

    uuid: Uuid


class TagService(Service):
    """ZStack's TagManager as a service: the non-query tag APIs.

    Interceptors check what they can before a job exists (so a bad tag is a
    400 at once); the handlers check again, as things may change in between.
    """

    SERVICE_ID = SERVICE_ID

    # -- create ----------------------------------------------------------------

    @intercepts(APICreateSystemTagMsg)
    async def check_create_system_tag(self, msg: APICreateSystemTagMsg) -> None:
        await self._check_resource(msg.session, msg.resourceType, msg.resourceUuid)
        self.node.tags.validate_system_tags(msg.resourceType, [msg.tag])

    @handles(APICreateSystemTagMsg)
    async def create_system_tag(self, msg: APICreateSystemTagMsg) -> APICreateSystemTagEvent:
        await self._check_resource(msg.session, msg.resourceType, msg.resourceUuid)
        created = await self.node.tags.create_system_tag(msg.resourceUuid, msg.resourceType, msg.tag)
        return APICreateSystemTagEvent(inventory=SystemTagInventory(**created))

    @intercepts(APICreateUserTagMsg)
    async def check_create_user_tag(self, msg: APICreateUserTagMsg) -> None:
        await self._check_resource(msg.session, msg.resourceType, msg.resourceUuid)
        self.node.tags.validate_user_tags([msg.tag])

    @handles(APICreateUserTagMsg)
    async def create_user_tag(self, msg: APICreateUserTagMsg) -> APICreateUserTagEvent:
        await self._check_resource(msg.session, msg.resourceType, msg.resourceUuid)
        created = await self.node.tags.create_user_tag(msg.resourceUuid, msg.resourceType, msg.tag)
        return APICreateUserTagEvent(inventory=UserTagInventory(**created))

    # -- update ----------------------------------------------------------------

    @intercepts(APIUpdateSystemTagMsg)
    async def check_update_system_tag(self, msg: APIUpdateSystemTagMsg) -> None:
        current = await self._system_tag(msg.session, msg.uuid)
        self.node.tags.validate_system_tags(current["resourceType"], [msg.tag])

    @handles(APIUpdateSystemTagMsg)
    async def update_system_tag(self, msg: APIUpdateSystemTagMsg) -> APIUpdateSystemTagEvent:
        await self._system_tag(msg.session, msg.uuid)
        updated = await self.node.tags.update_system_tag(msg.uuid, msg.tag)
        return APIUpdateSystemTagEvent(inventory=SystemTagInventory(**updated))

    # -- delete ----------------------------------------------------------------

    @intercepts(APIDeleteTagMsg)
    async def check_delete_tag(self, msg: APIDeleteTagMsg) -> None:
        await self._deletable(msg)

    @handles(APIDeleteTagMsg)
    async def delete_tag(self, msg: APIDeleteTagMsg) -> APIDeleteTagEvent:
        if await self._deletable(msg):
            await self.node.tags.delete_tag(msg.uuid)
        return APIDeleteTagEvent()

    # -- checks ----------------------------------------------------------------

    async def _check_resource(self, session: SessionInfo | None, resource_type: str,
                              resource_uuid: str) -> None:
        if model_of_table(resource_type) is None:
            raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                    f"no resource type[{resource_type}] found in tag system")
        await self.node.api.check_exist(resource_type, [resource_uuid], "resourceUuid")
        await self._check_visible(session, resource_type, resource_uuid)

    async def _check_visible(self, session: SessionInfo | None, resource_type: str,
                             resource_uuid: str) -> None:
        identity = getattr(self.node, "identity", None)
        if session is None or session.isAdmin or identity is None:
            return
        if await identity.check_visible(session, resource_type, [resource_uuid]):
            raise permission_denied(f"the account {session.accountUuid} has no access to "
                                    f"{resource_type}[uuid:{resource_uuid}]")

    async def _find_tag(self, uuid: str) -> dict | None:
        def read(s) -> dict | None:
            vo = store.find_tag(s, uuid)
            return None if vo is None else store.inventory(vo)

        return await self.node.db.run(read)

    async def _system_tag(self, session: SessionInfo | None, uuid: str) -> dict:
        """The system tag's inventory, if it exists and the caller may see its resource."""
        tag = await self._find_tag(uuid)
        if tag is None or tag["type"] != SYSTEM_TAG_TYPE:
            raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND, f"SystemTagVO[uuid:{uuid}] is not found")
        await self._check_visible(session, tag["resourceType"], tag["resourceUuid"])
        return tag

    async def _deletable(self, msg: APIDeleteTagMsg) -> bool:
        """False if the tag is gone already; raises if the caller may not delete it."""
        tag = await self._find_tag(msg.uuid)
        if tag is None:
            return False
        if tag.get("inherent"):
            raise OperationError.of(SysErrors.OPERATION_ERROR,
                                    f"tag[uuid:{msg.uuid}] is an inherent system tag, can not be removed")
        await self._check_visible(msg.session, tag["resourceType"], tag["resourceUuid"])
        return True
