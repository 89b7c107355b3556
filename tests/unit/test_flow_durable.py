"""Durable chains on SQLite: the record after each step, and ending a dead MN's chains from it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from mn.db import Database, upgrade
from mn.db.models.flow_chain import FlowChainVO
from mn.db.models.management_node import ManagementNodeVO
from mn.errors import ErrorCode, OperationError
from mn.flow import FlowEngine, FlowError, FlowRecord, FlowState, load_flows
from mn.ids import new_uuid
from mn.ring import Ring
from tests.support.flow_steps import FLOW_DIR, STEP_ERROR, FlowTestNode, events, read_journal

S = "tests.support.flow_steps"
DURABLE_STEPS = [f"1/{S}.StepA", f"2/{S}.StepB", f"3/{S}.BlockStep", f"5/{S}.StepE"]


@pytest.fixture(scope="module")
def registry():
    return load_flows([FLOW_DIR], default_dir=None, extensions=[])


@pytest.fixture
async def db(sqlite_url):
    upgrade(sqlite_url)
    database = Database(sqlite_url, threads=4)
    yield database
    database.close()


@pytest.fixture
async def cluster(db, registry):
    """``make(ring)``: an engine of a new MN uuid whose ring is ``ring`` plus itself."""
    engines: list[FlowEngine] = []

    def make(uuid: str | None = None, ring: list[str] = ()) -> FlowEngine:
        uuid = uuid or new_uuid()
        engine = FlowEngine(FlowTestNode(db, uuid, Ring([uuid, *ring])), registry)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.stop()


async def record_rows(db) -> list[FlowRecord]:
    return await db.run(lambda s: [FlowRecord.of(vo) for vo in s.scalars(select(FlowChainVO))])


async def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def crash_mid_chain(engine: FlowEngine, journal: Path, chain: str = "test.durable",
                          resource_uuid: str | None = None) -> FlowRecord:
    """Start ``chain`` on ``engine``, let it block in BlockStep, then kill it (no rollback)."""
    caller = asyncio.ensure_future(engine.run(chain, {"journal": str(journal), "block_seconds": 60},
                                              resource_uuid=resource_uuid, resource_type="FlowTestVO"))
    await wait_for(lambda: "run BlockStep" in events(journal))
    await engine.stop()  # cancels the chain where it stands, as a dying process would leave it
    with pytest.raises(FlowError):
        await caller
    (record,) = [r for r in await record_rows(engine.store.db) if r.data["journal"] == str(journal)]
    return record


async def test_the_record_tells_each_step_what_completed_before_it(cluster, db, tmp_path):
    engine = cluster()
    journal = str(tmp_path / "journal")
    data = await engine.run("test.probe", {"journal": journal}, resource_uuid="r" * 32)
    first, second, third = data["snapshots"]
    probe = f"{S}.ProbeStep"
    assert first == {"state": "Running", "owner": engine.node.uuid, "current": f"1/{probe}",
                     "completed": [], "data": {"journal": journal}}
    # Step 2 was skipped (when="never"): it is neither current nor completed.
    assert second == {"state": "Running", "owner": engine.node.uuid, "current": f"3/{probe}",
                      "completed": [f"1/{probe}"],
                      "data": {"journal": journal, "snapshots": [first], "ran": ["ProbeStep"]}}
    assert third["current"] == f"4/{probe}"
    assert third["completed"] == [f"1/{probe}", f"3/{probe}"]
    assert third["data"]["ran"] == ["ProbeStep", "ProbeStep"]
    assert await record_rows(db) == []  # an ended chain leaves no record


async def test_record_of_a_chain_whose_mn_died(cluster, tmp_path):
    engine = cluster()
    record = await crash_mid_chain(engine, tmp_path / "journal", resource_uuid="a" * 32)
    assert record.chain_name == "test.durable"
    assert (record.owner, record.state) == (engine.node.uuid, FlowState.RUNNING)
    assert (record.resource_uuid, record.resource_type) == ("a" * 32, "FlowTestVO")
    assert record.completed_steps == DURABLE_STEPS[:2]
    assert record.current_step == DURABLE_STEPS[2]
    assert record.data["ran"] == ["StepA", "StepB"]
    assert record.error is None


async def test_recover_rolls_back_a_dead_mns_chain_from_its_record(cluster, db, tmp_path):
    dead, survivor = cluster(), cluster()
    journal = tmp_path / "journal"
    record = await crash_mid_chain(dead, journal)

    assert await survivor.recover(record.uuid) == FlowState.ROLLED_BACK
    by_survivor = [(e, label) for e, label, node in read_journal(journal)[3:] if node == survivor.node.uuid]
    assert by_survivor == [("rollback", "BlockStep"), ("rollback", "StepB"), ("rollback", "StepA"),
                           ("error", "SYS.1012"), ("finally", "test.durable")]
    assert len(read_journal(journal)) == 3 + len(by_survivor)
    assert await record_rows(db) == []
    with pytest.raises(OperationError, match="no flow chain record"):
        await survivor.recover(record.uuid)


async def test_a_resumable_chain_is_finished_instead(cluster, db, tmp_path):
    dead, survivor = cluster(), cluster()
    journal = tmp_path / "journal"
    record = await crash_mid_chain(dead, journal, chain="test.resumable")
    assert record.completed_steps == [f"1/{S}.StepA"]

    assert await survivor.recover(record.uuid) == FlowState.DONE
    assert events(journal, node=True) == [
        f"run StepA @{dead.node.uuid}", f"run BlockStep @{dead.node.uuid}",
        f"run BlockStep @{survivor.node.uuid}", f"run StepC @{survivor.node.uuid}",
        f"done test.resumable @{survivor.node.uuid}"]
    assert await record_rows(db) == []


async def test_a_resumed_chain_that_fails_is_rolled_back(cluster, db, tmp_path):
    dead, survivor = cluster(), cluster()
    journal = tmp_path / "journal"
    record = await crash_mid_chain(dead, journal, chain="test.resumable")
    await survivor.store.db.run(lambda s: s.get(FlowChainVO, record.uuid).__setattr__(
        "data", json.dumps({**record.data, "fail_at": "StepC"})))

    assert await survivor.recover(record.uuid) == FlowState.ROLLED_BACK
    assert events(journal)[2:] == ["run BlockStep", "run StepC", "rollback StepC", "rollback BlockStep",
                                   "rollback StepA"]


async def insert_record(engine: FlowEngine, journal: Path, **fields) -> FlowRecord:
    record = FlowRecord(uuid=new_uuid(), chain_name="test.five", owner=new_uuid(),
                        data={"journal": str(journal)}, **fields)
    await engine.store.insert(record, json.dumps(record.data))
    return record


async def test_a_rollback_under_way_continues_where_it_stopped(cluster, db, tmp_path):
    survivor = cluster()
    journal = tmp_path / "journal"
    record = await insert_record(survivor, journal, state=FlowState.ROLLING_BACK,
                                 completed_steps=[f"1/{S}.StepA", f"2/{S}.StepB"],
                                 error=ErrorCode(STEP_ERROR, "a test step failed", "StepD failed"))
    assert await survivor.recover(record.uuid) == FlowState.ROLLED_BACK
    assert events(journal) == ["rollback StepB", "rollback StepA", f"error {STEP_ERROR}", "finally test.five"]
    assert await record_rows(db) == []


@pytest.mark.parametrize("state, expected", [
    (FlowState.DONE, ["done test.five", "finally test.five"]),
    (FlowState.ROLLED_BACK, [f"error {STEP_ERROR}", "finally test.five"]),
])
async def test_an_ended_chain_whose_handlers_were_cut_short_only_reruns_them(cluster, db, tmp_path, state,
                                                                              expected):
    survivor = cluster()
    journal = tmp_path / "journal"
    record = await insert_record(survivor, journal, state=state,
                                 completed_steps=[f"{i}/{S}.Step{c}" for i, c in enumerate("ABCDE", 1)]
                                 if state == FlowState.DONE else [],
                                 error=ErrorCode(STEP_ERROR) if state == FlowState.ROLLED_BACK else None)
    assert await survivor.recover(record.uuid) == state
    assert events(journal) == expected
    assert await record_rows(db) == []


@pytest.mark.parametrize("fields, problem", [
    ({"chain_name": "test.gone"}, "no flow chain is named 'test.gone'"),
    ({"completed_steps": [f"1/{S}.StepZ"]}, f"has no step '1/{S}.StepZ'"),
])
async def test_a_record_this_code_cannot_map_is_marked_failed_and_left(cluster, db, tmp_path, fields,
                                                                        problem, caplog):
    survivor = cluster()
    journal = tmp_path / "journal"
    record = FlowRecord(uuid=new_uuid(), chain_name="test.five", owner=new_uuid(),
                        data={"journal": str(journal)})
    for name, value in fields.items():
        setattr(record, name, value)
    await survivor.store.insert(record, json.dumps(record.data))

    assert await survivor.recover(record.uuid) == FlowState.FAILED
    assert problem in caplog.text
    (row,) = await record_rows(db)
    assert (row.state, row.owner) == (FlowState.FAILED, survivor.node.uuid)
    assert not journal.exists()
    assert await cluster().take_over(survivor.node.uuid) == {}  # never retried


async def test_take_over_splits_a_dead_mns_chains_by_the_ring(cluster, db, tmp_path):
    dead = cluster()
    b_uuid, c_uuid = new_uuid(), new_uuid()
    ring = Ring([b_uuid, c_uuid])
    resources = [new_uuid() for _ in range(40)]
    for_b = next(r for r in resources if ring.owner(r) == b_uuid)
    for_c = next(r for r in resources if ring.owner(r) == c_uuid)
    journals = {r: tmp_path / f"journal-{r}" for r in (for_b, for_c)}
    runs = [asyncio.ensure_future(dead.run("test.durable", {"journal": str(journals[r]), "block_seconds": 60},
                                           resource_uuid=r)) for r in (for_b, for_c)]
    await wait_for(lambda: all("run BlockStep" in events(j) for j in journals.values()))
    await dead.stop()
    await asyncio.gather(*runs, return_exceptions=True)

    b = cluster(b_uuid, ring=[c_uuid])
    c = cluster(c_uuid, ring=[b_uuid])
    assert list((await b.take_over(dead.node.uuid)).values()) == [FlowState.ROLLED_BACK]
    assert events(journals[for_b], node=True)[3] == f"rollback BlockStep @{b_uuid}"
    assert events(journals[for_c]) == ["run StepA", "run StepB", "run BlockStep"]  # C's share: untouched

    c.on_node_left(dead.node.uuid)  # the membership listener: takes over in the background
    await wait_for(lambda: "finally test.durable" in events(journals[for_c]))
    assert events(journals[for_c], node=True)[3:] == [
        f"rollback BlockStep @{c_uuid}", f"rollback StepB @{c_uuid}", f"rollback StepA @{c_uuid}",
        f"error SYS.1012 @{c_uuid}", f"finally test.durable @{c_uuid}"]
    await wait_for(lambda: not c._tasks)
    assert await record_rows(db) == []


async def test_take_over_at_start_leaves_chains_of_live_mns_alone(cluster, db, tmp_path):
    live, vanished = cluster(), cluster()
    await db.run(lambda s: s.add(ManagementNodeVO(uuid=live.node.uuid, hostName="h", port=1)))
    live_journal, vanished_journal = tmp_path / "live", tmp_path / "vanished"
    live_run = asyncio.ensure_future(live.run("test.durable", {"journal": str(live_journal),
                                                               "block_seconds": 60}))
    await crash_mid_chain(vanished, vanished_journal)
    await wait_for(lambda: "run BlockStep" in events(live_journal))

    starting = cluster()  # alone on its ring: it owns every resource
    starting.start()
    await wait_for(lambda: "finally test.durable" in events(vanished_journal))
    assert events(live_journal) == ["run StepA", "run StepB", "run BlockStep"]
    (row,) = await record_rows(db)
    assert (row.owner, row.state) == (live.node.uuid, FlowState.RUNNING)
    live_run.cancel()


async def test_an_mn_whose_chain_was_taken_over_stops_it(cluster, db, tmp_path):
    slow, successor = cluster(), cluster()
    journal = tmp_path / "journal"
    run = asyncio.ensure_future(slow.run("test.durable", {"journal": str(journal), "block_seconds": 0.5}))
    await wait_for(lambda: "run BlockStep" in events(journal))
    (record,) = await record_rows(db)
    # The slow MN was declared dead while its step ran; a successor claimed the chain.
    assert await successor.store.claim([(record.uuid, slow.node.uuid)], successor.node.uuid) == [record.uuid]

    with pytest.raises(FlowError) as info:
        await run
    assert info.value.error.code == "SYS.1012"
    assert "was taken over by another management node" in info.value.error.details
    assert events(journal) == ["run StepA", "run StepB", "run BlockStep"]  # no step, no rollback
    (row,) = await record_rows(db)
    assert (row.owner, row.completed_steps) == (successor.node.uuid, DURABLE_STEPS[:2])


async def test_recover_refuses_a_chain_running_here(cluster, db, tmp_path):
    engine = cluster()
    journal = tmp_path / "journal"
    run = asyncio.ensure_future(engine.run("test.durable", {"journal": str(journal), "block_seconds": 60}))
    await wait_for(lambda: "run BlockStep" in events(journal))
    (record,) = await record_rows(db)
    with pytest.raises(OperationError, match="is running on this management node"):
        await engine.recover(record.uuid)
    run.cancel()


async def test_an_operator_can_retry_a_failed_record_once_the_code_maps_it(cluster, db, tmp_path):
    operator = cluster()
    journal = tmp_path / "journal"
    record = await insert_record(operator, journal, state=FlowState.FAILED,
                                 completed_steps=[f"1/{S}.StepA", f"2/{S}.StepB"], current_step=f"3/{S}.StepC")
    assert await operator.recover(record.uuid) == FlowState.ROLLED_BACK
    assert events(journal) == ["rollback StepC", "rollback StepB", "rollback StepA", "error SYS.1006",
                               "finally test.five"]
    assert await record_rows(db) == []
