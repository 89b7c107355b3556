"""The tag APIs over SQLite and the memory bus, on zones."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from mn.api.message import QueryCondition, SessionInfo
from mn.api.query import QueryEngine
from mn.db.models.tag import SystemTagVO, UserTagVO
from mn.errors import OperationError, SysErrors
from mn.tags import PatternedSystemTag, validators
from mn.tags.api import (
    APICreateSystemTagMsg,
    APICreateUserTagMsg,
    APIDeleteTagMsg,
    APIQuerySystemTagMsg,
    APIQueryUserTagMsg,
    APIUpdateSystemTagMsg,
    SystemTagInventory,
    TagService,
    UserTagInventory,
)
from mn.zone.messages import APICreateZoneMsg
from mn.zone.service import ZoneService
from tests.support.small_node import SmallNode

ZONE = "ZoneVO"
OWNER = PatternedSystemTag("owner::{name}", ZONE, validators={"name": validators.hostname})
BUILT_IN = PatternedSystemTag("builtin::{value}", ZONE, inherent=True)
USER = SessionInfo(uuid="1" * 32, accountUuid="2" * 32, isAdmin=False)


class Identity:
    """Hides the resources in ``hidden`` from every non-admin caller."""

    def __init__(self):
        self.hidden: set[str] = set()
        self.asked = []

    async def check_visible(self, session, resource_type, uuids):
        self.asked.append((session.accountUuid, resource_type, list(uuids)))
        return [u for u in uuids if u in self.hidden]


@pytest.fixture
async def node(sqlite_url):
    node = SmallNode(sqlite_url)
    node.tags.register(OWNER, BUILT_IN)
    await node.start(TagService, ZoneService)
    yield node
    await node.stop()


@pytest.fixture
async def zone(node):
    return (await node.call(APICreateZoneMsg(name="zone1"))).inventory


def rows(node, model, **where) -> int:
    with node.db.session() as s:
        return s.scalar(select(func.count()).select_from(model).filter_by(**where))


async def failure(call) -> OperationError:
    with pytest.raises(OperationError) as excinfo:
        await call
    return excinfo.value


async def test_create_a_system_tag(node, zone):
    msg = APICreateSystemTagMsg(resourceType=ZONE, resourceUuid=zone.uuid, tag="owner::web-team")
    tag = (await node.intercept_and_call(msg)).inventory
    assert isinstance(tag, SystemTagInventory)
    assert (tag.resourceUuid, tag.resourceType, tag.tag, tag.type, tag.inherent) == (
        zone.uuid, ZONE, "owner::web-team", "System", False)
    assert rows(node, SystemTagVO, uuid=tag.uuid, resourceUuid=zone.uuid) == 1


@pytest.mark.parametrize("resource_type, tag, code, details", [
    (ZONE, "owner::not a host", SysErrors.INVALID_ARGUMENT_ERROR, "not a host name"),
    (ZONE, "colour::red", SysErrors.INVALID_ARGUMENT_ERROR, "matches no system tag pattern"),
    ("NoSuchVO", "owner::x", SysErrors.INVALID_ARGUMENT_ERROR, "no resource type[NoSuchVO] found"),
    ("ClusterVO", "owner::x", SysErrors.RESOURCE_NOT_FOUND, "ClusterVO[uuid:"),
])
async def test_bad_system_tags_are_refused_by_the_interceptor_and_the_handler(
        node, zone, resource_type, tag, code, details):
    msg = APICreateSystemTagMsg(resourceType=resource_type, resourceUuid=zone.uuid, tag=tag)
    for call in (node.services["tag"].intercept(msg), node.call(msg)):
        err = await failure(call)
        assert err.error.code == code.value and details in err.error.details
    assert rows(node, SystemTagVO) == 0


async def test_tags_on_a_missing_resource_are_refused(node):
    msg = APICreateUserTagMsg(resourceType=ZONE, resourceUuid="9" * 32, tag="x")
    err = await failure(node.intercept_and_call(msg))
    assert err.error.code == SysErrors.RESOURCE_NOT_FOUND.value
    assert rows(node, UserTagVO) == 0


async def test_create_update_and_delete_user_and_system_tags(node, zone):
    user = (await node.intercept_and_call(
        APICreateUserTagMsg(resourceType=ZONE, resourceUuid=zone.uuid, tag="Production"))).inventory
    assert isinstance(user, UserTagInventory) and (user.tag, user.type) == ("Production", "User")
    system = (await node.call(
        APICreateSystemTagMsg(resourceType=ZONE, resourceUuid=zone.uuid, tag="owner::a"))).inventory

    updated = (await node.intercept_and_call(APIUpdateSystemTagMsg(uuid=system.uuid, tag="owner::b"))).inventory
    assert (updated.uuid, updated.tag) == (system.uuid, "owner::b")
    err = await failure(node.intercept_and_call(APIUpdateSystemTagMsg(uuid=system.uuid, tag="owner::-bad")))
    assert err.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    err = await failure(node.intercept_and_call(APIUpdateSystemTagMsg(uuid=user.uuid, tag="owner::c")))
    assert err.error.code == SysErrors.RESOURCE_NOT_FOUND.value  # a user tag is no system tag

    for uuid in (user.uuid, system.uuid):
        event = await node.intercept_and_call(APIDeleteTagMsg(uuid=uuid))
        assert event.success and event.model_dump(exclude={"success", "error"}) == {}
    assert rows(node, SystemTagVO) == rows(node, UserTagVO) == 0
    await node.intercept_and_call(APIDeleteTagMsg(uuid=system.uuid))  # already gone: success


async def test_inherent_tags_cannot_be_deleted(node, zone):
    tag = await node.tags.create_system_tag(zone.uuid, ZONE, "builtin::1")
    assert tag["inherent"]
    for call in (node.services["tag"].intercept(APIDeleteTagMsg(uuid=tag["uuid"])),
                 node.call(APIDeleteTagMsg(uuid=tag["uuid"]))):
        err = await failure(call)
        assert err.error.code == SysErrors.OPERATION_ERROR.value
        assert "inherent system tag" in err.error.details
    assert rows(node, SystemTagVO, uuid=tag["uuid"]) == 1


async def test_callers_only_tag_what_they_can_see(node, zone):
    identity = Identity()
    node.identity = identity
    identity.hidden.add(zone.uuid)
    create = APICreateUserTagMsg(resourceType=ZONE, resourceUuid=zone.uuid, tag="mine")
    err = await failure(node.intercept_and_call(create, session=USER))
    assert (err.error.code, identity.asked[0]) == ("ID.1002", (USER.accountUuid, ZONE, [zone.uuid]))
    assert rows(node, UserTagVO) == 0

    tag = (await node.intercept_and_call(create)).inventory  # the admin sees everything
    err = await failure(node.intercept_and_call(APIDeleteTagMsg(uuid=tag.uuid), session=USER))
    assert err.error.code == "ID.1002" and rows(node, UserTagVO) == 1

    identity.hidden.clear()
    await node.intercept_and_call(APIDeleteTagMsg(uuid=tag.uuid), session=USER)
    assert rows(node, UserTagVO) == 0


async def test_queries_over_both_tag_tables(node, zone):
    await node.call(APICreateSystemTagMsg(resourceType=ZONE, resourceUuid=zone.uuid, tag="owner::ops"))
    await node.call(APICreateUserTagMsg(resourceType=ZONE, resourceUuid=zone.uuid, tag="blue"))
    engine = QueryEngine(node)
    by_zone = [QueryCondition(name="resourceUuid", op="=", value=zone.uuid)]
    [system] = (await engine.query(APIQuerySystemTagMsg(conditions=by_zone))).inventories
    assert (system["tag"], system["inherent"], system["type"]) == ("owner::ops", False, "System")
    [user] = (await engine.query(APIQueryUserTagMsg(conditions=by_zone))).inventories
    assert (user["tag"], user["type"]) == ("blue", "User") and "inherent" not in user
