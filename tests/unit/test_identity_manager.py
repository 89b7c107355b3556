"""IdentityManager on SQLite: the admin account, sessions, and authenticating requests."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, update
from tests.support.identity import IdentityNode, cheap_password_hashing, global_config, signed

from mn.db import Database, upgrade
from mn.db.models.identity import AccessKeyVO, AccountResourceRefVO, AccountVO, SessionVO
from mn.db.types import utcnow
from mn.errors import OperationError
from mn.identity import ADMIN_ACCOUNT_UUID, IdentityManager, accounts
from mn.identity.config import SESSION_MAX_CONCURRENT, SESSION_TIMEOUT
from mn.identity.messages import APIChangeAccessKeyStateMsg
from mn.identity.password import client_digest, verify_password

ZONES = "/zstack/v1/zones"


@pytest.fixture(autouse=True)
def _cheap_passwords(monkeypatch):
    cheap_password_hashing(monkeypatch)


@pytest.fixture
async def db(sqlite_url):
    upgrade(sqlite_url)
    database = Database(sqlite_url, threads=4)
    yield database
    database.close()


@pytest.fixture
async def node(db):
    node = await IdentityNode(db).start()
    yield node
    await node.stop()


def error_of(exc_info) -> tuple[str, str]:
    return exc_info.value.error.code, exc_info.value.error.details


async def session_row(node, uuid: str) -> SessionVO | None:
    return await node.db.run(lambda s: s.get(SessionVO, uuid))


async def set_expiry(node, uuid: str, when: datetime) -> None:
    await node.db.run(lambda s: s.execute(
        update(SessionVO).where(SessionVO.uuid == uuid).values(expiredDate=when)))


# -- the admin account -------------------------------------------------------------------

async def test_start_creates_admin_with_a_hashed_password(node):
    admin = await node.db.run(lambda s: s.get(AccountVO, ADMIN_ACCOUNT_UUID))
    assert (admin.name, admin.type) == ("admin", "SystemAdmin")
    assert admin.password.startswith("scrypt$256$8$1$")
    assert verify_password(client_digest("password"), admin.password)
    owner = await node.db.run(lambda s: s.scalar(select(AccountResourceRefVO.accountUuid).where(
        AccountResourceRefVO.resourceUuid == ADMIN_ACCOUNT_UUID)))
    assert owner == ADMIN_ACCOUNT_UUID


async def test_admin_is_created_once_by_managers_starting_together(sqlite_url, monkeypatch):
    # Every manager finds no admin, so all of them race to insert it.
    monkeypatch.setattr(accounts, "admin_exists", lambda sql_session: False)
    upgrade(sqlite_url)
    databases = [Database(sqlite_url, threads=2) for _ in range(3)]
    nodes = [IdentityNode(db) for db in databases]
    try:
        await asyncio.gather(*(n.start() for n in nodes))
        await nodes[0].stop()
        await nodes[0].start()  # a restart changes nothing either

        def count(s):
            return (s.scalar(select(func.count()).select_from(AccountVO)),
                    s.scalar(select(func.count()).select_from(AccountResourceRefVO)))

        assert await databases[0].run(count) == (1, 1)
        assert (await nodes[1].login()).isAdmin
    finally:
        for n in nodes:
            await n.stop()
            n.db.close()


async def test_a_changed_admin_password_survives_a_restart(node):
    admin = await node.login()
    stored = await node.db.run(lambda s: s.get(AccountVO, ADMIN_ACCOUNT_UUID).password)
    await node.db.run(lambda s: s.execute(update(AccountVO).values(password="scrypt$changed")))
    await IdentityManager(node).start()
    assert await node.db.run(lambda s: s.get(AccountVO, ADMIN_ACCOUNT_UUID).password) == "scrypt$changed"
    assert stored != "scrypt$changed" and admin.isAdmin


# -- logging in and out ------------------------------------------------------------------

async def test_login_opens_a_session_that_authenticates(node):
    inventory = await node.identity.login("admin", client_digest("password"))
    assert inventory.accountUuid == inventory.userUuid == ADMIN_ACCOUNT_UUID
    assert inventory.userType == "AccountVO"
    assert timedelta(seconds=7190) < inventory.expiredDate - inventory.createDate <= timedelta(seconds=7200)
    session = await node.identity.authenticate(f"OAuth {inventory.uuid}", None, "GET", ZONES)
    assert (session.uuid, session.accountUuid, session.isAdmin) == (inventory.uuid, ADMIN_ACCOUNT_UUID, True)


@pytest.mark.parametrize("name, password, account_type", [
    ("admin", "wrong", None),
    ("nobody", "password", None),
    ("admin", "password", "iam2"),
])
async def test_bad_credentials_fail_alike(node, name, password, account_type):
    with pytest.raises(OperationError) as err:
        await node.identity.login(name, client_digest(password), account_type=account_type)
    assert error_of(err) == ("ID.1000", "wrong account name or password")
    assert await node.db.run(lambda s: s.scalar(select(func.count()).select_from(SessionVO))) == 0


async def test_login_with_the_plain_password_fails(node):
    with pytest.raises(OperationError) as err:
        await node.identity.login("admin", "password")
    assert error_of(err)[0] == "ID.1000"


async def test_logout_ends_the_session_everywhere(node):
    session = await node.login()
    other_mn = IdentityManager(node)  # another MN: shares nothing but the database
    assert (await other_mn.session_info(session.uuid)).uuid == session.uuid
    assert await node.identity.logout(session.uuid)
    assert not await node.identity.logout(session.uuid)
    for manager in (node.identity, other_mn):
        with pytest.raises(OperationError) as err:
            await manager.authenticate(f"OAuth {session.uuid}", None, "GET", ZONES)
        assert error_of(err) == ("ID.1001", "Session expired")
    assert not await node.identity.validate_session(session.uuid)


@pytest.mark.parametrize("token", ["", "0" * 32, "not-a-uuid", "x" * 500])
async def test_unknown_sessions_are_invalid(node, token):
    with pytest.raises(OperationError) as err:
        await node.identity.authenticate(f"OAuth {token}", None, "GET", ZONES)
    assert error_of(err)[0] == "ID.1001"


async def test_an_expired_session_is_invalid_and_deleted(node):
    session = await node.login()
    await set_expiry(node, session.uuid, utcnow() - timedelta(seconds=1))
    assert not await node.identity.validate_session(session.uuid)
    with pytest.raises(OperationError) as err:
        await node.identity.session_info(session.uuid)
    assert error_of(err)[0] == "ID.1001"
    assert await session_row(node, session.uuid) is None


async def test_a_session_in_use_is_renewed_at_most_once_a_minute(node):
    session = await node.login()
    await set_expiry(node, session.uuid, utcnow() + timedelta(seconds=30))
    await node.identity.session_info(session.uuid)
    renewed = (await session_row(node, session.uuid)).expiredDate
    assert renewed - utcnow() > timedelta(seconds=7190)
    await node.identity.session_info(session.uuid)
    assert (await session_row(node, session.uuid)).expiredDate == renewed  # no write this time
    assert await node.identity.validate_session(session.uuid)


async def test_session_timeout_follows_global_config(node):
    async with global_config(node):
        await SESSION_TIMEOUT.update(120)
        inventory = await node.identity.login("admin", client_digest("password"))
        assert inventory.expiredDate - inventory.createDate == timedelta(seconds=120)


async def test_sessions_beyond_the_limit_are_refused(node):
    async with global_config(node):
        await SESSION_MAX_CONCURRENT.update(2)
        first, _ = await node.login(), await node.login()
        with pytest.raises(OperationError) as err:
            await node.login()
        assert error_of(err)[0] == "ID.1006"
        # An expired session does not count; a logged out one neither.
        await set_expiry(node, first.uuid, utcnow() - timedelta(seconds=1))
        third = await node.login()
        await node.identity.logout(third.uuid)
        await node.login()
        assert await node.db.run(lambda s: s.scalar(select(func.count()).select_from(SessionVO).where(
            SessionVO.expiredDate > utcnow()))) == 2


async def test_concurrent_logins_respect_the_limit(node):
    async with global_config(node):
        await SESSION_MAX_CONCURRENT.update(3)
        results = await asyncio.gather(*(node.login() for _ in range(6)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, OperationError)]
    assert len(refused) == 3 and {r.error.code for r in refused} == {"ID.1006"}


async def test_sweep_deletes_only_expired_sessions(node):
    live, dead = await node.login(), await node.login()
    await set_expiry(node, dead.uuid, utcnow() - timedelta(minutes=1))
    assert await node.identity.sweep_expired_sessions() == 1
    assert await session_row(node, live.uuid) is not None


async def test_renew_session(node):
    admin = await node.login()
    account = await node.new_account(admin, "alice")
    alice = await node.login("alice", "secret")
    inventory = await node.identity.renew_session(alice, alice.uuid, 600)
    assert timedelta(seconds=590) < inventory.expiredDate - utcnow() <= timedelta(seconds=600)
    with pytest.raises(OperationError) as err:
        await node.identity.renew_session(alice, admin.uuid, 600)
    assert error_of(err)[0] == "ID.1002"
    await node.identity.renew_session(admin, alice.uuid)  # the admin may
    await node.identity.logout(alice.uuid)
    with pytest.raises(OperationError) as err:
        await node.identity.renew_session(admin, alice.uuid)
    assert error_of(err)[0] == "ID.1001"
    assert account == alice.accountUuid


# -- the Authorization header -----------------------------------------------------------------

@pytest.mark.parametrize("header", [None, "Bearer abc", "ZStack nocolon"])
async def test_missing_or_malformed_authorization_is_400(node, header):
    with pytest.raises(OperationError) as err:
        await node.identity.authenticate(header, None, "GET", ZONES)
    assert error_of(err)[0] == "SYS.1007"


async def test_access_key_authenticates_as_its_account(node):
    admin = await node.login()
    alice_uuid = await node.new_account(admin, "alice")
    key = await node.new_access_key(admin, alice_uuid)
    path = f"/zstack/v1/accesskeys/{key.uuid}/actions"
    authorization, date = signed(key.AccessKeyID, key.AccessKeySecret, "PUT", path)
    session = await node.identity.authenticate(authorization, date, "PUT", path)
    assert (session.uuid, session.accountUuid, session.userUuid, session.isAdmin) == (
        key.uuid, alice_uuid, alice_uuid, False)
    # The query string is not signed.
    authorization, date = signed(key.AccessKeyID, key.AccessKeySecret, "GET", ZONES)
    await node.identity.authenticate(authorization, date, "GET", ZONES + "?q=name=z1")


async def test_admin_access_key_is_admin(node):
    admin = await node.login()
    key = await node.new_access_key(admin, ADMIN_ACCOUNT_UUID)
    authorization, date = signed(key.AccessKeyID, key.AccessKeySecret, "GET", ZONES)
    assert (await node.identity.authenticate(authorization, date, "GET", ZONES)).isAdmin


async def test_forged_access_key_requests_are_401(node):
    admin = await node.login()
    key = await node.new_access_key(admin, ADMIN_ACCOUNT_UUID)
    authorization, date = signed(key.AccessKeyID, key.AccessKeySecret, "GET", ZONES)
    forged = [
        (signed(key.AccessKeyID, "not-the-secret", "GET", ZONES), "GET", ZONES),
        ((authorization, date), "DELETE", ZONES),  # replayed with another method
        ((authorization, date), "GET", "/zstack/v1/clusters"),  # or another path
        ((authorization.replace(key.AccessKeyID, "X" * 20), date), "GET", ZONES),
    ]
    for (header, date_header), method, path in forged:
        with pytest.raises(OperationError) as err:
            await node.identity.authenticate(header, date_header, method, path)
        assert error_of(err)[0] == "ID.1000"


async def test_skewed_or_missing_date_is_refused(node):
    admin = await node.login()
    key = await node.new_access_key(admin, ADMIN_ACCOUNT_UUID)
    late = datetime.now(timezone.utc) - timedelta(minutes=16)
    authorization, date = signed(key.AccessKeyID, key.AccessKeySecret, "GET", ZONES, when=late)
    with pytest.raises(OperationError) as err:
        await node.identity.authenticate(authorization, date, "GET", ZONES)
    code, details = error_of(err)
    assert code == "ID.1002" and details.startswith("requestTimeTooSkewed")
    with pytest.raises(OperationError) as err:
        await node.identity.authenticate(authorization, None, "GET", ZONES)
    assert error_of(err)[0] == "SYS.1007"


async def test_disabled_access_key_is_401_until_enabled(node):
    admin = await node.login()
    key = await node.new_access_key(admin, ADMIN_ACCOUNT_UUID)
    await node.call(APIChangeAccessKeyStateMsg(uuid=key.uuid, stateEvent="disable"), admin)
    authorization, date = signed(key.AccessKeyID, key.AccessKeySecret, "GET", ZONES)
    with pytest.raises(OperationError) as err:
        await node.identity.authenticate(authorization, date, "GET", ZONES)
    assert error_of(err) == ("ID.1000", f"AccessKey[AccessKeyID:{key.AccessKeyID}] is Disabled")
    await node.call(APIChangeAccessKeyStateMsg(uuid=key.uuid, stateEvent="enable"), admin)
    await node.identity.authenticate(authorization, date, "GET", ZONES)
    state = await node.db.run(lambda s: s.get(AccessKeyVO, key.uuid).state)
    assert state == "Enabled"
