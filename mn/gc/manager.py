"""The GC manager: stores jobs durably and runs them until they are done.

Jobs live in ``GarbageCollectorVO``. Every MN runs a manager; a job is run
by the MN that owns its uuid on the ring, so when an MN dies its jobs move
with the ring to the survivors. Running a job:

* **claim** with compare-and-set (``Idle -> Processing``, ``managementNodeUuid
  = me``), so two MNs never run one job, even while their rings disagree;
* **collect** with a fresh runner instance;
* on success mark it **Done** (purged after ``keep_done`` seconds); on failure
  put it back to **Idle** with ``nextRunDate`` pushed by the runner's
  doubling delay.

What makes a job run: the timer (``interval``) for due jobs, a submit with
no delay, and the bus events its runner class names (for matching jobs, due
or not: a reconnected host is worth trying at once). An event that arrives
while the job runs makes a failed run retry at once instead of backing off.

Orphans: a Processing job whose MN row is gone (ManagementNodeVO's delete
clears ``managementNodeUuid`` by foreign key, or the MN stopped) goes back
to Idle at the next tick of any MN, and its new owner runs it. A stopping
manager releases its running jobs itself. A runner class this MN cannot
import is logged and the job kept, retried at the longest delay.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any, Callable

from sqlalchemy import delete, or_, select, update

from mn.bus import Event
from mn.db.models.garbage_collector import GarbageCollectorType, GarbageCollectorVO, GCStatus
from mn.db.models.management_node import ManagementNodeVO
from mn.db.types import utcnow
from mn.errors import OperationError, SysErrors
from mn.gc.collector import GarbageCollector, GCContext, resolve_runner, runner_name
from mn.ids import new_uuid
from mn.ring import EmptyRingError

log = logging.getLogger(__name__)

#: Seconds between two timer passes.
DEFAULT_INTERVAL = 5.0
#: Jobs one MN runs at the same time.
DEFAULT_PARALLELISM = 16
#: Seconds a Done job stays visible before it is purged (0: purge at once).
DEFAULT_KEEP_DONE = 86400.0
#: Due jobs one timer pass looks at.
SCAN_LIMIT = 1000
#: Longest lastError kept, in characters.
ERROR_KEPT = 4000

_IDLE, _PROCESSING, _DONE = GCStatus.Idle.value, GCStatus.Processing.value, GCStatus.Done.value


def _invalid(details: str) -> OperationError:
    return OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR, details)


class GCManager:
    """Garbage collection jobs of one MN: ``submit``, then the timer and events do the rest.

    ``node`` provides ``uuid``, ``db``, ``bus``, ``ring`` and optionally
    ``membership``; they are read when used, so the manager can be created
    before the node starts. ``start()`` needs the node on the ring.
    """

    def __init__(self, node: Any, *, interval: float = DEFAULT_INTERVAL,
                 parallelism: int = DEFAULT_PARALLELISM, keep_done: float = DEFAULT_KEEP_DONE):
        self.node = node
        self.interval = interval
        self.keep_done = keep_done
        self._slots = asyncio.Semaphore(parallelism)
        self._running: dict[str, asyncio.Task] = {}
        # Jobs a matching event hit while they ran: a failure retries at once.
        self._retrigger: set[str] = set()
        self._watched: set[str] = set()
        self._event_runners: dict[str, list[type[GarbageCollector]]] = {}
        self._unsubscribe: list[Callable[[], None]] = []
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task | None = None
        self._started = False
        self._stopped = False

    # -- life cycle -------------------------------------------------------------

    async def start(self) -> None:
        """Release orphans, watch the runners of stored jobs, start the timer."""
        self._started = True
        membership = getattr(self.node, "membership", None)
        if membership is not None:
            # A node left: its jobs are ours now and its orphans can be freed.
            membership.on_node_left(lambda _uuid: self._wake.set())
        await self.tick()
        self._loop_task = asyncio.create_task(self._timer(), name=f"gc-{self.node.uuid[:8]}")

    async def stop(self) -> None:
        """Stop the timer and running jobs; jobs still running go back to Idle for others."""
        self._stopped = True
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        jobs = list(self._running.values())
        tasks = jobs + ([self._loop_task] if self._loop_task is not None else [])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Without start(), jobs run only if submit() started them.
        if self._started or jobs:
            try:
                released = await self.node.db.run(self._release_mine)
                if released:
                    log.info("gc: released %d running job(s) on stop", released)
            except Exception as exc:  # others free them once our MN row is gone
                log.warning("gc: could not release running jobs: %s", exc)

    # -- public API -------------------------------------------------------------

    def register(self, runner_cls: type[GarbageCollector]) -> None:
        """Check a runner class and subscribe to its trigger events (``submit`` does it too)."""
        if not (isinstance(runner_cls, type) and issubclass(runner_cls, GarbageCollector)):
            raise _invalid(f"{runner_cls!r} is not a GarbageCollector subclass")
        name = runner_name(runner_cls)
        try:
            stored = resolve_runner(name)
        except LookupError:
            stored = None
        if stored is not runner_cls:
            raise _invalid(f"{name} cannot be found again by its name: "
                           f"a runner class must be defined at module level")
        for event_cls in runner_cls.TRIGGER_EVENTS:
            if not (isinstance(event_cls, type) and issubclass(event_cls, Event)):
                raise _invalid(f"{name}.TRIGGER_EVENTS holds {event_cls!r}, which is not a bus Event class")
        self._watch(runner_cls)

    async def submit(self, runner_cls: type[GarbageCollector], context: dict[str, Any], *,
                     name: str | None = None, delay: float | None = None) -> str:
        """Store a job and return its uuid; it first runs after ``delay`` seconds
        (default: the runner's RETRY_INTERVAL, since the caller has just failed)."""
        job = self.new_job(runner_cls, context, name=name, delay=delay)
        await self.node.db.run(lambda session: session.add(job))
        log.debug("gc: job %s (%s) submitted", job.uuid, job.name)
        if job.nextRunDate <= job.createDate and self._owns(job.uuid):
            self._spawn(job.uuid)
        return job.uuid

    def submit_in_session(self, session, runner_cls: type[GarbageCollector], context: dict[str, Any], *,
                          name: str | None = None, delay: float = 0.0) -> str:
        """Store a job in the caller's transaction: it exists exactly when what
        the caller changes is committed (a deleted row and the cleanup of what
        it stood for). It runs from the next tick on; returns its uuid."""
        job = self.new_job(runner_cls, context, name=name, delay=delay)
        session.add(job)
        return job.uuid

    def new_job(self, runner_cls: type[GarbageCollector], context: dict[str, Any], *,
                name: str | None = None, delay: float | None = None) -> GarbageCollectorVO:
        """A checked, unsaved job row."""
        self.register(runner_cls)
        return job_row(runner_cls, context, name=name, delay=delay)


    async def tick(self) -> int:
        """One timer pass; returns how many jobs it started."""
        due, runners = await self.node.db.run(self._scan, utcnow())
        for name in runners - self._watched:
            try:
                self._watch(resolve_runner(name))
            except LookupError:
                pass  # reported when one of its jobs runs
        started = 0
        for uuid in due:
            if self._owns(uuid) and self._spawn(uuid):
                started += 1
        return started

    # -- the timer --------------------------------------------------------------

    async def _timer(self) -> None:
        while not self._stopped:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.tick()
            except Exception as exc:  # the database may be away; try again next time
                log.warning("gc: timer pass failed: %s", exc)

    def _scan(self, session, now) -> tuple[list[str], set[str]]:
        live_nodes = select(ManagementNodeVO.uuid)
        orphans = session.execute(
            update(GarbageCollectorVO)
            .where(GarbageCollectorVO.status == _PROCESSING,
                   or_(GarbageCollectorVO.managementNodeUuid.is_(None),
                       GarbageCollectorVO.managementNodeUuid.not_in(live_nodes)))
            .values(status=_IDLE, managementNodeUuid=None, lastOpDate=now)).rowcount
        if orphans:
            log.info("gc: %d job(s) of departed management nodes are idle again", orphans)
        if self.keep_done > 0:
            session.execute(delete(GarbageCollectorVO).where(
                GarbageCollectorVO.status == _DONE,
                GarbageCollectorVO.lastOpDate < now - timedelta(seconds=self.keep_done)))
        due = list(session.scalars(
            select(GarbageCollectorVO.uuid)
            .where(GarbageCollectorVO.status == _IDLE, GarbageCollectorVO.nextRunDate <= now)
            .order_by(GarbageCollectorVO.nextRunDate).limit(SCAN_LIMIT)))
        runners = set(session.scalars(
            select(GarbageCollectorVO.runnerClass).distinct().where(GarbageCollectorVO.status != _DONE)))
        return due, runners

    def _release_mine(self, session) -> int:
        return session.execute(
            update(GarbageCollectorVO)
            .where(GarbageCollectorVO.managementNodeUuid == self.node.uuid,
                   GarbageCollectorVO.status == _PROCESSING)
            .values(status=_IDLE, managementNodeUuid=None, lastOpDate=utcnow())).rowcount

    # -- events -----------------------------------------------------------------

    def _watch(self, runner_cls: type[GarbageCollector]) -> None:
        name = runner_name(runner_cls)
        if name in self._watched:
            return
        self._watched.add(name)
        for event_cls in runner_cls.TRIGGER_EVENTS:
            runners = self._event_runners.setdefault(event_cls.TYPE, [])
            if not runners and not self._stopped:
                self._unsubscribe.append(self.node.bus.subscribe(event_cls, self._on_event))
            runners.append(runner_cls)

    def _on_event(self, event: Event):
        if self._stopped:
            return None
        return self._triggered(event)

    async def _triggered(self, event: Event) -> None:
        runners = {runner_name(cls): cls for cls in self._event_runners.get(event.TYPE, ())}

        def waiting_jobs(session):
            return session.execute(
                select(GarbageCollectorVO.uuid, GarbageCollectorVO.runnerClass, GarbageCollectorVO.context,
                       GarbageCollectorVO.status)
                .where(GarbageCollectorVO.runnerClass.in_(list(runners)),
                       GarbageCollectorVO.status.in_((_IDLE, _PROCESSING)))).all()

        for uuid, runner, context, status in await self.node.db.run(waiting_jobs):
            if not self._owns(uuid):
                continue
            try:
                if not runners[runner]().event_matches(event, json.loads(context)):
                    continue
            except Exception:
                log.exception("gc: %s.event_matches failed for job %s", runner, uuid)
                continue
            if uuid in self._running:
                self._retrigger.add(uuid)
            elif status == _IDLE:
                log.debug("gc: %s triggers job %s", event.TYPE, uuid)
                self._spawn(uuid, event)

    # -- running one job ----------------------------------------------------------

    def _owns(self, uuid: str) -> bool:
        try:
            return self.node.ring.owner(uuid) == self.node.uuid
        except EmptyRingError:
            return False

    def _spawn(self, uuid: str, trigger: Event | None = None) -> bool:
        if self._stopped or uuid in self._running:
            return False
        task = asyncio.create_task(self._run(uuid, trigger), name=f"gc-job-{uuid}")
        self._running[uuid] = task
        task.add_done_callback(lambda _t: self._running.pop(uuid, None))
        return True

    def _claim(self, session, uuid: str):
        claimed = session.execute(
            update(GarbageCollectorVO)
            .where(GarbageCollectorVO.uuid == uuid, GarbageCollectorVO.status == _IDLE)
            .values(status=_PROCESSING, managementNodeUuid=self.node.uuid, lastOpDate=utcnow())).rowcount
        if claimed != 1:
            return None
        return session.execute(
            select(GarbageCollectorVO.name, GarbageCollectorVO.runnerClass, GarbageCollectorVO.context,
                   GarbageCollectorVO.retries).where(GarbageCollectorVO.uuid == uuid)).one()

    async def _run(self, uuid: str, trigger: Event | None) -> None:
        async with self._slots:
            try:
                job = await self.node.db.run(self._claim, uuid)
            except Exception as exc:
                log.warning("gc: could not claim job %s: %s", uuid, exc)
                return
            if job is None:
                return  # another MN (or run) has it, or it is done
            self._retrigger.discard(uuid)
            name, runner, context, retries = job
            try:
                runner_cls = resolve_runner(runner)
                args = json.loads(context)
            except (LookupError, ValueError) as exc:
                log.error("gc: job %s (%s) cannot run here: %s", uuid, name, exc)
                await self._finish(uuid, f"{type(exc).__name__}: {exc}", GarbageCollector.MAX_RETRY_INTERVAL)
                return
            ctx = GCContext(node=self.node, uuid=uuid, name=name, retries=retries, trigger=trigger)
            try:
                await asyncio.wait_for(runner_cls().collect(ctx, args), runner_cls.TIMEOUT)
            except asyncio.CancelledError:
                raise  # stopping: stop() releases the job
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                delay = 0.0 if uuid in self._retrigger else runner_cls.retry_delay(retries + 1)
                log.info("gc: job %s (%s) failed (%s); retry in %gs", uuid, name, reason, delay)
                await self._finish(uuid, reason, delay)
            else:
                log.info("gc: job %s (%s) is done", uuid, name)
                await self._finish(uuid, None, None)

    async def _finish(self, uuid: str, failure: str | None, delay: float | None) -> None:
        """Done (``failure`` None) or back to Idle after ``delay`` seconds."""
        now = utcnow()
        mine = (GarbageCollectorVO.uuid == uuid, GarbageCollectorVO.status == _PROCESSING,
                GarbageCollectorVO.managementNodeUuid == self.node.uuid)

        def record(session) -> int:
            if failure is None and self.keep_done <= 0:
                return session.execute(delete(GarbageCollectorVO).where(*mine)).rowcount
            if failure is None:
                values = dict(status=_DONE, lastError=None)
            else:
                values = dict(status=_IDLE, retries=GarbageCollectorVO.retries + 1,
                              nextRunDate=now + timedelta(seconds=delay), lastError=failure[:ERROR_KEPT])
            return session.execute(update(GarbageCollectorVO).where(*mine).values(lastOpDate=now, **values)).rowcount

        try:
            recorded = await self.node.db.run(record)
        except Exception as exc:
            # The row stays Processing under our uuid: it runs again once we
            # are gone (the work itself is idempotent).
            log.warning("gc: could not record the end of job %s: %s", uuid, exc)
            return
        if not recorded:
            log.warning("gc: job %s was taken from this node while it ran", uuid)
        elif failure is not None and delay == 0:
            self._wake.set()


def job_row(runner_cls: type[GarbageCollector], context: dict[str, Any], *, name: str | None = None,
            delay: float | None = None) -> GarbageCollectorVO:
    """An unsaved job row; code that has a session but no MN at hand adds it to
    its transaction (the runner class must be registered by its service at start,
    for its trigger events to be watched)."""
    if not isinstance(context, dict):
        raise _invalid(f"a GC job context must be a dict, not {type(context).__name__}")
    try:
        context_json = json.dumps(context)
    except (TypeError, ValueError) as exc:
        raise _invalid(f"the context of a {runner_cls.__name__} job is not JSON: {exc}") from None
    name = name or runner_cls.NAME or runner_cls.__name__
    if len(name) > 255:
        raise _invalid("a GC job name has at most 255 characters")
    delay = runner_cls.RETRY_INTERVAL if delay is None else delay
    if delay < 0:
        raise _invalid(f"a GC job delay cannot be negative ({delay})")
    now = utcnow()
    return GarbageCollectorVO(
        uuid=new_uuid(), name=name, runnerClass=runner_name(runner_cls), context=context_json,
        status=_IDLE, retries=0, nextRunDate=now + timedelta(seconds=delay), createDate=now,
        lastOpDate=now, type=(GarbageCollectorType.EventBased if runner_cls.TRIGGER_EVENTS
                              else GarbageCollectorType.TimeBased).value)
