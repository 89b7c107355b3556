"""Resource ownership on SQLite: recorded at create, filtering queries, checked by uuid."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, MetaData, String, Table, insert, select
from sqlalchemy.exc import IntegrityError
from tests.support.identity import IdentityNode, cheap_password_hashing

from mn.api.message import SessionInfo
from mn.db import Database, upgrade
from mn.db.models.identity import AccountResourceRefVO
from mn.identity import ADMIN_ACCOUNT_UUID

# A resource table of the test's own, outside Base.metadata.
_gadgets = Table("IdentityTestGadgetVO", MetaData(),
                 Column("uuid", String(32), primary_key=True),
                 Column("name", String(64), nullable=False))
GADGET = "IdentityTestGadgetVO"


@pytest.fixture(autouse=True)
def _cheap_passwords(monkeypatch):
    cheap_password_hashing(monkeypatch)


@pytest.fixture
async def node(sqlite_url):
    upgrade(sqlite_url)
    db = Database(sqlite_url, threads=4)
    _gadgets.metadata.create_all(db.engine)
    node = await IdentityNode(db).start()
    yield node
    await node.stop()
    db.close()


@pytest.fixture
async def accounts(node):
    """The admin's session and two normal accounts' sessions."""
    admin = await node.login()
    for name in ("alice", "bob"):
        await node.new_account(admin, name)
    return admin, await node.login("alice", "secret"), await node.login("bob", "secret")


async def create_gadget(node, session: SessionInfo | None, name: str) -> str:
    uuid = (name * 32)[:32]

    def create(sql_session):
        sql_session.execute(insert(_gadgets).values(uuid=uuid, name=name))
        node.identity.own_in_session(sql_session, session, uuid, GADGET)

    await node.db.run(create)
    return uuid


async def visible_names(node, session: SessionInfo) -> list[str]:
    def query(sql_session):
        return list(sql_session.scalars(
            select(_gadgets.c.name).where(node.identity.visible_condition(session, _gadgets.c.uuid))
            .order_by(_gadgets.c.name)))

    return await node.db.run(query)


async def test_owners_see_their_own_and_admin_sees_all(node, accounts):
    admin, alice, bob = accounts
    a = await create_gadget(node, alice, "a")
    b = await create_gadget(node, bob, "b")
    s = await create_gadget(node, None, "s")  # created by the system: the admin's
    assert await visible_names(node, alice) == ["a"]
    assert await visible_names(node, bob) == ["b"]
    assert await visible_names(node, admin) == ["a", "b", "s"]
    assert await node.identity.check_visible(alice, GADGET, [a, b, s, a]) == [b, s]
    assert await node.identity.check_visible(bob, GADGET, [b]) == []
    assert await node.identity.check_visible(admin, GADGET, [a, b, s, "f" * 32]) == []
    refs = await node.db.run(lambda sql_session: {
        ref.resourceUuid: (ref.accountUuid, ref.ownerAccountUuid, ref.resourceType, ref.permission,
                           ref.isShared)
        for ref in sql_session.scalars(select(AccountResourceRefVO).where(
            AccountResourceRefVO.resourceType == GADGET))})
    assert refs == {a: (alice.accountUuid, alice.accountUuid, GADGET, 2, False),
                    b: (bob.accountUuid, bob.accountUuid, GADGET, 2, False),
                    s: (ADMIN_ACCOUNT_UUID, ADMIN_ACCOUNT_UUID, GADGET, 2, False)}


async def test_ownership_rolls_back_with_the_resource(node, accounts):
    _, alice, _ = accounts

    def create_then_fail(sql_session):
        sql_session.execute(insert(_gadgets).values(uuid="c" * 32, name="c"))
        node.identity.own_in_session(sql_session, alice, "c" * 32, GADGET)
        raise RuntimeError("the create failed later")

    with pytest.raises(RuntimeError):
        await node.db.run(create_then_fail)
    assert await node.db.run(lambda s: s.scalar(select(AccountResourceRefVO.id).where(
        AccountResourceRefVO.resourceUuid == "c" * 32))) is None


async def test_a_resource_has_one_owner(node, accounts):
    _, alice, bob = accounts
    uuid = await create_gadget(node, alice, "a")
    with pytest.raises(IntegrityError):
        await node.db.run(lambda s: node.identity.own_in_session(s, bob, uuid, GADGET))


async def test_deleted_resources_lose_their_refs(node, accounts):
    _, alice, _ = accounts
    a, b = await create_gadget(node, alice, "a"), await create_gadget(node, alice, "b")
    assert await node.db.run(lambda s: node.identity.delete_refs_in_session(s, [a, "f" * 32])) == 1
    assert await node.db.run(lambda s: node.identity.delete_refs_in_session(s, [])) == 0
    assert await node.identity.check_visible(alice, GADGET, [a, b]) == [a]
