"""GC runner classes for tests; module level, so a manager finds them by name.

Runners keep no state, so what they do is steered and recorded here, keyed
by the job's context and uuid: every run appends a :class:`Run` to ``RUNS``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete

from mn.bus import CloudBus, Event
from mn.db import Database
from mn.db.models import ManagementNodeVO
from mn.gc import GarbageCollector, GCContext
from mn.ids import new_uuid
from mn.ring import Ring


class SampleHostReconnectedEvent(Event):
    """A host came back: jobs waiting for it may succeed now."""

    TYPE = "test.gc.SampleHostReconnectedEvent"
    hostUuid: str


@dataclass
class Run:
    job: str
    node: str
    retries: int
    trigger: str | None
    at: float


RUNS: list[Run] = []
#: Hosts that are "connected": HostCleanupGC succeeds for them.
CONNECTED: set[str] = set()
#: Released to let the BlockingGC runs finish (created per test).
GATES: dict[str, asyncio.Event] = {}


def reset() -> None:
    RUNS.clear()
    CONNECTED.clear()
    GATES.clear()


def runs_of(job: str) -> list[Run]:
    return [run for run in RUNS if run.job == job]


def _record(ctx: GCContext) -> None:
    RUNS.append(Run(ctx.uuid, ctx.node.uuid, ctx.retries,
                    ctx.trigger.TYPE if ctx.trigger is not None else None, time.monotonic()))


class FlakyGC(GarbageCollector):
    """Fails ``context["failures"]`` times, then succeeds; retries fast."""

    RETRY_INTERVAL = 0.05
    MAX_RETRY_INTERVAL = 1.0

    async def collect(self, ctx: GCContext, context: dict[str, Any]) -> None:
        _record(ctx)
        if ctx.retries < context["failures"]:
            raise RuntimeError(f"attempt {ctx.retries + 1} failed")


class PatientFlakyGC(FlakyGC):
    """FlakyGC with retries slow enough to stop its manager in between."""

    RETRY_INTERVAL = 0.3


class CountingGC(GarbageCollector):
    """Succeeds after a short pause: wide enough for two managers to collide."""

    async def collect(self, ctx: GCContext, context: dict[str, Any]) -> None:
        _record(ctx)
        await asyncio.sleep(0.01)


class HostCleanupGC(GarbageCollector):
    """Succeeds only once its host is connected; the timer alone would wait an hour."""

    NAME = "delete-volume-on-host"
    TRIGGER_EVENTS = (SampleHostReconnectedEvent,)
    RETRY_INTERVAL = 3600.0

    def event_matches(self, event: Event, context: dict[str, Any]) -> bool:
        return event.hostUuid == context["hostUuid"]

    async def collect(self, ctx: GCContext, context: dict[str, Any]) -> None:
        _record(ctx)
        # Whether the host answers is decided when the attempt starts; a
        # gate, if any, holds the attempt open after that.
        connected = context["hostUuid"] in CONNECTED
        gate = GATES.get(context["hostUuid"])
        if gate is not None:
            await gate.wait()
        if not connected:
            raise ConnectionError(f"host {context['hostUuid']} is disconnected")


class BlockingGC(GarbageCollector):
    """Waits for ``GATES[context["gate"]]``; with a short TIMEOUT in TimeoutGC."""

    RETRY_INTERVAL = 0.05

    async def collect(self, ctx: GCContext, context: dict[str, Any]) -> None:
        _record(ctx)
        await GATES.setdefault(context["gate"], asyncio.Event()).wait()


class TimeoutGC(BlockingGC):
    TIMEOUT = 0.05
    RETRY_INTERVAL = 3600.0


class NotARunner:
    """Importable, but not a GarbageCollector."""


class FakeNode:
    """What a GCManager uses of a ManagementNode: uuid, db, bus, ring (no membership).

    ``start`` inserts its ManagementNodeVO row (jobs refer to it) and starts
    its bus; its ring holds itself and ``ring_nodes``.
    """

    def __init__(self, db: Database, bus_url: str, ring_nodes: tuple[str, ...] = ()):
        self.uuid = new_uuid()
        self.db = db
        self.ring = Ring([self.uuid, *ring_nodes])
        self.bus = CloudBus(bus_url, self.uuid, self.ring)
        self.membership = None

    async def start(self) -> None:
        await self.db.run(lambda s: s.add(ManagementNodeVO(uuid=self.uuid, hostName="127.0.0.1", port=8080)))
        await self.bus.start()

    async def stop(self) -> None:
        await self.bus.stop(delete_inbox=True)
        await self.db.run(lambda s: s.execute(delete(ManagementNodeVO).where(ManagementNodeVO.uuid == self.uuid)))
