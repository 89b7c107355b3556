"""TagManager on SQLite: create, read, update, delete, attach at create, cascade."""

import asyncio
from types import SimpleNamespace

import pytest
from sqlalchemy import Column, MetaData, String, Table, func, select
from sqlalchemy.exc import OperationalError

from mn.db import Database, ensure_database_exists, upgrade
from mn.db.models.tag import SystemTagVO, UserTagVO
from mn.errors import OperationError, SysErrors
from mn.ids import new_uuid
from mn.tags import PatternedSystemTag, SystemTag, TagManager, validators
from mn.tags import manager as manager_module
from mn.workqueue import WorkQueues

VM = "VmInstanceVO"
L3_A, L3_B = "a" * 32, "b" * 32

HOSTNAME = PatternedSystemTag("hostname::{hostname}", VM,
                              validators={"hostname": validators.hostname})
STATIC_IP = PatternedSystemTag(
    "staticIp::{l3NetworkUuid}::{ip}", VM,
    validators={"l3NetworkUuid": validators.uuid, "ip": validators.ip},
    spanning={"ip"}, multi=True)
# "hostname::{hostname}::{domain}" shares HOSTNAME's LIKE prefix: reads by
# pattern must not confuse the two.
FQDN = PatternedSystemTag("hostname::{hostname}::{domain}", VM)
NEVER_STOP = SystemTag("ha::NeverStop", VM)
CREATED_BY = PatternedSystemTag("createdBy::{who}", VM, inherent=True)

# A resource table of the test's own, outside Base.metadata.
_things = Table("TagTestThingVO", MetaData(),
                Column("uuid", String(32), primary_key=True),
                Column("name", String(64), nullable=False))


@pytest.fixture
def db(sqlite_url):
    ensure_database_exists(sqlite_url)
    upgrade(sqlite_url)
    database = Database(sqlite_url, threads=4)
    _things.metadata.create_all(database.engine)
    yield database
    database.close()


@pytest.fixture
async def tags(db):
    queues = WorkQueues()
    manager = TagManager(SimpleNamespace(db=db, queues=queues))
    manager.register(HOSTNAME, STATIC_IP, FQDN, NEVER_STOP, CREATED_BY)
    yield manager
    await queues.close()


def count(db, table, **where) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(table).filter_by(**where))


def error_of(excinfo, code: SysErrors) -> str:
    assert excinfo.value.error.code == code.value, excinfo.value.error
    return excinfo.value.error.details


async def test_create_system_tag_returns_its_inventory(tags, db):
    vm = new_uuid()
    inv = await tags.create_system_tag(vm, VM, "hostname::web-1")
    assert set(inv) == {"uuid", "resourceUuid", "resourceType", "inherent", "type", "tag",
                        "createDate", "lastOpDate"}
    assert (inv["resourceUuid"], inv["resourceType"], inv["tag"], inv["type"], inv["inherent"]) \
        == (vm, VM, "hostname::web-1", "System", False)
    assert inv["createDate"] == inv["lastOpDate"]
    with db.session() as s:
        vo = s.get(SystemTagVO, inv["uuid"])
        assert (vo.resourceUuid, vo.tag, vo.type, vo.inherent) == (vm, "hostname::web-1",
                                                                    "System", False)
        assert vo.createDate == inv["createDate"]


async def test_inherent_comes_from_the_caller_or_the_pattern(tags):
    vm = new_uuid()
    assert (await tags.create_system_tag(vm, VM, "createdBy::admin"))["inherent"] is True
    assert (await tags.create_system_tag(vm, VM, "ha::NeverStop", inherent=True))["inherent"]


async def test_an_invalid_system_tag_is_rejected_and_leaves_nothing(tags, db):
    vm = new_uuid()
    with pytest.raises(OperationError) as excinfo:
        await tags.create_system_tag(vm, VM, "hostname::bad_name")
    assert "token hostname='bad_name' of pattern 'hostname::{hostname}' is invalid" in \
        error_of(excinfo, SysErrors.INVALID_ARGUMENT_ERROR)
    with pytest.raises(OperationError) as excinfo:
        await tags.create_system_tag(vm, VM, "hostnam::web")
    assert error_of(excinfo, SysErrors.INVALID_ARGUMENT_ERROR).startswith(
        "system tag 'hostnam::web' matches no system tag pattern of VmInstanceVO; the patterns "
        "are: hostname::{hostname}, ")
    with pytest.raises(OperationError) as excinfo:
        await tags.create_system_tag(vm, "ZoneVO", "hostname::web")
    assert "resource type 'ZoneVO' has no system tags" in \
        error_of(excinfo, SysErrors.INVALID_ARGUMENT_ERROR)
    assert count(db, SystemTagVO) == 0


