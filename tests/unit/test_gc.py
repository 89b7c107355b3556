"""GC jobs on SQLite and the in-process bus: retries, events, claims, restarts."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select

from mn.db import Database, upgrade
from mn.db.models import ManagementNodeVO
from mn.db.types import utcnow
from mn.errors import OperationError, SysErrors
from mn.gc import GarbageCollector, GarbageCollectorVO, GCManager, runner_name
from mn.ids import new_uuid
from tests.support import gc_runners as runners
from tests.support.gc_runners import (
    BlockingGC,
    CountingGC,
    FakeNode,
    FlakyGC,
    HostCleanupGC,
    PatientFlakyGC,
    SampleHostReconnectedEvent,
    TimeoutGC,
)

INTERVAL = 0.02


@pytest.fixture
def db(sqlite_url):
    upgrade(sqlite_url)
    database = Database(sqlite_url, threads=4)
    yield database
    database.close()


@pytest.fixture
async def cluster(db):
    """``make(...)`` -> a started node and its (not started) manager; all stopped at the end."""
    runners.reset()
    made: list[tuple[FakeNode, GCManager]] = []

    async def make(*, ring_nodes=(), database=None, **options) -> tuple[FakeNode, GCManager]:
        node = FakeNode(database or db, "memory://", ring_nodes)
        await node.start()
        options.setdefault("interval", INTERVAL)
        manager = GCManager(node, **options)
        made.append((node, manager))
        return node, manager

    yield make
    for node, manager in made:
        await manager.stop()
        await node.stop()


def job(db: Database, uuid: str) -> GarbageCollectorVO | None:
    with db.session() as s:
        return s.get(GarbageCollectorVO, uuid)


async def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def status_is(db, uuid, status):
    return lambda: (row := job(db, uuid)) is not None and row.status == status


async def test_failing_job_is_retried_on_the_timer_with_growing_delays(db, cluster):
    node, manager = await cluster()
    await manager.start()
    uuid = await manager.submit(FlakyGC, {"failures": 2}, delay=0)

    await wait_for(status_is(db, uuid, "Done"))

    runs = runners.runs_of(uuid)
    assert [run.retries for run in runs] == [0, 1, 2]
    assert {run.node for run in runs} == {node.uuid}
    # RETRY_INTERVAL 0.05 s, doubled after the second failure.
    assert runs[1].at - runs[0].at >= 0.045
    assert runs[2].at - runs[1].at >= 0.095
    row = job(db, uuid)
    assert (row.name, row.runnerClass, row.type) == ("FlakyGC", "tests.support.gc_runners:FlakyGC", "TimeBased")
    assert (row.retries, row.lastError, row.managementNodeUuid) == (2, None, node.uuid)


async def test_failure_is_recorded_and_waits_for_its_delay(db, cluster):
    _, manager = await cluster()
    uuid = await manager.submit(HostCleanupGC, {"hostUuid": "h1"}, delay=0)
    await wait_for(lambda: job(db, uuid).retries == 1)

    row = job(db, uuid)
    assert row.lastError == "ConnectionError: host h1 is disconnected"
    assert row.name == "delete-volume-on-host" and row.type == "EventBased"
    assert row.nextRunDate - utcnow() > timedelta(seconds=3590)
    assert await manager.tick() == 0  # not due


async def test_event_retries_matching_jobs_at_once(db, cluster):
    node, manager = await cluster()
    await manager.start()
    waiting = {host: await manager.submit(HostCleanupGC, {"hostUuid": host}, delay=0) for host in ("h1", "h2")}
    for uuid in waiting.values():
        await wait_for(lambda: job(db, uuid).retries == 1)

    runners.CONNECTED.update({"h1", "h2"})
    await node.bus.publish(SampleHostReconnectedEvent(hostUuid="h1"))
    await wait_for(status_is(db, waiting["h1"], "Done"), timeout=2)

    assert runners.runs_of(waiting["h1"])[-1].trigger == SampleHostReconnectedEvent.TYPE
    await asyncio.sleep(0.1)  # h2's job was not triggered, and its timer is an hour away
    assert len(runners.runs_of(waiting["h2"])) == 1
    assert job(db, waiting["h2"]).status == "Idle"


async def test_an_event_during_a_run_makes_its_failure_retry_at_once(db, cluster):
    node, manager = await cluster()
    await manager.start()
    runners.GATES["h3"] = gate = asyncio.Event()
    uuid = await manager.submit(HostCleanupGC, {"hostUuid": "h3"}, delay=0)
    await wait_for(lambda: len(runners.runs_of(uuid)) == 1)

    # The host reconnects while the attempt that started without it still runs.
    runners.CONNECTED.add("h3")
    await node.bus.publish(SampleHostReconnectedEvent(hostUuid="h3"))
    await asyncio.sleep(0.05)
    gate.set()

    await wait_for(status_is(db, uuid, "Done"), timeout=2)
    first, second = runners.runs_of(uuid)
    assert (first.retries, second.retries) == (0, 1)
    assert second.at - first.at < 1  # not an hour later


@pytest.fixture
def other_db(db, sqlite_url):
    """The same database seen by another MN: its own engine and threads."""
    database = Database(sqlite_url, threads=4)
    yield database
    database.close()


async def test_two_managers_on_one_database_never_run_a_job_twice(db, other_db, cluster):
    _, first = await cluster()
    _, second = await cluster(database=other_db)
    # Both rings hold only their own node: each thinks it owns every job.
    uuids = [await first.submit(CountingGC, {"n": n}, delay=0.2) for n in range(30)]
    await asyncio.sleep(0.25)

    started = await asyncio.gather(first.tick(), second.tick(), first.tick(), second.tick())
    assert sum(started) >= 30  # both tried...
    await wait_for(lambda: all(job(db, uuid).status == "Done" for uuid in uuids))

    assert sorted(run.job for run in runners.RUNS) == sorted(uuids)  # ...each job ran once


async def test_a_job_survives_a_manager_restart(db, cluster):
    node, manager = await cluster()
    await manager.start()
    uuid = await manager.submit(PatientFlakyGC, {"failures": 1}, delay=0)
    await wait_for(lambda: job(db, uuid).retries == 1)
    await manager.stop()
    await node.stop()

    successor, restarted = await cluster()
    await restarted.start()
    await wait_for(status_is(db, uuid, "Done"))

    assert [run.node for run in runners.runs_of(uuid)] == [node.uuid, successor.uuid]


async def test_a_dead_nodes_processing_job_is_taken_over(db, cluster):
    dead = new_uuid()
    uuid = new_uuid()
    with db.session() as s:
        s.add(ManagementNodeVO(uuid=dead, hostName="10.0.0.9", port=8080))
        s.flush()
        s.add(GarbageCollectorVO(uuid=uuid, name="orphan", runnerClass=runner_name(CountingGC), context="{}",
                                 status="Processing", managementNodeUuid=dead))
    with db.session() as s:  # fencing deletes the dead node's row
        s.execute(delete(ManagementNodeVO).where(ManagementNodeVO.uuid == dead))
    assert job(db, uuid).managementNodeUuid is None

    node, manager = await cluster()
    await manager.start()
    await wait_for(status_is(db, uuid, "Done"))
    assert [run.node for run in runners.runs_of(uuid)] == [node.uuid]


async def test_stop_releases_a_running_job_to_the_next_manager(db, cluster):
    node, manager = await cluster()
    await manager.start()
    uuid = await manager.submit(BlockingGC, {"gate": "g1"}, delay=0)
    await wait_for(status_is(db, uuid, "Processing"))
    assert job(db, uuid).managementNodeUuid == node.uuid

    await manager.stop()
    row = job(db, uuid)
    assert (row.status, row.managementNodeUuid, row.retries) == ("Idle", None, 0)

    runners.GATES["g1"].set()
    _, successor = await cluster()
    await successor.start()
    await wait_for(status_is(db, uuid, "Done"))


async def test_a_run_that_times_out_is_a_failure(db, cluster):
    _, manager = await cluster()
    uuid = await manager.submit(TimeoutGC, {"gate": "never"}, delay=0)
    await wait_for(lambda: job(db, uuid).retries == 1)
    row = job(db, uuid)
    assert (row.status, row.lastError) == ("Idle", "TimeoutError")


async def test_an_unknown_runner_is_logged_and_kept_without_stopping_others(db, cluster, caplog):
    broken = {new_uuid(): "tests.support.no_such_module:Gone",
              new_uuid(): "tests.support.gc_runners:NotARunner",
              new_uuid(): "not a class name"}
    with db.session() as s:
        for uuid, runner in broken.items():
            s.add(GarbageCollectorVO(uuid=uuid, name="legacy", runnerClass=runner, context="{}"))
    _, manager = await cluster()
    good = await manager.submit(CountingGC, {}, delay=0.05)
    await manager.start()

    await wait_for(status_is(db, good, "Done"))
    await wait_for(lambda: all(job(db, uuid).retries == 1 for uuid in broken))
    for uuid in broken:
        row = job(db, uuid)
        assert row.status == "Idle" and row.lastError.startswith("LookupError: runner class")
        assert row.nextRunDate - utcnow() > timedelta(seconds=3500)
    assert "cannot import tests.support.no_such_module" in caplog.text
    assert not manager._loop_task.done()
    assert await manager.tick() == 0


async def test_submit_rejects_bad_input_and_leaves_no_row(db, cluster):
    _, manager = await cluster()

    class LocalGC(GarbageCollector):
        async def collect(self, ctx, context):
            pass

    bad = [
        (LocalGC, {}, {}),
        (runners.NotARunner, {}, {}),
        (CountingGC, ["not", "a", "dict"], {}),
        (CountingGC, {"when": {1, 2}}, {}),
        (CountingGC, {}, {"delay": -1}),
        (CountingGC, {}, {"name": "x" * 256}),
    ]
    for runner, context, options in bad:
        with pytest.raises(OperationError) as caught:
            await manager.submit(runner, context, **options)
        assert caught.value.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(GarbageCollectorVO)) == 0


async def test_done_jobs_are_purged_after_keep_done(db, cluster):
    _, keeping = await cluster(keep_done=0.1)
    kept = await keeping.submit(CountingGC, {}, delay=0)
    await wait_for(status_is(db, kept, "Done"))
    await keeping.tick()
    assert job(db, kept) is not None
    await asyncio.sleep(0.15)
    await keeping.tick()
    assert job(db, kept) is None

    _, purging = await cluster(keep_done=0)
    gone = await purging.submit(CountingGC, {}, delay=0)
    await wait_for(lambda: runners.runs_of(gone) and job(db, gone) is None)


async def test_a_manager_runs_only_the_jobs_it_owns_on_the_ring(db, cluster):
    peer = new_uuid()
    node, manager = await cluster(ring_nodes=(peer,))
    uuids = [await manager.submit(CountingGC, {"n": n}, delay=0.05) for n in range(20)]
    await asyncio.sleep(0.06)

    mine = {uuid for uuid in uuids if node.ring.owner(uuid) == node.uuid}
    assert 0 < len(mine) < 20
    assert await manager.tick() == len(mine)
    await wait_for(lambda: all(job(db, uuid).status == "Done" for uuid in mine))
    assert all(job(db, uuid).status == "Idle" for uuid in set(uuids) - mine)
