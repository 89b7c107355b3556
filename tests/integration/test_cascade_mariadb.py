"""Cascade deletion of a few hundred sample rows on a real MariaDB.

The sample tables have real foreign keys (InnoDB enforces them), so a parent
deleted before one of its children would fail the deletion.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mn.cascade import ENFORCING, CascadeFacade
from mn.db import Database
from mn.errors import OperationError, SysErrors
from tests.support import cascade_resources as res
from tests.support.cascade_resources import SampleHostVO, SampleVmVO, SampleZoneVO

pytestmark = pytest.mark.integration

ALL_TYPES = [model.__tablename__ for model in res.MODELS]
#: Per zone: 2 storages, 4 clusters of 10 hosts with 3 VMs each, 3 NICs per
#: host and a stopped VM: 1 + 2 + 4 + 40 + 121 + 120 = 288 rows.
SHAPE = dict(clusters=4, storages=2, hosts=10, vms=3, nics=3)


@pytest.fixture(scope="module")
def db(mariadb_url):
    database = Database(mariadb_url, threads=4)
    res.SampleBase.metadata.create_all(database.engine)
    yield database
    database.close()


@pytest.fixture
def zones(db):
    """Three fresh zone trees; returns ``{zone uuid: {type: uuids}}``."""
    with db.session() as s:
        return res.populate(s, zones=3, **SHAPE)


def make_facade(db, journal, refuse, batch_size=500) -> CascadeFacade:
    facade = CascadeFacade(SimpleNamespace(db=db), batch_size=batch_size)
    for ext in res.tree_extensions(journal, refuse):
        facade.register(ext)
    facade.register(res.TableCascade(res.SampleHostNicVO, {"SampleHostVO": "hostUuid"}, journal, refuse))
    return facade


def remaining(db, tree) -> dict[str, int]:
    with db.session() as s:
        return {model.__tablename__: len(res.existing(s, model, tree[model.__tablename__]))
                for model in res.MODELS}


async def test_three_level_tree_refused_then_deleted(db, zones):
    zone, neighbour, _ = zones
    journal: list = []
    refuse = {zones[zone]["SampleVmVO"][57]: "its root volume is being backed up"}
    facade = make_facade(db, journal, refuse)
    full = {t: len(zones[zone][t]) for t in ALL_TYPES}
    assert sum(full.values()) == 288

    with pytest.raises(OperationError) as caught:
        await facade.delete("SampleZoneVO", [zone])
    assert caught.value.error.code == SysErrors.DELETE_RESOURCE_ERROR.value
    assert (f"SampleVmVO[uuid:{zones[zone]['SampleVmVO'][57]}] refuses: its root volume is being backed up"
            in caught.value.error.details)
    assert remaining(db, zones[zone]) == full

    refuse.clear()
    journal.clear()
    deleted = await facade.delete("SampleZoneVO", [zone])

    assert remaining(db, zones[zone]) == dict.fromkeys(ALL_TYPES, 0)
    assert {t: len(u) for t, u in deleted.items()} == full
    assert remaining(db, zones[neighbour]) == {t: len(zones[neighbour][t]) for t in ALL_TYPES}
    deletes = [t for action, t, _ in journal if action == "delete"]
    assert deletes.index("SampleZoneVO") == len(deletes) - 1
    assert max(deletes.index(t) for t in ("SampleVmVO", "SampleHostNicVO")) < deletes.index("SampleHostVO")
    assert deletes.index("SampleHostVO") < deletes.index("SampleClusterVO")


async def test_enforcing_deletes_two_zones_in_small_batches(db, zones):
    first, second, kept = zones
    journal: list = []
    refuse = {first: "in use", zones[second]["SampleHostVO"][3]: "maintenance"}
    facade = make_facade(db, journal, refuse, batch_size=16)

    deleted = await facade.delete("SampleZoneVO", [first, second], mode=ENFORCING)

    assert len(deleted["SampleVmVO"]) == 2 * 121
    for zone in (first, second):
        assert remaining(db, zones[zone]) == dict.fromkeys(ALL_TYPES, 0)
    assert remaining(db, zones[kept]) == {t: len(zones[kept][t]) for t in ALL_TYPES}
    assert {action for action, _, _ in journal} == {"children", "force-delete", "cleanup"}
    assert max(len(uuids) for _, _, uuids in journal) == 16


async def test_deleting_hosts_keeps_their_zone(db, zones):
    zone = next(iter(zones))
    hosts = zones[zone]["SampleHostVO"][:10]
    facade = make_facade(db, [], {})

    deleted = await facade.delete("SampleHostVO", hosts)

    assert set(deleted) == {"SampleHostVO", "SampleVmVO", "SampleHostNicVO"}
    assert len(deleted["SampleVmVO"]) == 30
    with db.session() as s:
        assert res.existing(s, SampleHostVO, zones[zone]["SampleHostVO"]) == set(zones[zone]["SampleHostVO"][10:])
        assert len(res.existing(s, SampleVmVO, zones[zone]["SampleVmVO"])) == 121 - 30
        assert res.existing(s, SampleZoneVO, [zone]) == {zone}
