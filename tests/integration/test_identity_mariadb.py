"""Identity on a real MariaDB and RabbitMQ: several MNs sharing one database.

Each "MN" here is an IdentityManager with its own Database (connection pool
and threads), so their transactions really run concurrently in MariaDB;
global config changes travel over RabbitMQ.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from sqlalchemy import delete, func, select

from mn.bus import CloudBus
from mn.db import Database, upgrade
from mn.db.models.identity import AccessKeyVO, AccountResourceRefVO, AccountVO, SessionVO
from mn.errors import OperationError
from mn.globalconfig import GlobalConfigManager
from mn.identity import ADMIN_ACCOUNT_UUID, IdentityManager, IdentityService, accounts, password
from mn.identity.config import SESSION_MAX_CONCURRENT
from mn.identity.messages import APIChangeAccessKeyStateMsg, APICreateAccessKeyMsg, APICreateAccountMsg
from mn.identity.password import client_digest
from mn.identity.signature import format_date, sign
from mn.ids import new_uuid
from mn.tags import TagManager
from mn.workqueue import WorkQueues

pytestmark = pytest.mark.integration

MNS = 4
ZONES = "/zstack/v1/zones"


class MN:
    """The parts of one management node identity uses."""

    def __init__(self, url: str, bus_url: str):
        self.uuid = new_uuid()
        self.db = Database(url, threads=4)
        self.bus = CloudBus(bus_url)
        self.queues = WorkQueues()
        self.tags = TagManager(self)
        self.identity = IdentityManager(self)
        self.service = IdentityService(self)

    async def call(self, msg, session):
        msg.session = session
        await self.service.intercept(msg)
        return await self.service.handle(msg, None)

    async def login(self, name: str = "admin", secret: str = "password"):
        inventory = await self.identity.login(name, client_digest(secret))
        return await self.identity.session_info(inventory.uuid)

    async def close(self) -> None:
        await self.identity.stop()
        await self.queues.close()
        self.db.close()


@pytest.fixture(autouse=True)
def _cheap_passwords(monkeypatch):
    monkeypatch.setattr(password, "SCRYPT_N", 2 ** 8)


@pytest.fixture
async def mns(mariadb_url, amqp_url):
    """MNS management nodes on an empty identity schema, none started."""
    upgrade(mariadb_url)
    nodes = [MN(mariadb_url, amqp_url) for _ in range(MNS)]
    await nodes[0].db.run(lambda s: [s.execute(delete(model)) for model in
                                     (SessionVO, AccessKeyVO, AccountResourceRefVO, AccountVO)])
    yield nodes
    for node in nodes:
        await node.close()


@pytest.fixture
async def global_config(mns):
    """The first MN serves global config over RabbitMQ; identity's entries are reset after."""
    node = mns[0]
    await node.bus.start()
    manager = GlobalConfigManager(node)
    await manager.start()
    yield
    await SESSION_MAX_CONCURRENT.update(SESSION_MAX_CONCURRENT.default)
    await manager.stop()
    await node.bus.stop(delete_inbox=True)


async def test_mns_starting_together_create_the_admin_once(mns, monkeypatch):
    # Every MN finds no admin, so all race to insert it.
    monkeypatch.setattr(accounts, "admin_exists", lambda sql_session: False)
    await asyncio.gather(*(node.identity.start() for node in mns))

    def counts(s):
        return (s.scalar(select(func.count()).select_from(AccountVO)),
                s.scalar(select(func.count()).select_from(AccountResourceRefVO)))

    assert await mns[0].db.run(counts) == (1, 1)
    sessions = await asyncio.gather(*(node.login() for node in mns))
    assert {s.accountUuid for s in sessions} == {ADMIN_ACCOUNT_UUID}


async def test_concurrent_logins_on_several_mns_respect_the_limit(mns, global_config):
    await mns[0].identity.start()
    admin = await mns[0].login()
    await mns[0].call(APICreateAccountMsg(name="alice", password=client_digest("pw")), admin)
    await SESSION_MAX_CONCURRENT.update(5)

    results = await asyncio.gather(*(mns[i % MNS].login("alice", "pw") for i in range(20)),
                                   return_exceptions=True)
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 5
    assert all(isinstance(r, OperationError) and r.error.code == "ID.1006" for r in lost)

    # Logging out on one MN frees a place and invalidates the session on all of them.
    await mns[1].identity.logout(won[0].uuid)
    for node in mns:
        with pytest.raises(OperationError) as err:
            await node.identity.authenticate(f"OAuth {won[0].uuid}", None, "GET", ZONES)
        assert err.value.error.code == "ID.1001"
    await mns[2].login("alice", "pw")
    live = await mns[3].db.run(lambda s: s.scalar(select(func.count()).select_from(SessionVO).where(
        SessionVO.accountUuid == won[1].accountUuid)))
    assert live == 5


async def test_an_access_key_disabled_on_one_mn_is_refused_by_all(mns):
    await mns[0].identity.start()
    admin = await mns[0].login()
    event = await mns[0].call(APICreateAccessKeyMsg(accountUuid=ADMIN_ACCOUNT_UUID,
                                                    userUuid=ADMIN_ACCOUNT_UUID), admin)
    key = event.inventory
    date = format_date(datetime.now(timezone.utc))
    authorization = f"ZStack {key.AccessKeyID}:{sign(key.AccessKeySecret, 'GET', date, ZONES)}"
    for node in mns:
        assert (await node.identity.authenticate(authorization, date, "GET", ZONES)).isAdmin
    await mns[1].call(APIChangeAccessKeyStateMsg(uuid=key.uuid, stateEvent="disable"), admin)
    for node in mns:
        with pytest.raises(OperationError) as err:
            await node.identity.authenticate(authorization, date, "GET", ZONES)
        assert err.value.error.code == "ID.1000"
