"""Atomic steps (``Flow.atomic``): a step records its completion in the
transaction that makes its writes, so a chain commits once per step, and a
crash still leaves a record another MN ends correctly.

The steps write rows of a scratch table ``effect`` (one per step run) in the
same SQLite database as the records, so a test sees exactly what committed.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import event, select, text

from mn.db import Database, upgrade
from mn.db.models.flow_chain import FlowChainVO
from mn.errors import ErrorCode, OperationError
from mn.flow import Flow, FlowContext, FlowEngine, FlowError, FlowRecord, FlowState, NoRollbackFlow, load_flows
from mn.ids import new_uuid
from mn.ring import Ring
from tests.support.flow_steps import FlowTestNode

M = "tests.unit.test_flow_atomic"
CHAINS = {
    # atomic, atomic without effect, an external step, atomic last step
    "atomic.mixed": ["WriteA", "Reader", "External", "WriteB"],
    # an atomic step names the external step after it as running
    "atomic.then-external": ["WriteA", "External"],
    "atomic.one": ["WriteA"],
}


def effects(session) -> list[str]:
    return list(session.scalars(text("SELECT name FROM effect ORDER BY name")))


class WriteStep(Flow):
    """Inserts ``effect`` row ``<label>`` and records itself, in one transaction.

    ``data["fail_after_write"] == label``: raises inside that transaction,
    after the insert and mark_done.
    """

    atomic = True
    label = ""

    async def run(self, ctx: FlowContext) -> None:
        ctx.data.setdefault("ran", []).append(self.label)

        def write(session) -> None:
            session.execute(text("INSERT INTO effect (name) VALUES (:n)"), {"n": self.label})
            ctx.mark_done(session)
            if ctx.data.get("fail_after_write") == self.label:
                raise OperationError(ErrorCode("TEST.1002", "failed after its write"))

        await ctx.db.run(write)

    async def rollback(self, ctx: FlowContext) -> None:
        await ctx.db.run(lambda s: s.execute(text("DELETE FROM effect WHERE name = :n"), {"n": self.label}))


class WriteA(WriteStep):
    label = "A"


class WriteB(WriteStep):
    label = "B"


class Reader(NoRollbackFlow):
    """Atomic with no effect: it only reads, and never calls mark_done."""

    atomic = True

    async def run(self, ctx: FlowContext) -> None:
        ctx.data["seen"] = await ctx.db.run(effects)


class External(Flow):
    """Not atomic (an effect outside the database): copies the record as it sees
    it into ``data["record"]``, then waits for ``RELEASE`` when asked to block."""

    async def run(self, ctx: FlowContext) -> None:
        def read(session):
            vo = session.get(FlowChainVO, ctx.record_uuid)
            return {"current": vo.currentStep, "completed": json.loads(vo.completedSteps)}

        ctx.data["record"] = await ctx.db.run(read)
        if ctx.data.get("block") and not ctx.recovered:
            await RELEASE.wait()

    async def rollback(self, ctx: FlowContext) -> None:
        ctx.data.setdefault("undone", []).append("External")


#: Made anew by the ``engines`` fixture, on the test's event loop.
RELEASE = asyncio.Event()


def step_id(chain: str, name: str) -> str:
    return f"{CHAINS[chain].index(name) + 1}/{M}.{name}"


@pytest.fixture
def registry(tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    for name, steps in CHAINS.items():
        body = "".join(f'  <step class="{M}:{s}"/>\n' for s in steps)
        (flows / f"{name}.xml").write_text(f'<chain name="{name}">\n{body}</chain>\n')
    return load_flows([flows], default_dir=None, extensions=[])


@pytest.fixture
async def db(sqlite_url):
    upgrade(sqlite_url)
    database = Database(sqlite_url, threads=2)
    await database.run(lambda s: s.execute(text("CREATE TABLE effect (name VARCHAR(32) PRIMARY KEY)")))
    yield database
    database.close()


@pytest.fixture
async def engines(db, registry):
    made: list[FlowEngine] = []

    def make() -> FlowEngine:
        uuid = new_uuid()
        engine = FlowEngine(FlowTestNode(db, uuid, Ring([uuid])), registry)
        made.append(engine)
        return engine

    global RELEASE
    RELEASE = asyncio.Event()
    yield make
    RELEASE.set()
    for engine in made:
        await engine.stop()


@pytest.fixture
def commits(db):
    """The transactions that wrote, each as the tables it wrote."""
    writes: list[set[str]] = []
    current: dict[int, set[str]] = {}

    def on_statement(conn, cursor, statement, *args) -> None:
        words = statement.split()
        if words and words[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            table = words[2] if words[0].upper() in ("INSERT", "DELETE") else words[1]
            current.setdefault(id(conn), set()).add(table.strip('"`'))

    def on_commit(conn) -> None:
        tables = current.pop(id(conn), None)
        if tables:
            writes.append(tables)

    event.listen(db.engine, "before_cursor_execute", on_statement)
    event.listen(db.engine, "commit", on_commit)
    yield writes
    event.remove(db.engine, "before_cursor_execute", on_statement)
    event.remove(db.engine, "commit", on_commit)


async def records(db) -> list[FlowRecord]:
    return await db.run(lambda s: [FlowRecord.of(vo) for vo in s.scalars(select(FlowChainVO))])


def running_data(engine: FlowEngine) -> dict:
    """The data map of the chain running on ``engine`` (empty when none runs)."""
    executions = list(engine._running.values())
    return executions[0].ctx.data if executions else {}


async def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_each_atomic_step_commits_once_with_its_record(engines, db, commits):
    data = await engines().run("atomic.mixed", {}, resource_uuid=new_uuid())

    assert await db.run(effects) == ["A", "B"]
    assert data["seen"] == ["A"]
    # The external step found the record naming it, after the two before it.
    assert data["record"] == {"current": step_id("atomic.mixed", "External"),
                              "completed": [step_id("atomic.mixed", "WriteA"), step_id("atomic.mixed", "Reader")]}
    # A's row with the record's insert; the write before the external step; B's
    # row with the record's deletion (the chain's end). Nothing else.
    assert commits == [{"effect", "FlowChainVO"}, {"FlowChainVO"}, {"effect", "FlowChainVO"}]
    assert await records(db) == []


async def test_an_atomic_step_names_the_external_step_after_it(engines, db, commits):
    data = await engines().run("atomic.then-external", {})

    assert data["record"] == {"current": step_id("atomic.then-external", "External"),
                              "completed": [step_id("atomic.then-external", "WriteA")]}
    # No write before the external step: A's commit said it; then the end.
    assert commits == [{"effect", "FlowChainVO"}, {"FlowChainVO"}]
    assert await records(db) == []


async def test_a_chain_of_one_atomic_step_writes_no_record_at_all(engines, db, commits):
    await engines().run("atomic.one", {})
    assert commits == [{"effect"}]
    assert await records(db) == []


async def test_a_failing_atomic_step_commits_nothing_and_is_rolled_back(engines, db):
    with pytest.raises(FlowError) as info:
        await engines().run("atomic.mixed", {"fail_after_write": "B"})
    assert info.value.step_error.code == "TEST.1002"
    # B's write and its record rolled back with its transaction; A rolled back by the chain.
    assert await db.run(effects) == []
    assert await records(db) == []


async def test_a_crash_after_atomic_steps_is_rolled_back_from_their_record(engines, db):
    dead, survivor = engines(), engines()
    run = asyncio.ensure_future(dead.run("atomic.mixed", {"block": True}, resource_uuid=new_uuid()))
    await wait_for(lambda: running_data(dead).get("record"))
    await dead.stop()  # as a dying process leaves it: no rollback
    with pytest.raises(FlowError):
        await run
    (record,) = await records(db)
    assert record.current_step == step_id("atomic.mixed", "External")
    assert record.completed_steps == [step_id("atomic.mixed", "WriteA"), step_id("atomic.mixed", "Reader")]
    assert await db.run(effects) == ["A"]

    assert await survivor.recover(record.uuid) == FlowState.ROLLED_BACK
    assert await db.run(effects) == []
    assert await records(db) == []


async def test_an_atomic_step_of_a_chain_taken_over_commits_nothing(engines, db):
    slow, successor = engines(), engines()
    run = asyncio.ensure_future(slow.run("atomic.mixed", {"block": True}))
    await wait_for(lambda: running_data(slow).get("record"))
    (record,) = await records(db)
    # The slow MN was declared dead while the external step ran; a successor claimed the chain.
    assert await successor.store.claim([(record.uuid, slow.node.uuid)], successor.node.uuid) == [record.uuid]
    RELEASE.set()

    with pytest.raises(FlowError) as info:
        await run
    assert info.value.error.code == "SYS.1012"
    assert "was taken over by another management node" in info.value.error.details
    # B's transaction was refused with its record's update: only A's row, for the successor to undo.
    assert await db.run(effects) == ["A"]
    (row,) = await records(db)
    assert (row.owner, row.current_step) == (successor.node.uuid, step_id("atomic.mixed", "External"))


def test_vm_create_steps_that_only_touch_the_database_are_atomic():
    from mn.vm.flows import common, create

    atomic = {cls.__name__ for cls in (create.VmCreateRecordFlow, create.VmImageSelectBackupStorageFlow,
                                       common.VmAllocateHostFlow, create.VmAllocatePrimaryStorageFlow,
                                       create.VmAllocateNicFlow, create.VmCreatedFlow) if cls.atomic}
    assert len(atomic) == 6
    assert not create.VmCreateOnHypervisorFlow.atomic  # the hypervisor is outside the transaction


@pytest.mark.parametrize("step", ["WriteA", "WriteB"])  # a middle step (save) and the last (delete)
async def test_a_commit_that_loses_its_connection_after_committing_is_not_run_again(engines, db, monkeypatch,
                                                                                  step):
    import pymysql
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    real_commit, lost = Session.commit, []

    def commit(self):
        real_commit(self)
        wrote = self.info.get("lose_this_commit")
        if wrote and not lost:
            lost.append(wrote)
            raise OperationalError("COMMIT", {}, pymysql.err.OperationalError(2013, "Lost connection"))

    monkeypatch.setattr(Session, "commit", commit)
    original = getattr(__import__(M, fromlist=[step]), step).run

    async def run(self, ctx):
        # Tags the step's own transaction: the one whose COMMIT is lost.
        real_run_tx = ctx.db.run

        async def tagged(fn, *args, **kwargs):
            def tagging(session, *a, **k):
                session.info["lose_this_commit"] = self.label
                return fn(session, *a, **k)
            return await real_run_tx(tagging, *args, **kwargs)

        ctx.db.run = tagged
        try:
            await original(self, ctx)
        finally:
            del ctx.db.run

    monkeypatch.setattr(getattr(__import__(M, fromlist=[step]), step), "run", run)
    data = await engines().run("atomic.mixed", {}, resource_uuid=new_uuid())
    assert lost == [step[-1]]
    # The step ran once (its insert would have failed on its key the second
    # time), the chain ended, and its record is gone.
    assert data["ran"] == ["A", "B"]
    assert await db.run(effects) == ["A", "B"]
    assert await records(db) == []
