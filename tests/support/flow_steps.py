"""Steps, handlers, a plugin and a service for the flow chain tests.

Every step writes what it does to a journal file named by
``ctx.data["journal"]``, one ``<event> <label> <node uuid>`` line per
event, so a test can see runs and rollbacks done by several MN processes
(the journal survives a ``kill -9``). The data map steers failures:
``fail_at`` / ``crash_at`` name the step that raises an OperationError /
a RuntimeError, ``rollback_fail_at`` the one whose rollback raises.

The chains using them are in ``tests/support/flows/``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import ClassVar


from mn.bus import Message, Reply
from mn.db.models.flow_chain import FlowChainVO
from mn.errors import ErrorCode, OperationError
from mn.flow import Flow, FlowContext, FlowError, FlowExtension, FlowHandler
from mn.service import Service, handles

#: ``tests/support/flows``: give it to load_flows() or ZSTACK_FLOW_DIRS.
FLOW_DIR = Path(__file__).resolve().parent / "flows"
SPEC = "tests.support.flow_steps:FlowTestService"
#: Code of the error a step raises when ``data["fail_at"]`` names it.
STEP_ERROR = "TEST.1001"


def write_journal(ctx: FlowContext, event: str, label: str) -> None:
    path = ctx.data.get("journal")
    if path:
        with open(path, "a") as journal:
            journal.write(f"{event} {label} {ctx.node.uuid}\n")


def read_journal(path: Path) -> list[tuple[str, str, str]]:
    """``(event, label, node uuid)`` per line; empty when nothing was written yet."""
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return []
    return [tuple(line.split(" ", 2)) for line in lines if line]


def events(path: Path, node: bool = False) -> list[str]:
    """The journal as ``"run StepA"`` strings (with `` @<node>`` when asked)."""
    return [f"{e} {label}" + (f" @{n}" if node else "") for e, label, n in read_journal(path)]


class JournalStep(Flow):
    """Journals its run and rollback; fails when the data map says so."""

    label: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.label = cls.__name__

    async def run(self, ctx: FlowContext) -> None:
        write_journal(ctx, "run", self.label)
        ctx.data.setdefault("ran", []).append(self.label)
        if ctx.data.get("fail_at") == self.label:
            raise OperationError(ErrorCode(STEP_ERROR, "a test step failed", f"{self.label} failed as asked"))
        if ctx.data.get("crash_at") == self.label:
            raise RuntimeError(f"{self.label} crashed as asked")

    async def rollback(self, ctx: FlowContext) -> None:
        write_journal(ctx, "rollback", self.label)
        if ctx.data.get("rollback_fail_at") == self.label:
            raise RuntimeError(f"rollback of {self.label} broke as asked")


class StepA(JournalStep):
    pass


class StepB(JournalStep):
    pass


class StepC(JournalStep):
    pass


class StepD(JournalStep):
    pass


class StepE(JournalStep):
    pass


class SkipStep(JournalStep):
    """Skipped by its own skip() when ``data["skip_by_method"]`` is true."""

    def skip(self, ctx: FlowContext) -> bool:
        return bool(ctx.data.get("skip_by_method"))


class NoRollbackStep(JournalStep):
    """Declares in its class that it cannot be rolled back."""

    rollbackable = False


class BlockStep(JournalStep):
    """Waits ``data["block_seconds"]`` after journaling its run: a chain to kill mid-way.

    Run again by an MN that took the chain over (a resumable chain), it
    does not wait.
    """

    async def run(self, ctx: FlowContext) -> None:
        await super().run(ctx)
        if not ctx.recovered:
            await asyncio.sleep(float(ctx.data.get("block_seconds", 0)))


class PluginStep(JournalStep):
    """Inserted by the test plugin's entry point, never named in XML."""


