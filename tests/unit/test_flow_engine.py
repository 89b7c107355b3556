"""Running chains on one MN: order, rollback, handlers, conditions, errors (SQLite)."""

from __future__ import annotations

import asyncio
import logging
import textwrap

import pytest
from sqlalchemy import func, select

from mn.db import Database, upgrade
from mn.db.models.flow_chain import FlowChainVO
from mn.errors import OperationError
from mn.flow import FlowEngine, FlowError, FlowState, load_flows
from mn.ids import new_uuid
from mn.ring import Ring
from tests.support.flow_steps import FLOW_DIR, STEP_ERROR, FlowTestNode, events

FIVE = ["StepA", "StepB", "StepC", "StepD", "StepE"]


@pytest.fixture
def registry(tmp_path):
    extra = tmp_path / "flows"
    extra.mkdir()
    (extra / "handlers.xml").write_text(textwrap.dedent("""
        <chain name="test.broken-handlers">
          <step class="tests.support.flow_steps:StepA"/>
          <done class="tests.support.flow_steps:BrokenHandler"/>
          <done class="tests.support.flow_steps:JournalDone"/>
          <error class="tests.support.flow_steps:BrokenHandler"/>
          <error class="tests.support.flow_steps:JournalError"/>
          <finally class="tests.support.flow_steps:JournalFinally"/>
        </chain>"""))
    return load_flows([FLOW_DIR, extra], default_dir=None, extensions=[])


@pytest.fixture
async def db(sqlite_url):
    upgrade(sqlite_url)
    database = Database(sqlite_url, threads=2)
    yield database
    database.close()


@pytest.fixture
async def engine(db, registry):
    uuid = new_uuid()
    flows = FlowEngine(FlowTestNode(db, uuid, Ring([uuid])), registry)
    yield flows
    await flows.stop()


@pytest.fixture
def journal(tmp_path):
    return tmp_path / "journal"


async def records(db) -> int:
    return await db.run(lambda s: s.scalar(select(func.count()).select_from(FlowChainVO)))


@pytest.mark.parametrize("durable", [True, False])
async def test_five_steps_run_in_order_then_done_and_finally(engine, db, journal, durable):
    data = await engine.run("test.five", {"journal": str(journal)}, durable=durable)
    assert events(journal) == [f"run {s}" for s in FIVE] + ["done test.five", "finally test.five"]
    assert data == {"journal": str(journal), "ran": FIVE}
    assert await records(db) == 0


@pytest.mark.parametrize("durable", [True, False])
@pytest.mark.parametrize("failing", range(5))
async def test_failing_at_each_step_rolls_back_exactly_what_ran_in_reverse(engine, db, journal, failing,
                                                                           durable):
    failed = FIVE[failing]
    with pytest.raises(FlowError) as info:
        await engine.run("test.five", {"journal": str(journal), "fail_at": failed}, durable=durable)

    ran = FIVE[:failing + 1]  # the completed steps and the failing one
    assert events(journal) == ([f"run {s}" for s in ran] + [f"rollback {s}" for s in reversed(ran)]
                               + [f"error {STEP_ERROR}", "finally test.five"])
    err = info.value
    assert err.error.code == "SYS.1006"
    assert err.error.details.startswith(f"flow chain test.five failed at step {failing + 1}/")
    # The step's own ErrorCode, unchanged, is the cause.
    assert (err.step_error.code, err.step_error.details) == (STEP_ERROR, f"{failed} failed as asked")
    assert err.step_id == f"{failing + 1}/tests.support.flow_steps.{failed}"
    assert err.chain == "test.five"
    assert err.data["ran"] == ran
    assert await records(db) == 0


async def test_any_other_exception_fails_the_step_with_sys_1000(engine, journal):
    with pytest.raises(FlowError) as info:
        await engine.run("test.five", {"journal": str(journal), "crash_at": "StepB"})
    assert (info.value.step_error.code, info.value.step_error.details) == ("SYS.1000", "StepB crashed as asked")
    assert events(journal)[-4:] == ["rollback StepB", "rollback StepA", "error SYS.1000", "finally test.five"]


async def test_a_failing_rollback_is_logged_and_the_others_still_run(engine, journal, caplog):
    caplog.set_level(logging.ERROR, logger="mn.flow")
    with pytest.raises(FlowError):
        await engine.run("test.five", {"journal": str(journal), "fail_at": "StepD",
                                       "rollback_fail_at": "StepC"})
    assert events(journal)[4:] == ["rollback StepD", "rollback StepC", "rollback StepB", "rollback StepA",
                                   f"error {STEP_ERROR}", "finally test.five"]
    failures = [r for r in caplog.records if "rollback of step" in r.getMessage()]
    assert len(failures) == 1
    assert "3/tests.support.flow_steps.StepC" in failures[0].getMessage()
    assert "rollback of StepC broke as asked" in str(failures[0].exc_info[1])


