"""The zone service over SQLite and the memory bus: create, update, state, delete."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from mn.api.message import QueryCondition
from mn.api.query import QueryEngine
from mn.cascade import CascadeExtension, DeletionRefused
from mn.cluster.inventory import ClusterInventory
from mn.cluster.messages import APICreateClusterMsg, APIQueryClusterMsg
from mn.cluster.service import ClusterService
from mn.db.models.cluster import ClusterVO
from mn.db.models.tag import UserTagVO
from mn.db.models.zone import ZoneVO
from mn.errors import OperationError, SysErrors
from mn.tags import SystemTag
from mn.zone.extensions import ZoneStateExtension
from mn.zone.inventory import ZoneInventory
from mn.zone.messages import (
    APIChangeZoneStateMsg,
    APICreateZoneMsg,
    APIDeleteZoneMsg,
    APIDeleteZoneEvent,
    APIQueryZoneMsg,
    APIUpdateZoneMsg,
)
from mn.zone.service import ZoneService
from tests.support.small_node import SmallNode

ZONE_TAG = SystemTag("zone::test::marker", "ZoneVO")


@pytest.fixture
async def node(sqlite_url):
    node = SmallNode(sqlite_url)
    node.tags.register(ZONE_TAG)
    await node.start(ClusterService, ZoneService)
    yield node
    await node.stop()


def rows(node, model, **where) -> int:
    with node.db.session() as s:
        return s.scalar(select(func.count()).select_from(model).filter_by(**where))


async def create_zone(node, name="zone1", **kw):
    return (await node.call(APICreateZoneMsg(name=name, **kw))).inventory


async def failure(call) -> OperationError:
    with pytest.raises(OperationError) as excinfo:
        await call
    return excinfo.value


async def test_create_returns_the_inventory_and_stores_the_row(node):
    zone = await create_zone(node, "Zone-1 (main)", description="first", userTags=["prod"])
    assert (zone.name, zone.description, zone.state, zone.type, zone.isDefault) == (
        "Zone-1 (main)", "first", "Enabled", "zstack", False)
    with node.db.session() as s:
        vo = s.get(ZoneVO, zone.uuid)
        assert (vo.name, vo.state, vo.type) == ("Zone-1 (main)", "Enabled", "zstack")
    assert rows(node, UserTagVO, resourceUuid=zone.uuid, resourceType="ZoneVO", tag="prod") == 1


async def test_create_with_a_chosen_uuid_and_refuse_it_twice(node):
    uuid = "0" * 31 + "1"
    assert (await create_zone(node, resourceUuid=uuid)).uuid == uuid
    err = await failure(create_zone(node, "other", resourceUuid=uuid))
    assert err.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    assert uuid in err.error.details
    assert rows(node, ZoneVO) == 1


async def test_a_bad_system_tag_leaves_no_zone(node):
    err = await failure(create_zone(node, systemTags=["zone::nonsense"]))
    assert err.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    assert "zone::nonsense" in err.error.details
    assert rows(node, ZoneVO) == 0
    zone = await create_zone(node, systemTags=["zone::test::marker"])
    assert (await node.tags.tags_of(zone.uuid, "system"))[0]["tag"] == "zone::test::marker"


@pytest.mark.parametrize("fields, where", [
    ({"name": " leading blank"}, "name"),
    ({"name": "trailing blank "}, "name"),
    ({"name": "semi;colon"}, "name"),
    ({"name": "x" * 256}, "name"),
    ({"name": "z", "description": "d" * 2049}, "description"),
    ({"name": "z", "type": "vmware"}, "type"),
    ({"name": "z", "resourceUuid": "not-a-uuid"}, "resourceUuid"),
])
def test_bad_parameters_fail_at_construction(fields, where):
    with pytest.raises(ValidationError) as excinfo:
        APICreateZoneMsg(**fields)
    assert [e["loc"][0] for e in excinfo.value.errors()] == [where]


def test_bad_state_events_fail_at_construction():
    with pytest.raises(ValidationError, match="stateEvent"):
        APIChangeZoneStateMsg(uuid="a" * 32, stateEvent="maintain")


async def test_one_default_zone_at_a_time(node):
    a = await create_zone(node, "a", isDefault=True)
    b = await create_zone(node, "b", isDefault=True)
    c = await create_zone(node, "c")
    assert (a.isDefault, b.isDefault, c.isDefault) == (True, True, False)
    assert rows(node, ZoneVO, isDefault=True) == 1 and rows(node, ZoneVO, uuid=b.uuid, isDefault=True) == 1

    updated = (await node.call(APIUpdateZoneMsg(uuid=a.uuid, isDefault=True))).inventory
    assert updated.isDefault and rows(node, ZoneVO, isDefault=True) == 1
    updated = (await node.call(APIUpdateZoneMsg(uuid=a.uuid, isDefault=False))).inventory
    assert not updated.isDefault and rows(node, ZoneVO, isDefault=True) == 0


async def test_update_changes_only_what_is_given(node):
    zone = await create_zone(node, "before", description="keep me")
    renamed = (await node.call(APIUpdateZoneMsg(uuid=zone.uuid, name="after"))).inventory
    assert (renamed.name, renamed.description, renamed.createDate) == ("after", "keep me", zone.createDate)
    assert renamed.lastOpDate >= zone.lastOpDate
    described = (await node.call(APIUpdateZoneMsg(uuid=zone.uuid, description="new"))).inventory
    assert (described.name, described.description) == ("after", "new")
    err = await failure(node.call(APIUpdateZoneMsg(uuid="f" * 32, name="x")))
    assert err.error.code == SysErrors.RESOURCE_NOT_FOUND.value


async def test_state_changes_follow_zstacks_machine(node):
    zone = await create_zone(node)
    for event, state in [("disable", "Disabled"), ("disable", "Disabled"), ("enable", "Enabled"),
                         ("enable", "Enabled")]:
        changed = (await node.call(APIChangeZoneStateMsg(uuid=zone.uuid, stateEvent=event))).inventory
        assert changed.state == state
        assert rows(node, ZoneVO, uuid=zone.uuid, state=state) == 1


async def test_clusters_follow_their_zones_state(node):
    zone = await create_zone(node)
    other = await create_zone(node, "other")
    clusters = [(await node.call(APICreateClusterMsg(zoneUuid=z.uuid, name=f"c{i}", hypervisorType="KVM")))
                .inventory for i, z in enumerate([zone, zone, other])]
    await node.call(APIChangeZoneStateMsg(uuid=zone.uuid, stateEvent="disable"))
    assert rows(node, ClusterVO, zoneUuid=zone.uuid, state="Disabled") == 2
    assert rows(node, ClusterVO, uuid=clusters[2].uuid, state="Enabled") == 1
    await node.call(APIChangeZoneStateMsg(uuid=zone.uuid, stateEvent="enable"))
    assert rows(node, ClusterVO, state="Enabled") == 3


class Refuser(ZoneStateExtension):
    def __init__(self):
        self.calls = []

    async def pre_change(self, zone, event, next_state):
        self.calls.append(("pre", zone.uuid, event, next_state))
        if event == "disable":
            raise OperationError.of(SysErrors.OPERATION_ERROR, "a host is migrating")

    async def before_change(self, zone, event, next_state):
        self.calls.append(("before", zone.state, next_state))

    async def after_change(self, zone, event, previous_state):
        self.calls.append(("after", zone.state, previous_state))
        raise RuntimeError("a broken listener does not undo the change")


async def test_an_extension_can_refuse_a_state_change(node):
    zone = await create_zone(node)
    refuser = Refuser()
    node.services["zone"].add_state_extension(refuser)
    err = await failure(node.call(APIChangeZoneStateMsg(uuid=zone.uuid, stateEvent="disable")))
    assert err.error.code == SysErrors.CHANGE_RESOURCE_STATE_ERROR.value
    assert "a host is migrating" in err.error.details
    assert err.error.cause.code == SysErrors.OPERATION_ERROR.value
    assert rows(node, ZoneVO, uuid=zone.uuid, state="Enabled") == 1
    assert refuser.calls == [("pre", zone.uuid, "disable", "Disabled")]

    refuser.calls.clear()
    changed = (await node.call(APIChangeZoneStateMsg(uuid=zone.uuid, stateEvent="enable"))).inventory
    assert changed.state == "Enabled"
    assert refuser.calls == [("pre", zone.uuid, "enable", "Enabled"), ("before", "Enabled", "Enabled"),
                             ("after", "Enabled", "Enabled")]


async def test_delete_takes_the_clusters_and_tags_with_the_zone(node):
    zone = await create_zone(node, userTags=["doomed"])
    keep = await create_zone(node, "keep")
    for name, z in [("c1", zone), ("c2", zone), ("c3", keep)]:
        await node.call(APICreateClusterMsg(zoneUuid=z.uuid, name=name, hypervisorType="KVM",
                                            userTags=[f"tag-{name}"]))
    event = await node.call(APIDeleteZoneMsg(uuid=zone.uuid))
    assert isinstance(event, APIDeleteZoneEvent) and event.model_dump(exclude={"success", "error"}) == {}
    assert rows(node, ZoneVO) == 1 and rows(node, ClusterVO) == 1
    assert rows(node, ClusterVO, zoneUuid=keep.uuid) == 1
    assert rows(node, UserTagVO) == 1 and rows(node, UserTagVO, tag="tag-c3") == 1
    # Deleting what is gone succeeds, as in ZStack.
    await node.call(APIDeleteZoneMsg(uuid=zone.uuid))


class RefusingChild(CascadeExtension):
    """A resource type under clusters that refuses to go (a running VM, say)."""

    resource_type = "RefusingThingVO"
    parents = ("ClusterVO",)

    def __init__(self):
        self.deleted = []

    async def children(self, ctx, parent_type, parent_uuids):
        return [f"{u[:-1]}f" for u in parent_uuids]

    async def check(self, ctx, uuids):
        raise DeletionRefused(uuids[0], "it is running")

    async def delete(self, ctx, uuids):
        self.deleted.extend(uuids)


async def test_permissive_deletion_stops_at_a_refusal_enforcing_does_not(node):
    zone = await create_zone(node)
    await node.call(APICreateClusterMsg(zoneUuid=zone.uuid, name="c", hypervisorType="KVM"))
    child = RefusingChild()
    node.cascade.register(child)
    err = await failure(node.call(APIDeleteZoneMsg(uuid=zone.uuid)))
    assert err.error.code == SysErrors.DELETE_RESOURCE_ERROR.value
    assert "it is running" in err.error.details
    assert (rows(node, ZoneVO), rows(node, ClusterVO), child.deleted) == (1, 1, [])

    await node.call(APIDeleteZoneMsg(uuid=zone.uuid, deleteMode="Enforcing"))
    assert (rows(node, ZoneVO), rows(node, ClusterVO), len(child.deleted)) == (0, 0, 1)


async def test_operations_on_one_zone_run_in_its_queue(node, monkeypatch):
    zone = await create_zone(node)
    seen = []
    run = node.queues.run

    async def spy(signature, fn, **kw):
        seen.append(signature)
        return await run(signature, fn, **kw)

    monkeypatch.setattr(node.queues, "run", spy)
    await node.call(APIUpdateZoneMsg(uuid=zone.uuid, name="n", isDefault=True))
    await node.call(APIChangeZoneStateMsg(uuid=zone.uuid, stateEvent="disable"))
    await node.call(APIDeleteZoneMsg(uuid=zone.uuid))
    queue = f"zone-{zone.uuid}"
    assert seen == [queue, "default-zone-operation-queue", queue, queue]


async def test_queries_walk_zstacks_expanded_queries(node):
    east, west = await create_zone(node, "east"), await create_zone(node, "west")
    for name, z in [("e1", east), ("e2", east), ("w1", west)]:
        await node.call(APICreateClusterMsg(zoneUuid=z.uuid, name=name, hypervisorType="KVM"))
    engine = QueryEngine(node)

    reply = await engine.query(APIQueryClusterMsg(conditions=[QueryCondition(name="zone.name", op="=",
                                                                             value="east")]))
    assert sorted(inv["name"] for inv in reply.inventories) == ["e1", "e2"]
    assert set(reply.inventories[0]) == set(ClusterInventory.model_fields)
    reply = await engine.query(APIQueryZoneMsg(conditions=[QueryCondition(name="cluster.name", op="=",
                                                                          value="w1")]))
    assert [inv["uuid"] for inv in reply.inventories] == [west.uuid]
    assert set(reply.inventories[0]) == set(ZoneInventory.model_fields)


class Owners:
    """Records what the identity manager would: owners at create, refs dropped at delete."""

    def __init__(self):
        self.owned: dict[str, str] = {}

    def own_in_session(self, sql_session, session, uuid, resource_type):
        self.owned[uuid] = resource_type

    def delete_refs_in_session(self, sql_session, uuids):
        for uuid in uuids:
            self.owned.pop(uuid, None)


async def test_created_resources_are_owned_and_deleted_ones_forgotten(node):
    node.identity = owners = Owners()
    zone = await create_zone(node)
    cluster = (await node.call(APICreateClusterMsg(zoneUuid=zone.uuid, name="c", hypervisorType="KVM"))).inventory
    assert owners.owned == {zone.uuid: "ZoneVO", cluster.uuid: "ClusterVO"}
    await node.call(APIDeleteZoneMsg(uuid=zone.uuid))
    assert owners.owned == {}


async def test_a_create_whose_commit_loses_the_connection_makes_one_zone(node, monkeypatch):
    import pymysql
    from sqlalchemy import event
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    real_commit, inserted, lost = Session.commit, [], []

    def commit(self):
        real_commit(self)
        if inserted and not lost:
            lost.append(1)  # committed, but the client never heard it
            raise OperationalError("COMMIT", {}, pymysql.err.OperationalError(2013, "Lost connection"))

    def on_insert(mapper, connection, target):
        inserted.append(target.uuid)

    monkeypatch.setattr(Session, "commit", commit)
    event.listen(ZoneVO, "after_insert", on_insert)
    try:
        zone = await create_zone(node, "lost-commit")
    finally:
        event.remove(ZoneVO, "after_insert", on_insert)
    # Without the create's commit probe the transaction ran again: two zones.
    assert lost and inserted == [zone.uuid] and rows(node, ZoneVO, name="lost-commit") == 1
