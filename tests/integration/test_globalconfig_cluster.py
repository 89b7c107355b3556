"""Global config across MN processes on real MariaDB and RabbitMQ.

Done means: a change made on one MN is seen by another within a second.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, update

from mn.bus import CloudBus
from mn.db import Database
from mn.db.models.global_config import GlobalConfigVO
from mn.errors import OperationError
from mn.globalconfig import GlobalConfig, GlobalConfigManager, GlobalConfigRegistry
from tests.support import globalconfig_probe as probe
from tests.support.cluster import start_cluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: The issue's bar: a change on one MN is seen by another within this.
PROPAGATION_LIMIT = 1.0
NAME = "probe.limit"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, mariadb_url, amqp_url):
    nodes = start_cluster(tmp_path_factory.mktemp("gc-cluster"), 2, db_url=mariadb_url,
                          bus_url=amqp_url, services=probe.SPEC)
    yield nodes
    for node in nodes:
        node.stop()


@pytest.fixture(scope="module")
def db(mariadb_url):
    database = Database(mariadb_url, threads=2)
    yield database
    database.close()


async def value_on(client: CloudBus, node, name: str = NAME) -> probe.GlobalConfigProbeReply:
    return await client.call(probe.GlobalConfigProbeReadMsg(name=name), node=node.uuid, timeout=5)


async def stored(db: Database, name: str = NAME) -> str:
    return await db.run(lambda s: s.scalar(select(GlobalConfigVO.value).where(
        GlobalConfigVO.category == probe.CATEGORY, GlobalConfigVO.name == name)))


async def wait_for_value(client: CloudBus, node, expected: str, limit: float) -> float:
    started = time.monotonic()
    while (await value_on(client, node)).value != expected:
        elapsed = time.monotonic() - started
        assert elapsed < limit, f"{node.uuid} still has {(await value_on(client, node)).value} after {elapsed:.2f}s"
        await asyncio.sleep(0.005)
    return time.monotonic() - started


async def test_both_mns_start_with_one_stored_default(cluster, client, db):
    for node in cluster:
        reply = await value_on(client, node)
        assert (reply.nodeUuid, reply.value) == (node.uuid, "10")
    count = await db.run(lambda s: s.scalar(select(func.count()).select_from(GlobalConfigVO).where(
        GlobalConfigVO.category == probe.CATEGORY)))
    assert count == 1  # both MNs started together; the row exists once


async def test_a_change_on_one_mn_is_seen_by_the_other_within_a_second(cluster, client, db):
    mn1, mn2 = cluster
    for value in ("42", "43", "44"):
        started = time.monotonic()
        reply = await client.call(probe.GlobalConfigProbeUpdateMsg(name=NAME, value=value),
                                  node=mn1.uuid, timeout=10)
        assert reply.value == value  # the updating MN has it when its update returns
        await wait_for_value(client, mn2, value, PROPAGATION_LIMIT)
        elapsed = time.monotonic() - started
        print(f"\nglobal config {value} set on MN1, seen by MN2 {elapsed * 1000:.1f} ms after the update was sent")
        assert elapsed < PROPAGATION_LIMIT
        assert await stored(db) == value
    changes = (await value_on(client, mn2)).changes
    assert changes[-3:] == [(10, 42), (42, 43), (43, 44)]  # listeners ran on the other MN too


async def test_a_refused_value_changes_nothing_anywhere(cluster, client, db):
    mn1, mn2 = cluster
    before = await stored(db)
    with pytest.raises(OperationError) as err:
        await client.call(probe.GlobalConfigProbeUpdateMsg(name=NAME, value="5000"), node=mn1.uuid, timeout=10)
    assert err.value.error.code == "SYS.1007"
    assert "must be in the range [1, 1000]" in err.value.error.details
    assert await stored(db) == before
    assert {(await value_on(client, node)).value for node in cluster} == {before}


async def test_concurrent_updates_on_two_mns_converge(cluster, client, db):
    mn1, mn2 = cluster
    for round_ in range(3):
        await asyncio.gather(
            client.call(probe.GlobalConfigProbeUpdateMsg(name=NAME, value=str(100 + round_)),
                        node=mn1.uuid, timeout=10),
            client.call(probe.GlobalConfigProbeUpdateMsg(name=NAME, value=str(200 + round_)),
                        node=mn2.uuid, timeout=10))
        last_write = await stored(db)
        assert last_write in (str(100 + round_), str(200 + round_))
        for node in cluster:
            await wait_for_value(client, node, last_write, PROPAGATION_LIMIT)


async def test_managers_starting_together_on_mariadb_insert_rows_once(db, amqp_url):
    """Eight MNs' worth of managers start at once: no duplicate-key failure, one row each."""
    category = "test.globalconfig.start"
    peers = []
    for _ in range(8):
        bus = CloudBus(amqp_url)
        registry = GlobalConfigRegistry()
        for i in range(20):
            GlobalConfig(category, f"entry.{i}", int, i, registry=registry)
        node = SimpleNamespace(uuid=bus.address, db=db, bus=bus)
        peers.append((bus, GlobalConfigManager(node, registry=registry, resync_interval=0.2)))
    await asyncio.gather(*(bus.start() for bus, _ in peers))
    try:
        await asyncio.gather(*(manager.start() for _, manager in peers))
        count = await db.run(lambda s: s.scalar(select(func.count()).select_from(GlobalConfigVO).where(
            GlobalConfigVO.category == category)))
        assert count == 20

        # A change written behind every cache (no event) is found by the resync.
        await db.run(lambda s: s.execute(update(GlobalConfigVO).where(
            GlobalConfigVO.category == category, GlobalConfigVO.name == "entry.3").values(value="33")))
        deadline = time.monotonic() + 2
        while any(m.registry.find(category, "entry.3").value != 33 for _, m in peers):
            assert time.monotonic() < deadline, "resync did not pick up the change"
            await asyncio.sleep(0.02)
    finally:
        for bus, manager in peers:
            await manager.stop()
        await asyncio.gather(*(bus.stop(delete_inbox=True) for bus, _ in peers))