async def test_resource_uuid_and_type_are_checked(tags):
    with pytest.raises(OperationError) as excinfo:
        await tags.create_user_tag("not-a-uuid", VM, "web")
    assert "resourceUuid 'not-a-uuid' is not a resource uuid" in \
        error_of(excinfo, SysErrors.INVALID_ARGUMENT_ERROR)
    with pytest.raises(OperationError) as excinfo:
        await tags.create_user_tag(new_uuid(), "", "web")
    assert "resourceType '' is not a resource type name" in \
        error_of(excinfo, SysErrors.INVALID_ARGUMENT_ERROR)


async def test_same_tag_twice_is_stored_once(tags, db):
    vm = new_uuid()
    first = await tags.create_system_tag(vm, VM, "hostname::web")
    assert await tags.create_system_tag(vm, VM, "hostname::web") == first
    user = await tags.create_user_tag(vm, VM, "prod")
    assert await tags.create_user_tag(vm, VM, "prod") == user
    assert count(db, SystemTagVO) == count(db, UserTagVO) == 1


async def test_second_tag_of_a_single_valued_pattern_is_rejected(tags, db):
    vm = new_uuid()
    first = await tags.create_system_tag(vm, VM, "hostname::web")
    with pytest.raises(OperationError) as excinfo:
        await tags.create_system_tag(vm, VM, "hostname::db")
    assert error_of(excinfo, SysErrors.OPERATION_ERROR) == (
        f"VmInstanceVO {vm} already has system tag 'hostname::web' (uuid {first['uuid']}) of "
        "pattern 'hostname::{hostname}', and a resource has at most one tag of it: update or "
        "delete that tag instead of adding 'hostname::db'")
    # Another resource, another pattern sharing the prefix, a multi pattern: all fine.
    await tags.create_system_tag(new_uuid(), VM, "hostname::db")
    await tags.create_system_tag(vm, VM, "hostname::web::example.com")
    await tags.create_system_tag(vm, VM, f"staticIp::{L3_A}::10.0.0.5")
    await tags.create_system_tag(vm, VM, f"staticIp::{L3_B}::fe80::5")
    assert count(db, SystemTagVO, resourceUuid=vm) == 4


async def test_concurrent_single_valued_creates_have_one_winner(tags, db):
    vm = new_uuid()
    results = await asyncio.gather(
        *(tags.create_system_tag(vm, VM, f"hostname::web-{i}") for i in range(12)),
        return_exceptions=True)
    winners = [r for r in results if isinstance(r, dict)]
    losers = [r for r in results if isinstance(r, OperationError)]
    assert len(winners) == 1 and len(losers) == 11
    assert all(e.error.code == SysErrors.OPERATION_ERROR.value for e in losers)
    assert await tags.get_tags(HOSTNAME, vm) == [winners[0]["tag"]]


async def test_user_tags_are_free_labels(tags):
    vm = new_uuid()
    inv = await tags.create_user_tag(vm, VM, "Owner: team A :: web")
    assert set(inv) == {"uuid", "resourceUuid", "resourceType", "type", "tag", "createDate",
                        "lastOpDate"}
    assert (inv["type"], inv["tag"]) == ("User", "Owner: team A :: web")
    for bad, message in (("", "a user tag must not be empty"),
                         ("x" * 2049, "the limit is 2048")):
        with pytest.raises(OperationError) as excinfo:
            await tags.create_user_tag(vm, VM, bad)
        assert message in error_of(excinfo, SysErrors.INVALID_ARGUMENT_ERROR)
    # A user tag on a type without system tag patterns is fine.
    assert (await tags.create_user_tag(new_uuid(), "ZoneVO", "eu"))["resourceType"] == "ZoneVO"


