"""Waiting for agent callbacks without a thread per wait.

The MN POSTs a command to an agent with headers ``taskuuid`` and
``callbackurl``; the agent answers at once and later POSTs the result to
``/zstack/asyncrest/callback`` with the same ``taskuuid``. The operation waits
on a future from :meth:`CallbackWaiters.expect`; the HTTP endpoint calls
:meth:`CallbackWaiters.deliver`. A callback nobody waits for (late,
duplicated, or for another MN's task) is ignored.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from mn.bus import Event
from mn.errors import OperationError, SysErrors


class AgentCallbackArrivedEvent(Event):
    """A callback arrived at an MN where nobody waits for it: broadcast, so
    that the MN whose operation waits gets it (an agent whose own MN was
    unreachable delivers to any MN it knows)."""

    taskUuid: str
    body: Any = None


class CallbackWaiters:
    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future] = {}

    def expect(self, task_uuid: str, timeout: float) -> asyncio.Future:
        """A future resolved with the callback body, or failed at ``timeout``."""
        if task_uuid in self._waiting:
            raise ValueError(f"task {task_uuid} is already awaited")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiting[task_uuid] = future

        def expire() -> None:
            if not future.done():
                future.set_exception(OperationError.of(
                    SysErrors.TIMEOUT, f"no callback for task {task_uuid} within {timeout:g}s"))

        handle = loop.call_later(timeout, expire)

        def forget(_):
            handle.cancel()
            if self._waiting.get(task_uuid) is future:
                del self._waiting[task_uuid]

        future.add_done_callback(forget)
        return future

    def deliver(self, task_uuid: str, body: Any) -> bool:
        """Hand a callback to its waiter; False when nobody waits for it."""
        future = self._waiting.pop(task_uuid, None)
        if future is None or future.done():
            return False
        future.set_result(body)
        return True

    def __contains__(self, task_uuid: str) -> bool:
        return task_uuid in self._waiting

    def __len__(self) -> int:
        return len(self._waiting)

    def on_forwarded(self, event: AgentCallbackArrivedEvent) -> None:
        """The bus subscriber of :class:`AgentCallbackArrivedEvent`."""
        self.deliver(event.taskUuid, event.body)


#: An agent command handler: the JSON body in, the JSON answer (or None) out.
ReportHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]


class AgentReports:
    """Commands agents send on their own (ZStack's ``/asyncrest/sendcommand``
    with a ``commandpath`` header: ``/kvm/reportvmstate``, ``/kvm/reconnectme``).

    A hypervisor plugin registers a handler per command path when its service
    starts; the HTTP endpoint calls :meth:`handle`.
    """

    def __init__(self) -> None:
        self._handlers: dict[str, ReportHandler] = {}

    def register(self, command_path: str, handler: ReportHandler) -> None:
        self._handlers[command_path] = handler

    def unregister(self, command_path: str) -> None:
        self._handlers.pop(command_path, None)

    async def handle(self, command_path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The handler's answer; OperationError SYS.1009 for a path nobody serves."""
        handler = self._handlers.get(command_path)
        if handler is None:
            raise OperationError.of(SysErrors.NO_ROUTE_ERROR,
                                    f"no handler for agent command path {command_path}")
        return await handler(body) or {}
