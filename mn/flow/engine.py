"""Running chains: forward, rollback, handlers, durable progress and take-over.

``FlowEngine.run()`` runs a chain's steps in order. When a step fails (it
raises), the engine rolls back that step and every completed one, newest
first, logging and passing over rollbacks that fail; then it runs the
error and finally handlers and raises :class:`~mn.flow.errors.FlowError`.
When all steps succeed it runs the done and finally handlers and returns
the data map.

A durable run (the default) keeps its progress in ``FlowChainVO`` (see
``persistence.py``). When an MN dies, each survivor claims the unfinished
records of the dead MN whose resource the ring now gives it (compare-and-set
on the owner, so exactly one wins) and ends them from the record: it rolls
back the step that was running and the completed ones, or, for a chain
declared ``resumable="true"``, continues from the next step. A record with
a rollback under way always continues its rollback.

Each run executes in its own task: a caller that stops waiting (a
cancelled request) does not leave a chain half-done. Only stopping the MN
cancels chains, and their records then let a peer end them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
from typing import TYPE_CHECKING, Any, Coroutine, Iterable

from mn.db.engine import after_commit, commit_probe
from mn.errors import ErrorCode, OperationError, SysErrors, error
from mn.flow.base import Flow, FlowContext
from mn.flow.definition import Chain, HandlerKind, Step
from mn.flow.errors import FlowError
from mn.flow.persistence import FlowRecord, FlowState, FlowStore
from mn.flow.registry import FlowRegistry
from mn.ids import new_uuid

if TYPE_CHECKING:
    from mn.node import ManagementNode

log = logging.getLogger(__name__)


class _TakenOver(Exception):
    """Our compare-and-set on the record failed: another MN owns the chain now."""


class FlowEngine:
    """Runs the chains of a :class:`FlowRegistry` on one MN.

    ``node`` needs ``uuid``, ``db`` and ``ring`` (steps may use more of it
    through ``ctx.node``).
    """

    def __init__(self, node: "ManagementNode | Any", registry: FlowRegistry, *,
                 store: FlowStore | None = None):
        self.node = node
        self.registry = registry
        self.store = store if store is not None else FlowStore(node.db)
        self._tasks: set[asyncio.Task] = set()
        #: record uuid -> execution running here, so recover() cannot run one twice.
        self._running: dict[str, "ChainExecution"] = {}
        self._stopping = False

    # -- running -------------------------------------------------------------------

    async def run(self, chain_name: str, data: dict[str, Any] | None = None, *,
                  resource_uuid: str | None = None, resource_type: str | None = None,
                  durable: bool = True) -> dict[str, Any]:
        """Run chain ``chain_name`` with a copy of ``data``; return the final data map.

        Raises OperationError (SYS.1007) for an unknown chain or, when
        durable, data that is not JSON-serialisable; FlowError when a step
        failed (after the rollback). ``resource_uuid`` decides which MN takes
        the chain over if this one dies (its owner on the ring).
        """
        self._check_serving()
        chain = self.registry.get(chain_name)
        data = dict(data or {})
        if durable:
            try:
                json.dumps(data)
            except (TypeError, ValueError) as exc:
                raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                        f"data of durable flow chain {chain.name} must be "
                                        f"JSON-serialisable: {exc}") from None
        record = FlowRecord(uuid=new_uuid(), chain_name=chain.name, owner=self.node.uuid,
                            resource_uuid=resource_uuid, resource_type=resource_type, data=data)
        ctx = FlowContext(node=self.node, chain=chain.name, data=data,
                          record_uuid=record.uuid if durable else None,
                          resource_uuid=resource_uuid, resource_type=resource_type)
        execution = ChainExecution(self, chain, ctx, record, durable=durable)
        return await self._await(self._spawn(execution.start(), record.uuid, execution), chain.name)

    # -- taking over -----------------------------------------------------------------

    async def recover(self, record_uuid: str) -> str:
        """End the chain of record ``record_uuid`` here; return how it ended.

        The record is claimed from its owner first (compare-and-set), so
        call this only for a chain whose MN is gone (:meth:`take_over` does
        it for every such chain), or to retry a ``Failed`` record once the
        code can map it (it is then rolled back). Returns
        ``FlowState.ROLLED_BACK``, ``FlowState.DONE`` (a resumable chain
        finished) or ``FlowState.FAILED`` (the record does not match this code).
        """
        self._check_serving()
        if record_uuid in self._running:
            raise OperationError.of(SysErrors.OPERATION_ERROR,
                                    f"flow chain record {record_uuid} is running on this management node")
        record = await self.store.load(record_uuid)
        if record is None:
            raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND, f"no flow chain record {record_uuid}")
        previous = record.owner
        if previous != self.node.uuid:
            if not await self.store.claim([(record.uuid, previous)], self.node.uuid):
                raise OperationError.of(SysErrors.OPERATION_ERROR,
                                        f"flow chain record {record_uuid} was claimed by another "
                                        f"management node meanwhile")
            record.owner = self.node.uuid
        return await self._await(self._spawn(self._recover(record, previous), record.uuid), record.chain_name)

    async def take_over(self, dead_node_uuid: str | None = None) -> dict[str, str]:
        """Claim and end the unfinished chains of a dead MN that the ring gives us.

        Considers the records of ``dead_node_uuid`` and of every MN that has
        no membership row any more (all of them when ``dead_node_uuid`` is
        None, as at start-up); claims those whose resource this MN owns on
        the ring, and ends them concurrently. Returns record uuid -> outcome
        (a FlowState value, or the error for a recovery that broke).
        """
        me = self.node.uuid
        orphans = [o for o in await self.store.orphans(dead_node_uuid)
                   if o.owner != me and self.node.ring.owner(o.ring_key) == me]
        if not orphans:
            return {}
        previous = {o.uuid: o.owner for o in orphans}
        won = await self.store.claim([(o.uuid, o.owner) for o in orphans], me)
        if won:
            log.info("taking over %d flow chain(s) of management node(s) %s", len(won),
                     ", ".join(sorted({previous[u] for u in won})))
        results = await asyncio.gather(*(self._recover_claimed(uuid, previous[uuid]) for uuid in won),
                                       return_exceptions=True)
        outcomes = {}
        for uuid, result in zip(won, results):
            if isinstance(result, BaseException):
                log.error("could not end flow chain record %s: %s", uuid, result)
                outcomes[uuid] = str(result)
            else:
                outcomes[uuid] = result
        return outcomes

    def on_node_left(self, node_uuid: str) -> None:
        """Membership listener: take over in the background (never block heartbeats)."""
        if not self._stopping:
            self._spawn(self._take_over_logged(node_uuid))

    # -- life cycle --------------------------------------------------------------------

    def start(self) -> None:
        """Adopt, in the background, chains whose MN vanished while none was watching."""
        self._spawn(self._take_over_logged(None))

    async def stop(self) -> None:
        """Cancel running chains without rolling them back: their records stay for a peer."""
        self._stopping = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- internals ------------------------------------------------------------------------

    def _check_serving(self) -> None:
        if self._stopping:
            raise OperationError.of(SysErrors.MANAGEMENT_NODE_UNAVAILABLE_ERROR,
                                    f"management node {self.node.uuid} is stopping")

    def _spawn(self, coro: Coroutine, record_uuid: str | None = None,
               execution: "ChainExecution | None" = None) -> asyncio.Task:
        task = asyncio.create_task(coro, name=f"flow {record_uuid or 'take-over'}")
        self._tasks.add(task)
        if record_uuid is not None and execution is not None:
            self._running[record_uuid] = execution

        def done(finished: asyncio.Task) -> None:
            self._tasks.discard(finished)
            if record_uuid is not None and self._running.get(record_uuid) is execution:
                self._running.pop(record_uuid, None)
            if not finished.cancelled():
                finished.exception()  # its waiter may have gone; the chain logged it

        task.add_done_callback(done)
        return task

    async def _await(self, task: asyncio.Task, chain_name: str):
        try:
            # shield: a caller that stops waiting does not stop the chain.
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled() and self._stopping:
                raise FlowError(error(SysErrors.MANAGEMENT_NODE_UNAVAILABLE_ERROR,
                                      f"management node {self.node.uuid} stopped while flow chain "
                                      f"{chain_name} ran; a peer will end it from its record"),
                                chain=chain_name) from None
            raise

    async def _take_over_logged(self, node_uuid: str | None) -> None:
        try:
            await self.take_over(node_uuid)
        except Exception:
            log.exception("taking over the flow chains of %s failed", node_uuid or "vanished nodes")

    async def _recover_claimed(self, record_uuid: str, previous_owner: str) -> str:
        record = await self.store.load(record_uuid)
        if record is None or record.owner != self.node.uuid:
            return "gone"
        return await self._await(self._spawn(self._recover(record, previous_owner), record.uuid),
                                 record.chain_name)

    async def _recover(self, record: FlowRecord, previous_owner: str) -> str:
        chain = self.registry.find(record.chain_name)
        problem = _mismatch(chain, record)
        if problem:
            log.error("flow chain record %s cannot be ended by this management node: %s; "
                      "marked %s for an operator", record.uuid, problem, FlowState.FAILED)
            await self.store.set_state(record, FlowState.FAILED)
            return FlowState.FAILED
        ctx = FlowContext(node=self.node, chain=chain.name, data=record.data, record_uuid=record.uuid,
                          resource_uuid=record.resource_uuid, resource_type=record.resource_type,
                          error=record.error, recovered=True)
        execution = ChainExecution(self, chain, ctx, record, durable=True, inserted=True)
        self._running[record.uuid] = execution
        try:
            return await execution.recover(previous_owner)
        finally:
            self._running.pop(record.uuid, None)


def _always_runs(step: Step) -> bool:
    """Whether ``step`` runs whatever the data map says (no condition, no skip())."""
    return not step.when and not step.unless and step.cls.skip is Flow.skip


def _mismatch(chain: Chain | None, record: FlowRecord) -> str | None:
    if chain is None:
        return f"no flow chain is named {record.chain_name!r}"
    known = {step.id for step in chain.steps}
    unknown = [s for s in [*record.completed_steps, record.current_step] if s is not None and s not in known]
    if unknown:
        return f"chain {chain.name} has no step {unknown[0]!r}"
    return None


class _StepFailed(Exception):
    def __init__(self, step_id: str, err: ErrorCode):
        self.step_id = step_id
        self.error = err


def _step_error(exc: Exception, chain: str, step_id: str) -> ErrorCode:
    """The ErrorCode of a failed step: its own for an OperationError, SYS.1000 otherwise."""
    if isinstance(exc, OperationError):
        return exc.error
    log.error("step %s of flow chain %s raised %s", step_id, chain, type(exc).__name__, exc_info=exc)
    return error(SysErrors.INTERNAL, str(exc) or type(exc).__name__)


class ChainExecution:
    """One run of one chain, from its start or from a record."""

    def __init__(self, engine: FlowEngine, chain: Chain, ctx: FlowContext, record: FlowRecord, *,
                 durable: bool, inserted: bool = False):
        self.engine = engine
        self.store = engine.store
        self.chain = chain
        self.ctx = ctx
        self.record = record
        self.durable = durable
        self.inserted = inserted
        self._flows: dict[int, Flow] = {}
        self._data_json = json.dumps(ctx.data) if durable else ""
        #: What the record in the database says, as _snapshot() gives it (None:
        #: unknown); a write that would not change it is skipped.
        self._persisted: tuple | None = None
        #: An atomic last step deleted the record with its own commit.
        self._deleted = False

    # -- entry points -------------------------------------------------------------

    async def start(self) -> dict[str, Any]:
        try:
            return await self._forward(0)
        except _TakenOver:
            raise self._taken_over_error() from None

    async def recover(self, previous_owner: str) -> str:
        """End the chain from its record (already claimed by this MN)."""
        record = self.record
        log.warning("ending flow chain %s (record %s, %s %s) left %s by management node %s",
                    self.chain.name, record.uuid, record.resource_type or "resource",
                    record.resource_uuid, record.state, previous_owner)
        try:
            if record.state == FlowState.RUNNING and self.chain.resumable:
                start = self.chain.index_of(record.completed_steps[-1]) + 1 if record.completed_steps else 0
                await self._forward(start)
                return FlowState.DONE
            if record.state == FlowState.RUNNING:
                await self._fail(record.current_step, error(
                    SysErrors.MANAGEMENT_NODE_UNAVAILABLE_ERROR,
                    f"management node {previous_owner} stopped while running step "
                    f"{record.current_step} of flow chain {self.chain.name}"))
            if record.state == FlowState.FAILED:
                # An operator retrying a record an older MN could not map:
                # what it did is unknown, so undo everything it lists.
                await self._fail(record.current_step, record.error or error(
                    SysErrors.OPERATION_ERROR, f"flow chain {self.chain.name} was recovered from a "
                                               f"record marked {FlowState.FAILED}"))
            if record.state == FlowState.ROLLING_BACK:
                await self._roll_back()
                await self._conclude(FlowState.ROLLED_BACK, ("error", "finally"))
            elif record.state == FlowState.ROLLED_BACK:
                await self._conclude(FlowState.ROLLED_BACK, ("error", "finally"))
            elif record.state == FlowState.DONE:
                await self._conclude(FlowState.DONE, ("done", "finally"))
                return FlowState.DONE
            return FlowState.ROLLED_BACK
        except FlowError:
            return FlowState.ROLLED_BACK
        except _TakenOver:
            raise self._taken_over_error() from None

    # -- forward --------------------------------------------------------------------------

    async def _forward(self, index: int) -> dict[str, Any]:
        steps, record, ctx = self.chain.steps, self.record, self.ctx
        while True:
            try:
                found = self._next_runnable(index)
            except _StepFailed as failed:
                return await self._fail(failed.step_id, failed.error)
            if found is None:
                break
            index, step = found, steps[found]
            record.current_step = step.id
            flow = self._flow(index)
            if not flow.atomic:
                # It may have effects outside a transaction that records it:
                # the record must say it is running before it starts.
                try:
                    await self._record_progress()
                except _TakenOver:
                    raise
                except Exception as exc:
                    log.error("could not record the progress of flow chain %s (record %s): %s",
                              self.chain.name, record.uuid, exc)
                    return await self._fail(step.id, error(SysErrors.INTERNAL,
                                                            f"could not record the chain's progress: {exc}"))
            ctx.step_id = step.id
            if self.durable:
                ctx._mark_done = functools.partial(self._mark_done_in, index)
            try:
                await flow.run(ctx)
                self._dump_data()
            except _TakenOver:
                raise
            except Exception as exc:
                return await self._fail(step.id, _step_error(exc, self.chain.name, step.id))
            finally:
                ctx._mark_done = None
            # Written with the next write of the record (before the next step
            # that is not atomic, in the commit of the next atomic one, or at
            # the end). Until then the record names this step as running, so
            # a crash rolls it back; an atomic step recorded itself, or had
            # no effect.
            record.completed_steps.append(step.id)
            index += 1
        record.current_step = None
        ctx.step_id = None
        await self._conclude(FlowState.DONE, ("done", "finally"))
        return ctx.data

    def _next_runnable(self, index: int) -> int | None:
        """The first step from ``index`` on that is not skipped (None at the end)."""
        steps = self.chain.steps
        while index < len(steps):
            step = steps[index]
            self.ctx.step_id = step.id
            try:
                skipped = step.skipped(self._flow(index), self.ctx)
            except Exception as exc:
                raise _StepFailed(step.id, _step_error(exc, self.chain.name, step.id)) from exc
            if not skipped:
                return index
            log.debug("flow chain %s: step %s skipped", self.chain.name, step.id)
            index += 1
        return None

    def _flow(self, index: int) -> Flow:
        flow = self._flows.get(index)
        if flow is None:
            flow = self._flows[index] = self.chain.steps[index].cls()
        return flow

    # -- failure and rollback -----------------------------------------------------------------

    async def _fail(self, step_id: str | None, err: ErrorCode):
        """Roll back ``step_id`` and the completed steps, run the handlers, raise FlowError."""
        record, ctx = self.record, self.ctx
        log.warning("flow chain %s (record %s) failed at step %s: %s; rolling back %d step(s)",
                    self.chain.name, record.uuid, step_id, err,
                    len(record.completed_steps) + (step_id is not None))
        record.state = FlowState.ROLLING_BACK
        record.current_step = step_id
        record.error = ctx.error = err
        await self._save_quietly()
        await self._roll_back()
        await self._conclude(FlowState.ROLLED_BACK, ("error", "finally"))
        raise FlowError(error(SysErrors.OPERATION_ERROR,
                              f"flow chain {self.chain.name} failed at step {step_id}: {err}", cause=err),
                        chain=self.chain.name, step_id=step_id, data=ctx.data)

    async def _roll_back(self) -> None:
        """Undo the current step, then the completed ones newest first; persist each."""
        record, ctx = self.record, self.ctx
        ctx.error = record.error
        while record.current_step is not None or record.completed_steps:
            current = record.current_step is not None
            step_id = record.current_step if current else record.completed_steps[-1]
            index = self.chain.index_of(step_id)
            step = self.chain.steps[index]
            ctx.step_id = step_id
            if step.rollbackable:
                try:
                    await self._flow(index).rollback(ctx)
                except Exception:
                    log.exception("rollback of step %s of flow chain %s (record %s) failed; "
                                  "rolling back the others", step_id, self.chain.name, record.uuid)
            if current:
                record.current_step = None
            else:
                record.completed_steps.pop()
            await self._save_quietly()
        ctx.step_id = None

    # -- the end --------------------------------------------------------------------------------

    async def _conclude(self, state: str, kinds: Iterable[HandlerKind]) -> None:
        """Run the outcome's handlers, then delete the record.

        With handlers, the record first says ``state``: a successor then
        re-runs only the handlers, never the steps.
        """
        kinds = tuple(kinds)
        handlers = [(kind, cls) for kind in kinds for cls in self.chain.handlers.get(kind, ())]
        recorded = self.durable and self.inserted and not self._deleted
        if recorded and handlers and self.record.state != state:
            self.record.state = state
            try:
                if not await self.store.set_state(self.record, state):
                    raise _TakenOver()
            except _TakenOver:
                raise
            except Exception as exc:
                log.warning("could not record the end of flow chain %s (record %s): %s",
                            self.chain.name, self.record.uuid, exc)
        self.ctx.step_id = None
        for kind, cls in handlers:
            try:
                await cls().handle(self.ctx)
            except Exception:
                log.exception("%s handler %s of flow chain %s (record %s) failed", kind, cls.__qualname__,
                              self.chain.name, self.record.uuid)
        if recorded:
            try:
                await self.store.delete(self.record)
            except Exception as exc:
                log.warning("could not delete the record %s of ended flow chain %s: %s; a successor "
                            "will run its handlers again", self.record.uuid, self.chain.name, exc)

    # -- persistence ------------------------------------------------------------------------------

    def _dump_data(self) -> None:
        """Serialise the data map now; a step that made it unserialisable fails."""
        if self.durable:
            try:
                self._data_json = json.dumps(self.ctx.data)
            except (TypeError, ValueError) as exc:
                raise OperationError.of(SysErrors.INTERNAL,
                                        f"the data map is no longer JSON-serialisable: {exc}") from None

    def _snapshot(self) -> tuple:
        record = self.record
        return record.state, record.current_step, tuple(record.completed_steps), self._data_json

    async def _record_progress(self) -> None:
        if not self.durable:
            return
        snapshot = self._snapshot()
        if snapshot == self._persisted:
            return  # the last atomic step's commit said this already
        if not self.inserted or self._deleted:
            await self.store.insert(self.record, self._data_json)
            self.inserted, self._deleted = True, False
        elif not await self.store.save(self.record, self._data_json):
            raise _TakenOver()
        self._persisted = snapshot

    def _mark_done_in(self, index: int, session) -> None:
        """``ctx.mark_done``: record step ``index`` as completed in the step's own transaction.

        Runs in a database thread while the step awaits the transaction, so
        nothing changes the data map meanwhile. What the record says is
        known here only once the transaction commits (``after_commit``).
        """
        record, steps = self.record, self.chain.steps
        completed = [*record.completed_steps, steps[index].id]
        data_json = json.dumps(self.ctx.data)
        following = steps[index + 1] if index + 1 < len(steps) else None
        if following is None and not self._end_handlers():
            # The last step: its commit ends the chain, so it deletes the record.
            if self.inserted and not self._deleted:
                if not self.store.delete_in(session, record):
                    raise _TakenOver()
                # A COMMIT that loses the connection is then told by the record, not run twice.
                commit_probe(session, self.store.deleted_probe(record))
            after_commit(session, self._deleted_by_step)
            return
        # Naming the next step as running saves the write the engine would
        # make before it; only for a step that surely runs and is not atomic.
        current = following.id if following is not None and _always_runs(following) \
            and not following.cls.atomic else None
        view = dataclasses.replace(record, current_step=current, completed_steps=completed)
        if not self.inserted or self._deleted:
            self.store.insert_in(session, view, data_json)
        elif not self.store.save_in(session, view, data_json):
            raise _TakenOver()
        commit_probe(session, self.store.written_probe(view, data_json))
        snapshot = (view.state, current, tuple(completed), data_json)

        def committed() -> None:
            self.inserted, self._deleted, self._persisted = True, False, snapshot

        after_commit(session, committed)

    def _deleted_by_step(self) -> None:
        self._deleted, self._persisted = True, None

    def _end_handlers(self) -> bool:
        return bool(self.chain.handlers.get("done") or self.chain.handlers.get("finally"))

    async def _save_quietly(self) -> None:
        """Record rollback progress; a database error is logged, the rollback goes on."""
        if not (self.durable and self.inserted):
            return
        if self._deleted:
            # A last step failed after its commit deleted the record (it broke
            # its atomic promise): the rollback needs a record again.
            try:
                self._dump_data()
                await self.store.insert(self.record, self._data_json)
                self._deleted, self._persisted = False, self._snapshot()
            except Exception as exc:
                log.warning("could not record the rollback of flow chain %s (record %s): %s",
                            self.chain.name, self.record.uuid, exc)
            return
        try:
            self._dump_data()
        except OperationError as exc:
            log.warning("flow chain %s (record %s): %s; keeping the last good data",
                        self.chain.name, self.record.uuid, exc.error.details)
        try:
            saved = await self.store.save(self.record, self._data_json)
        except Exception as exc:
            log.warning("could not record the rollback progress of flow chain %s (record %s): %s",
                        self.chain.name, self.record.uuid, exc)
            return
        if not saved:
            raise _TakenOver()

    def _taken_over_error(self) -> FlowError:
        log.error("flow chain %s (record %s) was taken over by another management node; stopped here",
                  self.chain.name, self.record.uuid)
        return FlowError(error(SysErrors.MANAGEMENT_NODE_UNAVAILABLE_ERROR,
                               f"flow chain {self.chain.name} (record {self.record.uuid}) was taken over "
                               f"by another management node"), chain=self.chain.name, data=self.ctx.data)
