"""Cascade deletion over the sample zone/cluster/host/VM tables on SQLite."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from mn.cascade import (
    DELETION_CLEANUP,
    ENFORCING,
    PERMISSIVE,
    CascadeContext,
    CascadeExtension,
    CascadeFacade,
    CascadeGraphError,
)
from mn.cascade import facade as facade_module
from mn.db import Database
from mn.errors import OperationError, SysErrors
from tests.support import cascade_resources as res
from tests.support.cascade_resources import (
    SampleClusterVO,
    SampleHostVO,
    SampleVmVO,
    SampleZoneVO,
)

ALL_TYPES = [model.__tablename__ for model in res.MODELS]


@pytest.fixture
def db(sqlite_url):
    database = Database(sqlite_url, threads=2)
    res.SampleBase.metadata.create_all(database.engine)
    yield database
    database.close()


@pytest.fixture
def trees(db):
    with db.session() as s:
        return res.populate(s, zones=2, clusters=2, storages=2, hosts=3, vms=2)


class Harness:
    """A facade with the sample tree registered, its journal and its refusals."""

    def __init__(self, db: Database, batch_size: int = 500):
        self.db = db
        self.journal: list[tuple[str, str, tuple[str, ...]]] = []
        self.refuse: dict[str, str] = {}
        self.facade = CascadeFacade(SimpleNamespace(db=db), batch_size=batch_size)
        for ext in res.tree_extensions(self.journal, self.refuse):
            self.facade.register(ext)

    def types(self, action: str) -> list[str]:
        """Resource types in the order ``action`` ran on them (repeats merged)."""
        order: list[str] = []
        for done, t, _ in self.journal:
            if done == action and (not order or order[-1] != t):
                order.append(t)
        return order

    def uuids(self, action: str, t: str) -> set[str]:
        return {u for done, kind, uuids in self.journal if done == action and kind == t for u in uuids}

    def counts(self) -> dict[str, int]:
        with self.db.session() as s:
            return res.count_rows(s)


@pytest.fixture
def harness(db):
    return Harness(db)


def expected_counts(trees, remaining_zones) -> dict[str, int]:
    return {t: sum(len(trees[z][t]) for z in remaining_zones) for t in ALL_TYPES}


def test_levels_put_a_type_reached_by_several_paths_at_its_deepest(harness):
    assert harness.facade.levels("SampleZoneVO") == [
        ["SampleZoneVO"],
        ["SampleClusterVO", "SamplePrimaryStorageVO"],
        ["SampleHostVO"],
        ["SampleVmVO"],
    ]
    assert harness.facade.levels("SampleHostVO") == [["SampleHostVO"], ["SampleVmVO"]]
    assert harness.facade.levels("SampleVmVO") == [["SampleVmVO"]]


async def test_permissive_delete_removes_every_descendant_leaves_first(harness, trees):
    zone, other = list(trees)
    deleted = await harness.facade.delete("SampleZoneVO", [zone])

    assert harness.counts() == expected_counts(trees, [other])
    assert {t: set(u) for t, u in deleted.items()} == {
        t: set(trees[zone][t]) for t in ALL_TYPES if trees[zone][t]}
    # Leaves first: VMs before hosts, hosts before clusters, the zone last.
    assert harness.types("delete") == ["SampleVmVO", "SampleHostVO", "SampleClusterVO",
                                       "SamplePrimaryStorageVO", "SampleZoneVO"]
    assert harness.types("check") == harness.types("delete")
    # Each VM is deleted once although two paths reach it; the host-less VM is found too.
    vm_deletes = [u for done, t, uuids in harness.journal if done == "delete" and t == "SampleVmVO" for u in uuids]
    assert sorted(vm_deletes) == sorted(trees[zone]["SampleVmVO"])


async def test_cleanup_runs_after_every_delete(harness, trees):
    zone = next(iter(trees))
    await harness.facade.delete("SampleZoneVO", [zone])
    actions = [done for done, _, _ in harness.journal if done in ("delete", "cleanup")]
    first_cleanup = actions.index("cleanup")
    assert "delete" not in actions[first_cleanup:]
    assert harness.uuids("cleanup", "SampleHostVO") == set(trees[zone]["SampleHostVO"])
    assert harness.types("cleanup") == harness.types("delete")


async def test_permissive_refusal_deletes_nothing_and_names_the_resource(harness, trees):
    zone = next(iter(trees))
    before = harness.counts()
    host = trees[zone]["SampleHostVO"][4]
    harness.refuse[host] = "it runs a migration"

    with pytest.raises(OperationError) as caught:
        await harness.facade.delete("SampleZoneVO", [zone])

    err = caught.value.error
    assert err.code == SysErrors.DELETE_RESOURCE_ERROR.value
    assert f"SampleHostVO[uuid:{host}] refuses: it runs a migration" in err.details
    assert zone in err.details
    assert harness.counts() == before
    assert not [entry for entry in harness.journal if entry[0] in ("delete", "force-delete", "cleanup")]


async def test_enforcing_skips_check_and_force_deletes_everything(harness, trees):
    zone, other = list(trees)
    harness.refuse[trees[zone]["SampleHostVO"][0]] = "busy"
    harness.refuse[zone] = "busy"

    await harness.facade.delete("SampleZoneVO", [zone], mode=ENFORCING)

    assert harness.counts() == expected_counts(trees, [other])
    assert harness.types("check") == []
    assert harness.types("delete") == []
    assert harness.types("force-delete") == ["SampleVmVO", "SampleHostVO", "SampleClusterVO",
                                             "SamplePrimaryStorageVO", "SampleZoneVO"]


async def test_deleting_a_middle_level_deletes_only_its_subtree(harness, trees):
    zone = next(iter(trees))
    cluster = trees[zone]["SampleClusterVO"][0]
    with harness.db.session() as s:
        hosts = list(s.scalars(select(SampleHostVO.uuid).where(SampleHostVO.clusterUuid == cluster)))
        vms = list(s.scalars(select(SampleVmVO.uuid).where(SampleVmVO.hostUuid.in_(hosts))))

    deleted = await harness.facade.delete("SampleClusterVO", [cluster])

    assert set(deleted) == {"SampleClusterVO", "SampleHostVO", "SampleVmVO"}
    assert set(deleted["SampleVmVO"]) == set(vms)
    with harness.db.session() as s:
        assert res.existing(s, SampleClusterVO, trees[zone]["SampleClusterVO"]) == set(
            trees[zone]["SampleClusterVO"][1:])
        assert res.existing(s, SampleHostVO, hosts) == set()
        assert res.existing(s, SampleZoneVO, [zone]) == {zone}
    assert harness.counts()["SampleVmVO"] == sum(len(t["SampleVmVO"]) for t in trees.values()) - len(vms)


async def test_small_batches_still_delete_everything(db, trees):
    harness = Harness(db, batch_size=2)
    zone, other = list(trees)
    await harness.facade.delete("SampleZoneVO", [zone, zone])  # a repeated uuid counts once
    assert harness.counts() == expected_counts(trees, [other])
    assert max(len(uuids) for _, _, uuids in harness.journal) == 2


async def test_a_new_type_joins_by_registering_only(harness, db):
    with db.session() as s:
        trees = res.populate(s, zones=1, clusters=1, hosts=2, vms=1, nics=3)
    zone = next(iter(trees))
    res.NIC_JOURNAL.clear()

    harness.facade.register(res.SampleHostNicCascade())
    await harness.facade.delete("SampleZoneVO", [zone])

    assert harness.counts() == dict.fromkeys(ALL_TYPES, 0)
    assert {u for done, _, uuids in res.NIC_JOURNAL if done == "delete" for u in uuids} == set(
        trees[zone]["SampleHostNicVO"])
    # NICs and VMs are both on the host's level + 1, so both go before hosts.
    host_delete = next(i for i, entry in enumerate(harness.journal) if entry[:2] == ("delete", "SampleHostVO"))
    assert all(entry[0] != "delete" for entry in harness.journal[host_delete + 1:] if entry[1] == "SampleVmVO")
    assert harness.facade.levels("SampleHostVO") == [["SampleHostVO"], ["SampleVmVO", "SampleHostNicVO"]]


async def test_plugins_register_through_entry_points(harness, db, monkeypatch):
    ep = EntryPoint(name="sample-nic", value="tests.support.cascade_resources:SampleHostNicCascade",
                    group="zstack.cascade")
    monkeypatch.setattr(facade_module, "entry_points",
                        lambda group: [ep] if group == "zstack.cascade" else [])
    assert harness.facade.load_entry_points() == 1
    assert "SampleHostNicVO" in harness.facade.resource_types
    with db.session() as s:
        trees = res.populate(s, zones=1, clusters=1, hosts=1, vms=0, nics=2)
    await harness.facade.delete("SampleHostVO", next(iter(trees.values()))["SampleHostVO"])
    with db.session() as s:
        assert res.count_rows(s)["SampleHostNicVO"] == 0


class _Node(CascadeExtension):
    """A bare extension of a named type, for graph shape tests."""

    def __init__(self, resource_type: str, *parents: str):
        self.resource_type = resource_type
        self.parents = parents


def test_cycles_and_bad_declarations_are_refused_at_registration():
    facade = CascadeFacade()
    facade.register(_Node("B", "A"))  # A is not registered yet: allowed
    facade.register(_Node("C", "B"))
    with pytest.raises(CascadeGraphError, match="cycle: A -> B -> C -> A"):
        facade.register(_Node("A", "C"))
    with pytest.raises(CascadeGraphError, match="names itself"):
        facade.register(_Node("E", "E"))
    with pytest.raises(CascadeGraphError, match="already registered"):
        facade.register(_Node("B"))
    with pytest.raises(CascadeGraphError, match="no resource_type"):
        facade.register(CascadeExtension())
    with pytest.raises(CascadeGraphError, match="parents must be"):
        facade.register(_Node("F", ""))
    assert facade.resource_types == ("B", "C")  # failed registrations left no trace

    facade.register(_Node("A"))
    facade.register(_Node("X", "C", "A"))  # two paths, not a cycle
    assert facade.levels("A") == [["A"], ["B"], ["C"], ["X"]]


async def test_bad_requests_are_invalid_arguments(harness, trees):
    before = harness.counts()
    for call in (harness.facade.delete("NoSuchVO", ["x"]),
                 harness.facade.delete("SampleZoneVO", list(trees), mode="Gentle"),
                 harness.facade.delete("SampleZoneVO", next(iter(trees)))):
        with pytest.raises(OperationError) as caught:
            await call
        assert caught.value.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    assert await harness.facade.delete("SampleZoneVO", []) == {}
    assert harness.counts() == before
    assert harness.journal == []


async def test_a_failed_delete_stops_and_keeps_what_is_consistent(harness, trees):
    zone = next(iter(trees))

    class BrokenHosts(res.TableCascade):
        async def delete(self, ctx: CascadeContext, uuids: list[str]) -> None:
            raise RuntimeError("agent unreachable")

    facade = CascadeFacade(SimpleNamespace(db=harness.db))
    for ext in res.tree_extensions(harness.journal):
        if ext.resource_type == "SampleHostVO":
            ext = BrokenHosts(SampleHostVO, ext.parent_columns, harness.journal)
        facade.register(ext)

    with pytest.raises(OperationError) as caught:
        await facade.delete("SampleZoneVO", [zone])

    assert "deleting SampleHostVO[" in caught.value.error.details
    assert "RuntimeError: agent unreachable" in caught.value.error.details
    with harness.db.session() as s:
        # The VMs (deeper) are gone; the hosts, clusters and the zone remain.
        assert res.existing(s, SampleVmVO, trees[zone]["SampleVmVO"]) == set()
        assert res.existing(s, SampleHostVO, trees[zone]["SampleHostVO"]) == set(trees[zone]["SampleHostVO"])
        assert res.existing(s, SampleZoneVO, [zone]) == {zone}
    assert harness.types("cleanup") == []


async def test_a_failing_cleanup_does_not_stop_the_others(harness, trees):
    zone = next(iter(trees))

    class Untidy(CascadeExtension):
        resource_type = "SampleHostNicVO"
        parents = ("SampleHostVO",)

        async def children(self, ctx, parent_type, parent_uuids):
            return ["nic-1"]

        async def delete(self, ctx, uuids):
            pass

        async def cleanup(self, ctx, uuids):
            assert ctx.action == DELETION_CLEANUP and ctx.mode == PERMISSIVE
            raise RuntimeError("cache gone")

    harness.facade.register(Untidy())
    deleted = await harness.facade.delete("SampleZoneVO", [zone])
    assert deleted["SampleHostNicVO"] == ["nic-1"]
    assert harness.types("cleanup") == ["SampleVmVO", "SampleHostVO", "SampleClusterVO",
                                        "SamplePrimaryStorageVO", "SampleZoneVO"]


async def test_tags_are_deleted_with_their_resources(db, trees):
    from mn.db import upgrade
    from mn.tags import TagManager
    from mn.workqueue import WorkQueues

    upgrade(db)
    node = SimpleNamespace(db=db, queues=WorkQueues())
    node.tags = TagManager(node)
    journal: list = []
    facade = CascadeFacade(node)
    for ext in res.tree_extensions(journal, {}):
        facade.register(ext)
    zone, other = list(trees)
    doomed_host = trees[zone]["SampleHostVO"][0]
    kept_host = trees[other]["SampleHostVO"][0]
    for uuid in (doomed_host, kept_host):
        await node.tags.create_user_tag(uuid, "SampleHostVO", "rack-7")

    await facade.delete("SampleZoneVO", [zone])

    assert await node.tags.tags_of(doomed_host) == []
    assert [t["tag"] for t in await node.tags.tags_of(kept_host)] == ["rack-7"]
    await node.queues.close()