async def test_tags_of_lists_system_then_user_oldest_first(tags):
    vm = new_uuid()
    await tags.create_user_tag(vm, VM, "b")
    await tags.create_system_tag(vm, VM, "hostname::web")
    await tags.create_user_tag(vm, VM, "a")
    await tags.create_system_tag(vm, VM, "ha::NeverStop")
    await tags.create_user_tag(new_uuid(), VM, "other")
    assert [(t["type"], t["tag"]) for t in await tags.tags_of(vm)] == [
        ("System", "hostname::web"), ("System", "ha::NeverStop"), ("User", "b"), ("User", "a")]
    assert [t["tag"] for t in await tags.tags_of(vm, "user")] == ["b", "a"]
    assert [t["tag"] for t in await tags.tags_of(vm, "system")] == ["hostname::web",
                                                                   "ha::NeverStop"]
    assert await tags.tags_of(new_uuid()) == []


async def test_code_reads_tags_through_their_pattern(tags):
    vm = new_uuid()
    assert await tags.get_tokens(HOSTNAME, vm) is None
    assert not await tags.has_tag(HOSTNAME, vm)
    # Tags of other patterns that LIKE "hostname::%" would also match:
    await tags.create_system_tag(vm, VM, "hostname::web::example.com")
    assert await tags.get_tokens(HOSTNAME, vm) is None
    inv = await tags.create(HOSTNAME, vm, {"hostname": "web"})
    assert inv["tag"] == "hostname::web"
    assert await tags.get_tokens(HOSTNAME, vm) == {"hostname": "web"}
    assert await tags.get_tokens(FQDN, vm) == {"hostname": "web", "domain": "example.com"}
    assert await tags.has_tag(HOSTNAME, vm)
    assert await tags.get_tag(HOSTNAME, vm) == "hostname::web"

    await tags.create(STATIC_IP, vm, {"l3NetworkUuid": L3_A, "ip": "10.0.0.5"})
    await tags.create(STATIC_IP, vm, {"l3NetworkUuid": L3_B, "ip": "fe80::5"})
    assert await tags.get_tokens_list(STATIC_IP, vm) == [
        {"l3NetworkUuid": L3_A, "ip": "10.0.0.5"}, {"l3NetworkUuid": L3_B, "ip": "fe80::5"}]

    other = new_uuid()
    await tags.create_user_tag(other, VM, "hostname::web")  # a user tag is no system tag
    assert await tags.get_tokens(HOSTNAME, other) is None
    with pytest.raises(OperationError) as excinfo:
        await tags.create(HOSTNAME, vm, {"hostname": "a::b"})
    assert "does not match pattern" in error_of(excinfo, SysErrors.INVALID_ARGUMENT_ERROR)


async def test_reads_by_pattern_respect_case(tags, db):
    vm = new_uuid()
    # SQLite's LIKE ignores case; the pattern does not. (Written behind the
    # manager's back, which would refuse it.)
    with db.session() as s:
        s.add(SystemTagVO(resourceUuid=vm, resourceType=VM, tag="HOSTNAME::WEB"))
    assert await tags.get_tokens(HOSTNAME, vm) is None


async def test_delete_by_pattern(tags, db):
    vm = new_uuid()
    await tags.create(STATIC_IP, vm, {"l3NetworkUuid": L3_A, "ip": "10.0.0.5"})
    await tags.create(STATIC_IP, vm, {"l3NetworkUuid": L3_B, "ip": "10.0.1.5"})
    await tags.create_system_tag(vm, VM, "hostname::web")
    await tags.create_system_tag(vm, VM, "createdBy::admin")
    assert await tags.delete(STATIC_IP, vm) == 2
    assert await tags.delete(CREATED_BY, vm) == 1  # code may remove inherent tags
    assert [t["tag"] for t in await tags.tags_of(vm)] == ["hostname::web"]
    assert await tags.delete(STATIC_IP, vm) == 0


async def test_delete_tag_by_uuid(tags, db):
    vm = new_uuid()
    system = await tags.create_system_tag(vm, VM, "hostname::web")
    user = await tags.create_user_tag(vm, VM, "prod")
    assert await tags.delete_tag(system["uuid"])
    assert await tags.delete_tag(user["uuid"])
    assert not await tags.delete_tag(user["uuid"])
    assert await tags.tags_of(vm) == []


