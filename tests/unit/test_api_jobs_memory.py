"""API jobs polled on the MN running them: answered from memory while they run
and shortly after they end, always saying what the job's row says."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event

from mn.api import jobs as jobs_module
from mn.api.jobs import JobManager
from mn.db import Database, upgrade
from mn.db.models.api_job import JOB_PROCESSING, JOB_SUCCEEDED
from mn.ids import new_uuid
from mn.zone.messages import APICreateZoneEvent, APICreateZoneMsg


class Node:
    def __init__(self, db):
        self.db = db
        self.uuid = new_uuid()


@pytest.fixture
async def manager(sqlite_url):
    upgrade(sqlite_url)
    db = Database(sqlite_url, threads=2)
    yield JobManager(Node(db))
    db.close()


@pytest.fixture
def reads(manager):
    """How many statements read ApiJobVO."""
    seen = []

    def on_statement(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "ApiJobVO" in statement:
            seen.append(statement)

    event.listen(manager.node.db.engine, "before_cursor_execute", on_statement)
    yield seen
    event.remove(manager.node.db.engine, "before_cursor_execute", on_statement)


async def test_polls_of_a_job_running_here_and_just_ended_read_no_row(manager, reads):
    release = asyncio.Event()

    async def run():
        await release.wait()
        return APICreateZoneEvent()

    job = await manager.submit(APICreateZoneMsg(name="z"), run, job_uuid=new_uuid())
    view = await manager.get(job)
    assert (view.state, view.api_name) == (JOB_PROCESSING, APICreateZoneMsg.TYPE)
    release.set()
    while (view := await manager.get(job)).state == JOB_PROCESSING:
        await asyncio.sleep(0.01)
    assert view.state == JOB_SUCCEEDED and view.body["success"] is True
    assert reads == []
    # The row says the same: what another MN answers.
    manager._finished.clear()
    from_row = await manager.get(job)
    assert (from_row.state, from_row.full_name, from_row.body) == (view.state, view.full_name, view.body)
    assert len(reads) == 1


async def test_ended_jobs_are_kept_in_memory_for_a_while_only(manager, monkeypatch):
    monkeypatch.setattr(jobs_module, "FINISHED_KEPT", 3)

    async def run():
        return APICreateZoneEvent()

    async def job(name: str) -> str:
        uuid = await manager.submit(APICreateZoneMsg(name=name), run, job_uuid=new_uuid())
        await asyncio.gather(*list(manager._tasks))
        return uuid

    uuids = [await job(f"z{i}") for i in range(5)]
    assert list(manager._finished) == uuids[2:]  # at most FINISHED_KEPT, the newest
    for uuid, (_, view) in list(manager._finished.items()):
        manager._finished[uuid] = (0.0, view)  # their time is up
    last = await job("last")
    assert list(manager._finished) == [last]  # the expired ones left when a new one came
    assert (await manager.get(uuids[0])).state == JOB_SUCCEEDED  # from the row