async def test_broken_handlers_are_logged_and_change_nothing(engine, journal, caplog):
    caplog.set_level(logging.ERROR, logger="mn.flow")
    data = await engine.run("test.broken-handlers", {"journal": str(journal)})
    assert data["ran"] == ["StepA"]
    assert events(journal) == ["run StepA", "done test.broken-handlers", "finally test.broken-handlers"]

    journal.unlink()
    with pytest.raises(FlowError):
        await engine.run("test.broken-handlers", {"journal": str(journal), "fail_at": "StepA"})
    assert events(journal) == ["run StepA", "rollback StepA", f"error {STEP_ERROR}",
                               "finally test.broken-handlers"]
    assert len([r for r in caplog.records if "handler BrokenHandler" in r.getMessage()]) == 2


@pytest.mark.parametrize("data, expected", [
    ({}, ["StepA", "StepC", "SkipStep", "NoRollbackStep", "StepD", "StepE"]),
    ({"with_b": 1, "without_c": True, "skip_by_method": True, "without_tail": "yes"},
     ["StepA", "StepB", "NoRollbackStep", "StepD"]),
])
async def test_conditions_and_skip_decide_which_steps_run(engine, journal, data, expected):
    result = await engine.run("test.features", {"journal": str(journal), **data})
    assert result["ran"] == expected
    # test.tail's done handler does not run when test.tail is a sub-chain.
    assert events(journal) == [f"run {s}" for s in expected]


async def test_steps_that_cannot_be_rolled_back_are_not_and_skipped_steps_neither(engine, journal):
    with pytest.raises(FlowError) as info:
        await engine.run("test.features", {"journal": str(journal), "fail_at": "StepE", "with_b": False})
    # Failing in the sub-chain: StepD (rollback="false") and NoRollbackStep (class) stay;
    # StepB never ran.
    assert events(journal)[6:] == ["rollback StepE", "rollback SkipStep", "rollback StepC", "rollback StepA"]
    assert info.value.step_id == "8.1/tests.support.flow_steps.StepE"


async def test_a_step_leaving_unserialisable_data_fails_a_durable_chain(engine, db, journal):
    with pytest.raises(FlowError) as info:
        await engine.run("test.unserialisable", {"journal": str(journal)})
    assert info.value.step_error.code == "SYS.1000"
    assert "no longer JSON-serialisable" in info.value.step_error.details
    assert info.value.step_id == "2/tests.support.flow_steps.UnserialisableStep"
    assert events(journal) == ["run StepA", "run UnserialisableStep", "rollback UnserialisableStep",
                               "rollback StepA"]
    assert await records(db) == 0

    journal.unlink()
    data = await engine.run("test.unserialisable", {"journal": str(journal)}, durable=False)
    assert data["ran"] == ["StepA", "UnserialisableStep", "StepC"]


async def test_bad_input_is_refused_before_anything_runs(engine, db, journal):
    with pytest.raises(OperationError) as info:
        await engine.run("no.such.chain", {"journal": str(journal)})
    assert info.value.error.code == "SYS.1007"
    assert "no flow chain is named 'no.such.chain'" in info.value.error.details

    with pytest.raises(OperationError) as info:
        await engine.run("test.five", {"journal": str(journal), "when": object()})
    assert info.value.error.code == "SYS.1007"
    assert "must be JSON-serialisable" in info.value.error.details
    assert not journal.exists()
    assert await records(db) == 0


async def test_the_callers_data_is_not_changed(engine, journal):
    data = {"journal": str(journal)}
    result = await engine.run("test.five", data)
    assert data == {"journal": str(journal)} and result["ran"] == FIVE


async def test_a_caller_that_stops_waiting_does_not_stop_the_chain(engine, db, journal):
    caller = asyncio.ensure_future(engine.run("test.durable", {"journal": str(journal), "block_seconds": 0.3}))
    await asyncio.sleep(0.1)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    for _ in range(100):
        if "finally test.durable" in events(journal):
            break
        await asyncio.sleep(0.05)
    assert events(journal) == ["run StepA", "run StepB", "run BlockStep", "run StepE", "finally test.durable"]
    assert await records(db) == 0


async def test_stop_cancels_chains_and_keeps_their_records(engine, db, journal):
    caller = asyncio.ensure_future(engine.run("test.durable", {"journal": str(journal), "block_seconds": 30}))
    while "run BlockStep" not in events(journal):
        await asyncio.sleep(0.02)
    await engine.stop()
    with pytest.raises(FlowError) as info:
        await caller
    assert info.value.error.code == "SYS.1012"
    assert events(journal) == ["run StepA", "run StepB", "run BlockStep"]  # nothing rolled back
    state = await db.run(lambda s: s.scalar(select(FlowChainVO.state)))
    assert state == FlowState.RUNNING
    with pytest.raises(OperationError, match="is stopping"):
        await engine.run("test.five", {})
