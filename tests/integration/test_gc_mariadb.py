"""GC jobs on a real MariaDB and RabbitMQ: two managers in one process, each
with its own bus on the module's vhost, sharing one database."""

from __future__ import annotations

import asyncio
import time

import pytest

from mn.db import Database, upgrade
from mn.gc import GarbageCollectorVO, GCManager
from tests.support import gc_runners as runners
from tests.support.gc_runners import CountingGC, FakeNode, HostCleanupGC, PatientFlakyGC, SampleHostReconnectedEvent

pytestmark = pytest.mark.integration

INTERVAL = 0.05


@pytest.fixture(scope="module")
def db(mariadb_url):
    upgrade(mariadb_url)
    database = Database(mariadb_url, threads=8)
    yield database
    database.close()


@pytest.fixture
async def started(db, amqp_url):
    """``start(node)`` -> its started manager; nodes and managers stop at the end."""
    runners.reset()
    made: list[tuple[FakeNode, GCManager]] = []

    async def start(node: FakeNode, *, run: bool = True) -> GCManager:
        await node.start()
        manager = GCManager(node, interval=INTERVAL)
        made.append((node, manager))
        if run:
            await manager.start()
        return manager

    def node(*peers: str) -> FakeNode:
        return FakeNode(db, amqp_url, peers)

    yield node, start
    for n, manager in reversed(made):
        await manager.stop()
        await n.stop()


async def job(db: Database, uuid: str) -> GarbageCollectorVO | None:
    return await db.run(lambda s: s.get(GarbageCollectorVO, uuid))


async def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def retried_once(db, uuid) -> bool:
    row = await job(db, uuid)
    return row.retries == 1 and row.status == "Idle"


def all_done(db, uuids):
    def statuses(session) -> list[str]:
        return [getattr(session.get(GarbageCollectorVO, uuid), "status", None) for uuid in uuids]

    async def check() -> bool:
        return set(await db.run(statuses)) == {"Done"}
    return check


async def test_an_event_on_one_bus_triggers_the_job_on_its_owner(db, started):
    make, start = started
    a = make()
    b = make(a.uuid)
    a.ring.update([a.uuid, b.uuid])
    manager_a, _ = await start(a), await start(b)

    # Submit until each MN owns a job (the ring decides by uuid).
    owners: dict[str, str] = {}
    hosts: dict[str, str] = {}
    while len(set(owners.values())) < 2:
        assert len(owners) < 64
        host = f"host-{len(owners)}"
        uuid = await manager_a.submit(HostCleanupGC, {"hostUuid": host}, delay=0)
        owners[uuid], hosts[uuid] = a.ring.owner(uuid), host
    # Every first attempt fails on its owner; the next would be an hour later.
    for uuid in owners:
        await wait_for(lambda: retried_once(db, uuid))
    assert all(runners.runs_of(uuid)[0].node == owner for uuid, owner in owners.items())

    runners.CONNECTED.update(hosts.values())
    for uuid, owner in owners.items():
        elsewhere = b if owner == a.uuid else a
        await elsewhere.bus.publish(SampleHostReconnectedEvent(hostUuid=hosts[uuid]))
    await wait_for(all_done(db, owners), timeout=5)

    for uuid, owner in owners.items():
        first, second = runners.runs_of(uuid)
        assert (second.node, second.trigger) == (owner, SampleHostReconnectedEvent.TYPE)


async def test_claims_are_exclusive_between_managers(db, started):
    make, start = started
    # Each ring holds only its own node: both managers think they own every job.
    first, second = await start(make(), run=False), await start(make(), run=False)
    uuids = [await first.submit(CountingGC, {"n": n}, delay=0.3) for n in range(50)]
    await asyncio.sleep(0.35)

    tried = await asyncio.gather(first.tick(), second.tick(), first.tick(), second.tick())
    assert sum(tried) >= 50
    await wait_for(all_done(db, uuids))
    assert sorted(run.job for run in runners.RUNS) == sorted(uuids)


async def test_a_job_survives_its_manager_and_node(db, started):
    make, start = started
    old = make()
    manager = await start(old)
    uuid = await manager.submit(PatientFlakyGC, {"failures": 1}, delay=0)
    await wait_for(lambda: retried_once(db, uuid))
    await manager.stop()
    await old.stop()

    new = make()
    await start(new)
    await wait_for(all_done(db, [uuid]))
    assert [run.node for run in runners.runs_of(uuid)] == [old.uuid, new.uuid]
