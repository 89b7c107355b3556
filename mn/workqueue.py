"""Per-resource serial work queues: ZStack's sync task chains for asyncio.

In ZStack a ``ChainTask`` names a *sync signature* (usually built from a
resource uuid, e.g. ``"vm-<uuid>"``) and a *sync level*; ``ThreadFacade``
runs tasks with the same signature in submission order, at most sync-level
of them at a time, and each task calls ``chain.next()`` when it is done.

Here the same model runs on the event loop: ``WorkQueues.submit(signature,
fn)`` queues the coroutine function ``fn`` and returns a future; ``fn``
finishing (return, raise, cancel or timeout) is the ``chain.next()``.
Every running task is one ``asyncio.Task``; waiting tasks are only entries
in their signature's queue, so a million queued operations cost no threads
and no polling. A per-task timeout stands in for ZStack's guard against a
task that never calls ``chain.next()``.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from typing import Any, Awaitable, Callable, TypeVar

T = TypeVar("T")
_Entry = tuple[Callable[[], Awaitable[Any]], float | None, str]  # fn, timeout, name

__all__ = ["QueueFullError", "QueueStats", "TaskTimeoutError", "WorkQueues"]


class QueueFullError(Exception):
    """A signature already has ``pending_limit`` tasks waiting to start."""


class TaskTimeoutError(Exception):
    """A task did not finish within its timeout; it was cancelled and its slot released."""


@dataclass(frozen=True)
class QueueStats:
    """Snapshot of one signature's queue."""

    running: int
    pending: int


class _Queue:
    __slots__ = ("sync_level", "pending_limit", "pending", "running")

    def __init__(self, sync_level: int, pending_limit: int) -> None:
        self.sync_level = sync_level
        self.pending_limit = pending_limit
        # An OrderedDict rather than a deque so that a task cancelled before
        # it starts leaves the queue (and the pending count) in O(1).
        self.pending: OrderedDict[asyncio.Future, _Entry] = OrderedDict()
        self.running: dict[asyncio.Future, asyncio.Task] = {}

    def on_future_done(self, fut: asyncio.Future) -> None:
        if not fut.cancelled():
            return
        # A non-empty pending list means every slot is busy, so removing an
        # entry can neither start a task nor empty the queue.
        if self.pending.pop(fut, None) is None and (task := self.running.get(fut)) is not None:
            task.cancel()