async def test_inherent_tags_cannot_be_deleted_by_users(tags, db):
    vm = new_uuid()
    inherent = await tags.create_system_tag(vm, VM, "createdBy::admin")
    with pytest.raises(OperationError) as excinfo:
        await tags.delete_tag(inherent["uuid"])
    assert error_of(excinfo, SysErrors.INVALID_ARGUMENT_ERROR) == (
        f"system tag 'createdBy::admin' (uuid {inherent['uuid']}) is inherent: the system "
        "manages it and it cannot be deleted")
    assert count(db, SystemTagVO) == 1
    assert await tags.delete_tag(inherent["uuid"], allow_inherent=True)
    assert count(db, SystemTagVO) == 0


async def test_update_system_tag(tags, db):
    vm = new_uuid()
    hostname = await tags.create_system_tag(vm, VM, "hostname::web")
    updated = await tags.update_system_tag(hostname["uuid"], "hostname::db")
    assert (updated["uuid"], updated["tag"]) == (hostname["uuid"], "hostname::db")
    assert updated["lastOpDate"] >= hostname["lastOpDate"]
    assert await tags.get_tokens(HOSTNAME, vm) == {"hostname": "db"}

    with pytest.raises(OperationError) as excinfo:
        await tags.update_system_tag(hostname["uuid"], "hostname::no_underscores")
    assert "is invalid" in error_of(excinfo, SysErrors.INVALID_ARGUMENT_ERROR)

    ip_a = await tags.create(STATIC_IP, vm, {"l3NetworkUuid": L3_A, "ip": "10.0.0.5"})
    await tags.create(STATIC_IP, vm, {"l3NetworkUuid": L3_B, "ip": "10.0.1.5"})
    with pytest.raises(OperationError) as excinfo:
        await tags.update_system_tag(ip_a["uuid"], f"staticIp::{L3_B}::10.0.1.5")
    assert f"already has system tag 'staticIp::{L3_B}::10.0.1.5'" in \
        error_of(excinfo, SysErrors.OPERATION_ERROR)
    fqdn = await tags.create_system_tag(vm, VM, "hostname::x::example.com")
    with pytest.raises(OperationError) as excinfo:
        await tags.update_system_tag(fqdn["uuid"], "hostname::other")
    assert "already has system tag 'hostname::db'" in error_of(excinfo, SysErrors.OPERATION_ERROR)

    with pytest.raises(OperationError) as excinfo:
        await tags.update_system_tag(new_uuid(), "hostname::db")
    assert "no system tag with uuid" in error_of(excinfo, SysErrors.RESOURCE_NOT_FOUND)

    inherent = await tags.create_system_tag(vm, VM, "createdBy::admin")
    with pytest.raises(OperationError) as excinfo:
        await tags.update_system_tag(inherent["uuid"], "createdBy::me")
    assert "is inherent" in error_of(excinfo, SysErrors.INVALID_ARGUMENT_ERROR)
    assert (await tags.update_system_tag(inherent["uuid"], "createdBy::me",
                                         allow_inherent=True))["tag"] == "createdBy::me"


async def test_delete_tags_of_resources(tags, db):
    doomed, kept = [new_uuid() for _ in range(3)], new_uuid()
    for vm in [*doomed, kept]:
        await tags.create_system_tag(vm, VM, "hostname::web")
        await tags.create_user_tag(vm, VM, "prod")
        await tags.create_user_tag(vm, VM, "eu")
    assert await tags.delete_tags_of(doomed + doomed[:1]) == 9
    assert count(db, SystemTagVO) == 1 and count(db, UserTagVO) == 2
    assert {t["resourceUuid"] for t in await tags.tags_of(kept)} == {kept}
    assert await tags.delete_tags_of([]) == 0


async def test_delete_tags_of_in_session_rolls_back_with_its_transaction(tags, db):
    vm = new_uuid()
    await tags.create_user_tag(vm, VM, "prod")

    def delete_resource_then_fail(session):
        assert TagManager.delete_tags_of_in_session(session, [vm]) == 1
        raise RuntimeError("resource deletion failed")

    with pytest.raises(RuntimeError):
        await db.run(delete_resource_then_fail)
    assert count(db, UserTagVO) == 1
    await db.run(TagManager.delete_tags_of_in_session, [vm])
    assert count(db, UserTagVO) == 0


