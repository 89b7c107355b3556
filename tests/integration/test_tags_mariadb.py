"""Tags on a real MariaDB: schema, the main path, queries, and concurrent creates.

Two TagManagers with their own Database and WorkQueues stand for two MNs
sharing the database: their work queues cannot serialise each other, so a
single-valued tag raced between them is kept unique by the database alone.
"""

import asyncio
from types import SimpleNamespace

import pytest
from sqlalchemy import Column, MetaData, String, Table, func, select, text

from mn.db import Database, upgrade
from mn.db.models.tag import TAG_INDEX_PREFIX, SystemTagVO, UserTagVO
from mn.errors import OperationError, SysErrors
from mn.ids import new_uuid
from mn.tags import PatternedSystemTag, TagManager, tag_condition, validators
from mn.workqueue import WorkQueues

pytestmark = pytest.mark.integration

VM = "VmInstanceVO"
HOSTNAME = PatternedSystemTag("hostname::{hostname}", VM,
                              validators={"hostname": validators.hostname})
STATIC_IP = PatternedSystemTag(
    "staticIp::{l3NetworkUuid}::{ip}", VM,
    validators={"l3NetworkUuid": validators.uuid, "ip": validators.ip},
    spanning={"ip"}, multi=True)

_things = Table("TagTestThingVO", MetaData(),
                Column("uuid", String(32), primary_key=True),
                Column("name", String(64), nullable=False))


@pytest.fixture(scope="module")
def db(mariadb_url):
    upgrade(mariadb_url)
    database = Database(mariadb_url, threads=4)
    _things.metadata.create_all(database.engine)
    yield database
    database.close()


def manager(db) -> TagManager:
    tags = TagManager(SimpleNamespace(db=db, queues=WorkQueues()))
    tags.register(HOSTNAME, STATIC_IP)
    return tags


@pytest.fixture
async def tags(db):
    tags = manager(db)
    yield tags
    await tags.node.queues.close()


@pytest.fixture
async def other_mn(mariadb_url):
    """A second "MN": its own connection pool, threads and work queues."""
    db = Database(mariadb_url, threads=4)
    tags = manager(db)
    yield tags
    await tags.node.queues.close()
    db.close()


def count(db, table, **where) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(table).filter_by(**where))


def test_tag_is_indexed_by_a_prefix(db):
    with db.session() as s:
        rows = s.execute(text(
            "SELECT TABLE_NAME, INDEX_NAME, SUB_PART FROM information_schema.STATISTICS "
            "WHERE TABLE_SCHEMA = DATABASE() AND COLUMN_NAME IN ('tag', 'resourceUuid') "
            "AND TABLE_NAME IN ('SystemTagVO', 'UserTagVO') ORDER BY 1, 2")).all()
    assert [tuple(r) for r in rows] == [
        ("SystemTagVO", "ix_SystemTagVO_resourceUuid", None),
        ("SystemTagVO", "ix_SystemTagVO_tag", TAG_INDEX_PREFIX),
        ("UserTagVO", "ix_UserTagVO_resourceUuid", None),
        ("UserTagVO", "ix_UserTagVO_tag", TAG_INDEX_PREFIX),
    ]


