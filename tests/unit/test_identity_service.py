"""IdentityService handlers on SQLite, called as the API layer calls them
(interceptor, then handler, with the caller's session set)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from tests.support.identity import IdentityNode, cheap_password_hashing, signed

from mn.api.message import API_BY_FULL_NAME, SessionInfo
from mn.db import Database, upgrade
from mn.db.models.identity import AccessKeyVO, AccountResourceRefVO, AccountVO, SessionVO
from mn.db.models.tag import UserTagVO
from mn.errors import OperationError
from mn.identity import ADMIN_ACCOUNT_UUID, AccessKeyInventory
from mn.identity.messages import (APIChangeAccessKeyStateMsg, APICreateAccessKeyMsg, APICreateAccountMsg,
                                  APIDeleteAccessKeyMsg, APIDeleteAccountMsg, APILogInByAccountMsg,
                                  APILogOutMsg, APIQueryAccessKeyMsg, APIQueryAccountMsg,
                                  APIRenewSessionMsg, APIUpdateAccountMsg, APIValidateSessionMsg)
from mn.identity.password import client_digest

ZONES = "/zstack/v1/zones"
GADGET = "f" * 32


@pytest.fixture(autouse=True)
def _cheap_passwords(monkeypatch):
    cheap_password_hashing(monkeypatch)


@pytest.fixture
async def node(sqlite_url):
    upgrade(sqlite_url)
    db = Database(sqlite_url, threads=4)
    node = await IdentityNode(db).start()
    yield node
    await node.stop()
    db.close()


@pytest.fixture
async def admin(node) -> SessionInfo:
    return await node.login()


async def refused(call) -> tuple[str, str]:
    with pytest.raises(OperationError) as err:
        await call
    return err.value.error.code, err.value.error.details


async def count(node, model, *where) -> int:
    return await node.db.run(lambda s: s.scalar(select(func.count()).select_from(model).where(*where)))


# -- the API definitions -------------------------------------------------------------------

def test_apis_are_registered_under_zstacks_names():
    assert API_BY_FULL_NAME["org.zstack.header.identity.APILogInByAccountMsg"] is APILogInByAccountMsg
    assert API_BY_FULL_NAME["org.zstack.accessKey.APICreateAccessKeyMsg"] is APICreateAccessKeyMsg
    assert (APILogInByAccountMsg.REST.method, APILogInByAccountMsg.REST.path,
            APILogInByAccountMsg.action_name()) == ("PUT", "/accounts/login", "logInByAccount")
    assert APILogInByAccountMsg.PUBLIC and APILogInByAccountMsg.SYNC
    assert APIChangeAccessKeyStateMsg.action_name() == "changeAccessKeyState"
    assert APIQueryAccountMsg.REST.paths == ("/accounts", "/accounts/{uuid}")
    assert APIQueryAccessKeyMsg.INVENTORY is AccessKeyInventory
    assert "AccessKeySecret" not in AccessKeyInventory.model_fields
    assert APICreateAccountMsg.ADMIN_ONLY and APIDeleteAccountMsg.ADMIN_ONLY


# -- sessions ---------------------------------------------------------------------------------

async def test_log_in_validate_renew_and_log_out(node):
    reply = await node.call(APILogInByAccountMsg(accountName="admin",
                                                 password=client_digest("password")), None)
    token = reply.inventory.uuid
    assert reply.inventory.accountUuid == ADMIN_ACCOUNT_UUID
    assert (await node.call(APIValidateSessionMsg(sessionUuid=token), None)).validSession
    session = await node.identity.session_info(token)
    renewed = await node.call(APIRenewSessionMsg(sessionUuid=token, duration=60), session)
    assert renewed.inventory.uuid == token
    await node.call(APILogOutMsg(sessionUuid=token), None)
    assert not (await node.call(APIValidateSessionMsg(sessionUuid=token), None)).validSession
    await node.call(APILogOutMsg(sessionUuid=token), None)  # twice is fine
    assert await refused(node.call(APILogInByAccountMsg(accountName="admin", password="x"), None)) == (
        "ID.1000", "wrong account name or password")


# -- accounts ---------------------------------------------------------------------------------

async def test_create_account_and_log_in_as_it(node, admin):
    event = await node.call(APICreateAccountMsg(name="alice", password=client_digest("pw"),
                                                description="d", userTags=["team-a"]), admin)
    inventory = event.inventory
    assert (inventory.name, inventory.type, inventory.description) == ("alice", "Normal", "d")
    assert not hasattr(inventory, "password")
    alice = await node.login("alice", "pw")
    assert (alice.accountUuid, alice.isAdmin) == (inventory.uuid, False)
    # an account owns itself, so it finds itself in queries
    assert await node.identity.check_visible(alice, "AccountVO", [inventory.uuid, ADMIN_ACCOUNT_UUID]) == [
        ADMIN_ACCOUNT_UUID]
    assert await count(node, UserTagVO, UserTagVO.resourceUuid == inventory.uuid) == 1


async def test_create_account_refusals_leave_nothing(node, admin):
    await node.new_account(admin, "alice")
    alice = await node.login("alice", "secret")
    assert await refused(node.call(APICreateAccountMsg(name="alice", password="p"), admin)) == (
        "SYS.1007", "unable to create an account. An account already called alice")
    assert (await refused(node.call(APICreateAccountMsg(name="bob", password="p"), alice)))[0] == "ID.1002"
    assert (await refused(node.call(APICreateAccountMsg(name="bob", password="p"), None)))[0] == "ID.1001"
    bad_tag = APICreateAccountMsg(name="bob", password="p", systemTags=["no::such::tag"])
    assert (await refused(node.call(bad_tag, admin)))[0] == "SYS.1007"
    assert await count(node, AccountVO) == 2


async def test_a_create_losing_a_race_is_refused_cleanly(node, admin):
    msg = APICreateAccountMsg(name="alice", password="p")
    msg.session = admin
    await node.service.intercept(msg)  # both pass the check...
    await node.new_account(admin, "alice")  # ...another MN creates alice meanwhile
    assert await refused(node.service.handle(msg, None)) == (
        "SYS.1007", "unable to create an account. An account already called alice")
    assert await count(node, AccountVO, AccountVO.name == "alice") == 1


async def test_an_account_changes_its_own_password(node, admin):
    alice_uuid = await node.new_account(admin, "alice", "old")
    alice = await node.login("alice", "old")
    assert await refused(node.call(APIUpdateAccountMsg(uuid=alice_uuid, password=client_digest("new"),
                                                       oldPassword=client_digest("wrong")), alice)) == (
        "SYS.1006", "old password is not equal to the original password, cannot update the "
                    f"password of account[uuid: {alice_uuid}]")
    event = await node.call(APIUpdateAccountMsg(uuid=alice_uuid, password=client_digest("new"),
                                                oldPassword=client_digest("old"),
                                                description="mine"), alice)
    assert event.inventory.description == "mine"
    assert (await refused(node.login("alice", "old")))[0] == "ID.1000"
    await node.login("alice", "new")


async def test_account_update_rules(node, admin):
    alice_uuid = await node.new_account(admin, "alice")
    bob_uuid = await node.new_account(admin, "bob")
    alice = await node.login("alice", "secret")
    # a normal account touches only itself; the admin keeps its name and password
    assert (await refused(node.call(APIUpdateAccountMsg(uuid=bob_uuid, password="x"), alice)))[0] == "ID.1002"
    assert (await refused(node.call(APIUpdateAccountMsg(uuid=ADMIN_ACCOUNT_UUID, password="x"),
                                    alice)))[0] == "ID.1002"
    assert await refused(node.call(APIUpdateAccountMsg(uuid=ADMIN_ACCOUNT_UUID, name="root"), admin)) == (
        "SYS.1006", "the name of admin account cannot be updated")
    assert await refused(node.call(APIUpdateAccountMsg(uuid=alice_uuid, name="bob"), alice)) == (
        "SYS.1007", "unable to update name. An account already called bob")
    # the admin may rename and reset anyone
    event = await node.call(APIUpdateAccountMsg(uuid=bob_uuid, name="robert",
                                                password=client_digest("reset")), admin)
    assert event.inventory.name == "robert"
    await node.login("robert", "reset")
    await node.call(APIUpdateAccountMsg(uuid=alice_uuid, name="alice"), alice)  # same name: fine


async def test_delete_account_takes_its_sessions_and_keys_and_hands_over_its_resources(node, admin):
    alice_uuid = await node.new_account(admin, "alice", userTags=["x"])
    alice = await node.login("alice", "secret")
    key = await node.new_access_key(alice, alice_uuid)
    await node.db.run(lambda s: node.identity.own_in_session(s, alice, GADGET, "GadgetVO"))

    await node.call(APIDeleteAccountMsg(uuid=alice_uuid), admin)
    assert await count(node, AccountVO, AccountVO.uuid == alice_uuid) == 0
    assert await count(node, SessionVO, SessionVO.accountUuid == alice_uuid) == 0
    assert await count(node, AccessKeyVO, AccessKeyVO.accountUuid == alice_uuid) == 0
    assert await count(node, UserTagVO, UserTagVO.resourceUuid == alice_uuid) == 0
    owners = await node.db.run(lambda s: dict(s.execute(select(
        AccountResourceRefVO.resourceUuid, AccountResourceRefVO.accountUuid)).all()))
    assert owners == {ADMIN_ACCOUNT_UUID: ADMIN_ACCOUNT_UUID, GADGET: ADMIN_ACCOUNT_UUID}
    assert (await refused(node.identity.session_info(alice.uuid)))[0] == "ID.1001"
    authorization, date = signed(key.AccessKeyID, key.AccessKeySecret, "GET", ZONES)
    assert (await refused(node.identity.authenticate(authorization, date, "GET", ZONES)))[0] == "ID.1000"
    await node.call(APIDeleteAccountMsg(uuid=alice_uuid), admin)  # already gone: fine


async def test_delete_account_refusals(node, admin):
    alice_uuid = await node.new_account(admin, "alice")
    alice = await node.login("alice", "secret")
    assert await refused(node.call(APIDeleteAccountMsg(uuid=ADMIN_ACCOUNT_UUID), admin)) == (
        "SYS.1007", "cannot delete builtin admin account.")
    second_admin_uuid = await node.new_account(admin, "root", type="SystemAdmin")
    root = await node.login("root", "secret")
    assert root.isAdmin
    assert await refused(node.call(APIDeleteAccountMsg(uuid=second_admin_uuid), root)) == (
        "SYS.1007", "account cannot delete itself")
    assert (await refused(node.call(APIDeleteAccountMsg(uuid=alice_uuid), alice)))[0] == "ID.1002"
    assert await count(node, AccountVO) == 3


# -- AccessKeys ---------------------------------------------------------------------------------

async def test_create_access_key_shows_the_secret_once(node, admin):
    alice_uuid = await node.new_account(admin, "alice")
    alice = await node.login("alice", "secret")
    key = await node.new_access_key(alice, alice_uuid)
    assert (key.accountUuid, key.userUuid, key.state) == (alice_uuid, alice_uuid, "Enabled")
    assert len(key.AccessKeyID) == 20 and key.AccessKeyID.isalnum() and key.AccessKeyID.isupper()
    assert len(key.AccessKeySecret) == 40 and key.AccessKeySecret.isalnum()
    # what queries show (AccessKeyInventory) has no secret; the owner sees the key
    shown = await node.db.run(lambda s: AccessKeyInventory.from_vo(s.get(AccessKeyVO, key.uuid)))
    assert shown.AccessKeyID == key.AccessKeyID and "AccessKeySecret" not in shown.model_dump()
    assert await node.identity.check_visible(alice, "AccessKeyVO", [key.uuid]) == []


async def test_chosen_access_key_id_and_secret(node, admin):
    msg = APICreateAccessKeyMsg(accountUuid=ADMIN_ACCOUNT_UUID, userUuid=ADMIN_ACCOUNT_UUID,
                                AccessKeyID="MYKEYID0001", AccessKeySecret="my-secret-0001")
    key = (await node.call(msg, admin)).inventory
    assert (key.AccessKeyID, key.AccessKeySecret) == ("MYKEYID0001", "my-secret-0001")
    authorization, date = signed("MYKEYID0001", "my-secret-0001", "GET", ZONES)
    assert (await node.identity.authenticate(authorization, date, "GET", ZONES)).isAdmin
    msg = msg.model_copy(update={"AccessKeySecret": "another-secret"})
    assert await refused(node.call(msg, admin)) == (
        "SYS.1007", "an AccessKey with AccessKeyID MYKEYID0001 already exists")
    lonely = APICreateAccessKeyMsg(accountUuid=ADMIN_ACCOUNT_UUID, userUuid=ADMIN_ACCOUNT_UUID,
                                   AccessKeyID="MYKEYID0002")
    assert (await refused(node.call(lonely, admin)))[0] == "SYS.1007"
    assert await count(node, AccessKeyVO) == 1


async def test_access_keys_belong_to_their_account(node, admin):
    alice_uuid = await node.new_account(admin, "alice")
    bob_uuid = await node.new_account(admin, "bob")
    alice, bob = await node.login("alice", "secret"), await node.login("bob", "secret")
    # a normal account creates keys for itself only; the admin for anyone
    assert (await refused(node.new_access_key(alice, bob_uuid)))[0] == "ID.1002"
    assert (await refused(node.call(APICreateAccessKeyMsg(accountUuid=alice_uuid, userUuid=bob_uuid),
                                    alice)))[0] == "SYS.1007"
    key = await node.new_access_key(admin, alice_uuid)
    assert await node.identity.check_visible(alice, "AccessKeyVO", [key.uuid]) == []
    assert await node.identity.check_visible(bob, "AccessKeyVO", [key.uuid]) == [key.uuid]
    for msg in (APIChangeAccessKeyStateMsg(uuid=key.uuid, stateEvent="disable"),
                APIDeleteAccessKeyMsg(uuid=key.uuid)):
        assert (await refused(node.call(msg, bob)))[0] == "ID.1002"
    event = await node.call(APIChangeAccessKeyStateMsg(uuid=key.uuid, stateEvent="disable"), alice)
    assert event.inventory.state == "Disabled" and not hasattr(event.inventory, "AccessKeySecret")


async def test_delete_access_key(node, admin):
    key = await node.new_access_key(admin, ADMIN_ACCOUNT_UUID)
    await node.call(APIDeleteAccessKeyMsg(uuid=key.uuid), admin)
    assert await count(node, AccessKeyVO) == 0
    assert await count(node, AccountResourceRefVO, AccountResourceRefVO.resourceUuid == key.uuid) == 0
    authorization, date = signed(key.AccessKeyID, key.AccessKeySecret, "GET", ZONES)
    assert await refused(node.identity.authenticate(authorization, date, "GET", ZONES)) == (
        "ID.1000", f"AccessKey[AccessKeyID:{key.AccessKeyID}] is not found")
    assert (await refused(node.call(APIDeleteAccessKeyMsg(uuid=key.uuid), admin)))[0] == "SYS.1003"