class WorkQueues:
    """Per-signature work queues (ZStack sync task chains).

    Tasks submitted under one signature start in submission order with at
    most ``sync_level`` of them running at once (1 = strictly serial);
    different signatures are independent. A signature's ``sync_level`` and
    ``pending_limit`` are fixed by the submit that creates its queue: later
    submits' values are ignored while the queue exists. A queue is dropped as
    soon as it has nothing running or pending, so memory follows the
    signatures in use, not every signature ever seen.

    ``pending_limit`` bounds the tasks waiting to start; a task that can start
    at once is always accepted (so a limit of 0 means "never wait").
    ``timeout`` (per task, else ``default_timeout``) counts from the moment a
    task starts: the task is then cancelled and its future gets
    ``TaskTimeoutError``. A slot is freed when the task's coroutine actually
    ends, so one that swallows ``CancelledError`` keeps holding it.

    Must be used from the event loop's thread. Cancelling a returned future
    skips the task if it has not started and cancels it if it is running.
    """

    def __init__(
        self,
        *,
        default_sync_level: int = 1,
        default_pending_limit: int = 10000,
        default_timeout: float | None = None,
    ) -> None:
        _check_limits(default_sync_level, default_pending_limit)
        self._default_sync_level = default_sync_level
        self._default_pending_limit = default_pending_limit
        self._default_timeout = default_timeout
        self._queues: dict[str, _Queue] = {}
        self._closed = False

    def submit(
        self,
        signature: str,
        fn: Callable[[], Awaitable[T]],
        *,
        sync_level: int | None = None,
        pending_limit: int | None = None,
        timeout: float | None = None,
        name: str = "",
    ) -> asyncio.Future[T]:
        """Queue ``fn()`` under ``signature``; return a future for its result.

        Raises ``QueueFullError`` at once if the task would have to wait and
        ``pending_limit`` tasks are already waiting.
        """
        loop = asyncio.get_running_loop()
        if self._closed:
            raise RuntimeError("WorkQueues is closed")
        q = self._queues.get(signature)
        if q is None:
            q = _Queue(
                self._default_sync_level if sync_level is None else sync_level,
                self._default_pending_limit if pending_limit is None else pending_limit,
            )
            _check_limits(q.sync_level, q.pending_limit)
            self._queues[signature] = q
        elif len(q.running) >= q.sync_level and len(q.pending) >= q.pending_limit:
            raise QueueFullError(
                f"work queue {signature!r} is full: {len(q.pending)} tasks pending, limit {q.pending_limit}"
            )
        fut = loop.create_future()
        fut.add_done_callback(q.on_future_done)
        q.pending[fut] = (fn, self._default_timeout if timeout is None else timeout, name)
        self._pump(signature, q)
        return fut

    async def run(self, signature: str, fn: Callable[[], Awaitable[T]], **kw: Any) -> T:
        """Submit and wait; cancelling the caller cancels the task."""
        return await self.submit(signature, fn, **kw)

    def stats(self, signature: str) -> QueueStats:
        q = self._queues.get(signature)
        if q is None:
            return QueueStats(running=0, pending=0)
        return QueueStats(running=len(q.running), pending=len(q.pending))

    def signatures(self) -> list[str]:
        """Signatures that have running or pending work."""
        return list(self._queues)

    async def close(self) -> None:
        """Cancel every pending and running task and wait for the running ones to unwind.

        Their futures get ``CancelledError``; later submits raise ``RuntimeError``.
        """
        self._closed = True
        tasks = []
        for q in self._queues.values():
            for fut in q.pending:
                fut.cancel()
            q.pending.clear()
            for fut, task in q.running.items():
                fut.cancel()
                task.cancel()
                tasks.append(task)
        if tasks:
            await asyncio.wait(tasks)

    def _pump(self, signature: str, q: _Queue) -> None:
        while q.pending and len(q.running) < q.sync_level:
            fut, (fn, timeout, name) = q.pending.popitem(last=False)
            if fut.done():  # cancelled; its done callback has not run yet
                continue
            task = asyncio.get_running_loop().create_task(
                _execute(fn, timeout, signature, name),
                name=f"workqueue:{signature}:{name}" if name else f"workqueue:{signature}",
            )
            q.running[fut] = task
            task.add_done_callback(partial(self._on_task_done, signature, q, fut))
        if not q.running and not q.pending and self._queues.get(signature) is q:
            del self._queues[signature]

    def _on_task_done(self, signature: str, q: _Queue, fut: asyncio.Future, task: asyncio.Task) -> None:
        # Runs even if the task was cancelled before its coroutine started,
        # which a try/finally inside the coroutine would miss.
        del q.running[fut]
        # Bound methods compare equal, so this drops the callback added in
        # submit and saves a useless loop callback per finished task.
        fut.remove_done_callback(q.on_future_done)
        if task.cancelled():
            fut.cancel()
        elif (exc := task.exception()) is not None:
            if not fut.done():
                fut.set_exception(exc)
        elif not fut.done():
            fut.set_result(task.result())
        self._pump(signature, q)


async def _execute(fn: Callable[[], Awaitable[T]], timeout: float | None, signature: str, name: str) -> T:
    if timeout is None:
        return await fn()
    try:
        async with asyncio.timeout(timeout) as cm:
            return await fn()
    except TimeoutError:
        if not cm.expired():  # fn's own TimeoutError, not ours
            raise
        what = f"task {name!r} in {signature!r}" if name else f"task in {signature!r}"
        raise TaskTimeoutError(f"{what} did not finish within {timeout}s") from None


def _check_limits(sync_level: int, pending_limit: int) -> None:
    if sync_level < 1:
        raise ValueError(f"sync_level must be >= 1, got {sync_level}")
    if pending_limit < 0:
        raise ValueError(f"pending_limit must be >= 0, got {pending_limit}")