async def test_main_path(tags, db):
    vm = new_uuid()

    def create_vm(session):
        session.execute(_things.insert().values(uuid=vm, name="vm1"))
        return tags.attach_at_create(session, vm, VM, ["hostname::web-1"], ["prod", "Prod"])

    created = await db.run(create_vm)
    # MariaDB's collation calls "prod" and "Prod" equal; tags do not.
    assert [t["tag"] for t in created] == ["hostname::web-1", "prod", "Prod"]
    ip = await tags.create(STATIC_IP, vm, {"l3NetworkUuid": "a" * 32, "ip": "fe80::1"})
    assert ip["inherent"] is False
    assert await tags.get_tokens(HOSTNAME, vm) == {"hostname": "web-1"}
    assert await tags.get_tokens_list(STATIC_IP, vm) == [{"l3NetworkUuid": "a" * 32,
                                                          "ip": "fe80::1"}]

    with pytest.raises(OperationError) as excinfo:
        await tags.create_system_tag(vm, VM, "hostname::web-2")
    assert excinfo.value.error.code == SysErrors.OPERATION_ERROR.value
    assert "already has system tag 'hostname::web-1'" in excinfo.value.error.details
    with pytest.raises(OperationError) as excinfo:
        await tags.create_system_tag(vm, VM, "hostname::web 2")
    assert excinfo.value.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    assert "token hostname='web 2' of pattern 'hostname::{hostname}' is invalid" in \
        excinfo.value.error.details

    def query(session):
        return session.scalars(select(_things.c.name).where(
            tag_condition(_things.c.uuid, "system", "~=", "staticIp::%"),
            tag_condition(_things.c.uuid, "user", "?=", ["prod", "dev"]),
            tag_condition(_things.c.uuid, "user", "!=", "test"))).all()

    assert await db.run(query) == ["vm1"]

    updated = await tags.update_system_tag(created[0]["uuid"], "hostname::web-2")
    assert updated["lastOpDate"] >= updated["createDate"]
    assert await tags.get_tag(HOSTNAME, vm) == "hostname::web-2"

    assert await tags.delete_tag(created[2]["uuid"])
    assert [t["tag"] for t in await tags.tags_of(vm, "user")] == ["prod"]
    assert await tags.delete_tags_of([vm]) == 3
    assert await tags.tags_of(vm) == []


async def test_failed_create_leaves_no_tags(tags, db):
    vm = new_uuid()

    def create_vm(session):
        session.execute(_things.insert().values(uuid=vm, name="doomed"))
        tags.attach_at_create(session, vm, VM, ["hostname::web"], ["prod"])
        raise RuntimeError("allocation failed")

    with pytest.raises(RuntimeError):
        await db.run(create_vm)
    assert count(db, _things, uuid=vm) == 0
    assert count(db, SystemTagVO, resourceUuid=vm) == count(db, UserTagVO, resourceUuid=vm) == 0


async def test_concurrent_creates_on_many_resources_all_land(tags, db):
    vms = [new_uuid() for _ in range(20)]
    jobs = []
    for i, vm in enumerate(vms):
        jobs.append(tags.create_system_tag(vm, VM, f"hostname::vm-{i}"))
        jobs += [tags.create(STATIC_IP, vm, {"l3NetworkUuid": f"{n:032x}", "ip": f"10.0.{n}.{i}"})
                 for n in range(3)]
        jobs += [tags.create_user_tag(vm, VM, label) for label in ("a", "b", "a")]
    results = await asyncio.gather(*jobs)
    assert len({r["uuid"] for r in results}) == 20 * 6
    for vm in vms:
        assert len(await tags.tags_of(vm, "system")) == 4
        assert len(await tags.tags_of(vm, "user")) == 2


async def test_two_mns_racing_a_single_valued_tag_leave_one(tags, other_mn, db):
    vms = [new_uuid() for _ in range(10)]
    jobs = [mn.create_system_tag(vm, VM, f"hostname::{name}-{i}")
            for vm in vms for i in range(3) for mn, name in ((tags, "a"), (other_mn, "b"))]
    results = await asyncio.gather(*jobs, return_exceptions=True)
    failures = [r for r in results if not isinstance(r, dict)]
    assert all(isinstance(r, OperationError) and
               r.error.code == SysErrors.OPERATION_ERROR.value and
               "already has system tag 'hostname::" in r.error.details
               for r in failures), failures
    assert len(results) - len(failures) == len(vms)
    for vm in vms:
        assert count(db, SystemTagVO, resourceUuid=vm) == 1


async def test_two_mns_racing_the_same_tag_store_it_once(tags, other_mn, db):
    vms = [new_uuid() for _ in range(10)]
    jobs = [mn.create_user_tag(vm, VM, "shared") for vm in vms for mn in (tags, other_mn) * 2]
    results = await asyncio.gather(*jobs)
    for vm in vms:
        assert len({r["uuid"] for r in results if r["resourceUuid"] == vm}) == 1
        assert count(db, UserTagVO, resourceUuid=vm) == 1