async def test_attach_at_create_in_the_resource_transaction(tags, db):
    vm = new_uuid()

    def create_vm(session):
        session.execute(_things.insert().values(uuid=vm, name="vm1"))
        return tags.attach_at_create(
            session, vm, VM,
            ["hostname::web", f"staticIp::{L3_A}::10.0.0.5", "hostname::web"],
            ["prod", "eu", "prod"])

    invs = await db.run(create_vm)
    assert [(i["type"], i["tag"]) for i in invs] == [
        ("System", "hostname::web"), ("System", f"staticIp::{L3_A}::10.0.0.5"),
        ("User", "prod"), ("User", "eu")]
    assert len(await tags.tags_of(vm)) == 4
    assert await tags.get_tokens(HOSTNAME, vm) == {"hostname": "web"}


async def test_attach_at_create_with_a_bad_tag_leaves_nothing(tags, db):
    vm = new_uuid()

    def create_vm(session, system_tags, user_tags):
        session.execute(_things.insert().values(uuid=vm, name="vm1"))
        tags.attach_at_create(session, vm, VM, system_tags, user_tags)

    for system_tags, user_tags, message in (
        (["hostname::web", "bootMode::UEFI"], ["prod"], "'bootMode::UEFI' matches no system tag"),
        (["hostname::web", "hostname::db"], [], "of which a resource has at most one"),
        (["hostname::web"], ["prod", ""], "a user tag must not be empty"),
    ):
        with pytest.raises(OperationError) as excinfo:
            await db.run(create_vm, system_tags, user_tags)
        assert message in error_of(excinfo, SysErrors.INVALID_ARGUMENT_ERROR)
    assert count(db, _things) == count(db, SystemTagVO) == count(db, UserTagVO) == 0


async def test_attach_at_create_then_a_failure_leaves_no_tags(tags, db):
    vm = new_uuid()

    def create_vm(session):
        session.execute(_things.insert().values(uuid=vm, name="vm1"))
        tags.attach_at_create(session, vm, VM, ["hostname::web"], ["prod"])
        raise RuntimeError("allocating the VM failed")

    with pytest.raises(RuntimeError):
        await db.run(create_vm)
    assert count(db, _things) == count(db, SystemTagVO) == count(db, UserTagVO) == 0


def test_validate_before_the_transaction(tags):
    tags.validate_system_tags(VM, ["hostname::web", "ha::NeverStop"])
    tags.validate_user_tags(["anything", "goes"])
    with pytest.raises(OperationError) as excinfo:
        tags.validate_system_tags(VM, ["hostname::web", "hostname:db"])
    assert "'hostname:db' matches no system tag pattern of VmInstanceVO" in \
        error_of(excinfo, SysErrors.INVALID_ARGUMENT_ERROR)
    with pytest.raises(OperationError):
        tags.validate_user_tags(["ok", "   "])
    assert [p.pattern for p in tags.patterns_of(VM)][:2] == ["hostname::{hostname}",
                                                            "staticIp::{l3NetworkUuid}::{ip}"]


class _LockConflictDb:
    """A database whose every transaction loses an InnoDB deadlock (or another error)."""

    def __init__(self, code: int):
        self.code = code
        self.calls = 0

    async def run(self, fn, *args, **kwargs):
        self.calls += 1
        raise OperationalError("INSERT ...", {}, Exception(self.code, "simulated"))


async def test_lock_conflicts_are_retried_then_reported(monkeypatch):
    monkeypatch.setattr(manager_module, "WRITE_ATTEMPTS", 3)
    db, queues = _LockConflictDb(1213), WorkQueues()
    tags = TagManager(SimpleNamespace(db=db, queues=queues))
    tags.register(HOSTNAME)
    vm = new_uuid()
    with pytest.raises(OperationError) as excinfo:
        await tags.create_system_tag(vm, VM, "hostname::web")
    assert error_of(excinfo, SysErrors.OPERATION_ERROR) == (
        f"tags of resource {vm} are being changed concurrently; gave up after 3 attempts, "
        "try again")
    assert db.calls == 3

    db.code = 1045  # not a lock conflict: raised at once
    with pytest.raises(OperationalError):
        await tags.create_user_tag(vm, VM, "web")
    assert db.calls == 4