class UnserialisableStep(JournalStep):
    """Puts a value JSON cannot hold into the data map."""

    async def run(self, ctx: FlowContext) -> None:
        await super().run(ctx)
        ctx.data["handle"] = object()

    async def rollback(self, ctx: FlowContext) -> None:
        await super().rollback(ctx)
        ctx.data.pop("handle", None)


class ProbeStep(JournalStep):
    """Copies its chain's durable record, as this step sees it, into ``data["snapshots"]``."""

    async def run(self, ctx: FlowContext) -> None:
        def read(session):
            vo = session.get(FlowChainVO, ctx.record_uuid)
            return {"state": vo.state, "owner": vo.managementNodeUuid, "current": vo.currentStep,
                    "completed": json.loads(vo.completedSteps), "data": json.loads(vo.data)}

        snapshot = await ctx.node.db.run(read)
        ctx.data.setdefault("snapshots", []).append(snapshot)
        await super().run(ctx)


class NotAStep:
    """Referenced by a bad chain: a class that is no Flow."""


class JournalDone(FlowHandler):
    async def handle(self, ctx: FlowContext) -> None:
        write_journal(ctx, "done", ctx.chain)


class JournalError(FlowHandler):
    async def handle(self, ctx: FlowContext) -> None:
        write_journal(ctx, "error", ctx.error.code)


class JournalFinally(FlowHandler):
    async def handle(self, ctx: FlowContext) -> None:
        write_journal(ctx, "finally", ctx.chain)


class BrokenHandler(FlowHandler):
    async def handle(self, ctx: FlowContext) -> None:
        raise RuntimeError("handler broke as asked")


class FlowTestNode:
    """The part of a ManagementNode the engine uses, for unit tests."""

    def __init__(self, db, uuid: str, ring):
        self.db = db
        self.uuid = uuid
        self.ring = ring
        self.bus = None


# -- the test plugin ---------------------------------------------------------------

#: Objects of the test plugin's entry points (see write_plugin_distribution).
FEATURES_PLUGIN = FlowExtension(chain="test.features", point="plugins", step=PluginStep)
DURABLE_PLUGIN = [FlowExtension(chain="test.durable", point="before-end",
                                step="tests.support.flow_steps:PluginStep")]


def write_plugin_distribution(site: Path, entry_points: dict[str, str],
                              name: str = "zstack_flow_test_plugin") -> Path:
    """Install a distribution the way pip does, minus the code: a ``*.dist-info``.

    With ``site`` on ``sys.path`` (or PYTHONPATH), ``importlib.metadata``
    finds its ``zstack.flow_extensions`` entry points, ``name = value``.
    """
    dist_info = site / f"{name}-1.0.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
    (dist_info / "entry_points.txt").write_text(f"[zstack.flow_extensions]\n{lines}")
    return dist_info


# -- a service that runs chains in MN processes ----------------------------------------

SERVICE_ID = "test.flow"


class FlowTestRunMsg(Message):
    """Run ``chain`` on the receiving MN; with ``wait`` false, reply as soon as it started."""

    SERVICE = SERVICE_ID
    chain: str
    resourceUuid: str
    data: dict = {}
    wait: bool = True


class FlowTestRunReply(Reply):
    nodeUuid: str = ""
    data: dict = {}


class FlowTestService(Service):
    SERVICE_ID = SERVICE_ID

    def __init__(self, node):
        super().__init__(node)
        self._background: set[asyncio.Task] = set()

    @handles(FlowTestRunMsg)
    async def run_chain(self, msg: FlowTestRunMsg) -> FlowTestRunReply:
        run = self.node.flows.run(msg.chain, msg.data, resource_uuid=msg.resourceUuid,
                                  resource_type="FlowTestVO")
        if not msg.wait:
            task = asyncio.create_task(self._quietly(run))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return FlowTestRunReply(nodeUuid=self.node.uuid)
        return FlowTestRunReply(nodeUuid=self.node.uuid, data=await run)

    @staticmethod
    async def _quietly(run) -> None:
        try:
            await run
        except FlowError:
            pass  # the journal and the log tell the test what happened
