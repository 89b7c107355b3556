"""CloudBus: how services talk, inside one MN and across MNs.

* ``register(service_id, handler)``: a service serves its messages.
* ``send(msg)``: one-way; returns once the broker confirmed it.
* ``call(msg, timeout=)``: request/reply matched by correlation id; raises
  :class:`~mn.errors.OperationError` for a failed reply, a timeout, or when
  the MN it went to leaves the ring before answering.
* ``reply(request, reply)``: answer a request (the dispatcher does it with
  the handler's return value).
* ``publish(event)`` / ``subscribe(EventType, handler)``: broadcast.

Routing: a message whose class sets ``ROUTE_BY`` goes to the MN owning that
resource uuid on the ring; ``node=`` sends to one MN; anything else is
handled by this MN. A message for this MN skips the broker (it would only add
two hops and a thread switch to the same process). Everything awaits
futures: a call in flight costs one future and one dict entry, no thread.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from mn.bus.errors import BusUnavailableError, CallTimeoutError, NodeUnavailableError, NoServiceError
from mn.bus.message import Event, Message, Reply, from_wire
from mn.bus.transport import Delivery, KombuTransport
from mn.errors import ErrorCode, OperationError, SysErrors, error
from mn.ids import new_uuid
from mn.ring import Ring

log = logging.getLogger(__name__)

Handler = Callable[[Message, "Request"], Awaitable[Reply | None]]
EventHandler = Callable[[Event], Awaitable[None] | None]

#: Message ids remembered to drop redeliveries (a broker that lost our ack).
SEEN_IDS_KEPT = 100_000

KIND_REQUEST, KIND_REPLY, KIND_EVENT = "request", "reply", "event"


@dataclass
class Request:
    """A request being handled, with what is needed to answer it."""

    msg: Message
    service: str
    sender: str
    message_id: str
    correlation_id: str | None = None
    reply_to: str | None = None
    deadline: float | None = None
    replied: bool = False
    _local_future: asyncio.Future | None = field(default=None, repr=False)

    @property
    def expects_reply(self) -> bool:
        return self._local_future is not None or bool(self.reply_to and self.correlation_id)


@dataclass
class _PendingCall:
    future: asyncio.Future
    target: str
    msg_type: str


class CloudBus:
    """The message bus endpoint of one MN (``member=True``) or of a client.

    A client (tests, tools) has a transient inbox, hosts no services and
    must address MNs with ``node=`` unless it is given a ring.
    """

    def __init__(self, url: str, address: str | None = None, ring: Ring | None = None, *,
                 member: bool = True, call_timeout: float = 60.0):
        self.url = url
        self.address = address or new_uuid()
        self.ring = ring if ring is not None else Ring([self.address] if member else [])
        self.member = member
        self.call_timeout = call_timeout
        self._services: dict[str, Handler] = {}
        self._subscribers: dict[str, list[EventHandler]] = collections.defaultdict(list)
        self._pending: dict[str, _PendingCall] = {}
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._tasks: set[asyncio.Task] = set()
        self._transport: KombuTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- life cycle ---------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport = KombuTransport(self.url, self.address, durable_inbox=self.member,
                                         on_delivery=self._on_delivery, loop=self._loop)
        await self._loop.run_in_executor(None, self._transport.start)

    async def stop(self, *, delete_inbox: bool = False) -> None:
        for pending in list(self._pending.values()):
            if not pending.future.done():
                pending.future.set_exception(BusUnavailableError("the bus is stopping"))
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            # Cancelled handlers answer their callers ("node is stopping");
            # let them publish that before the transport goes.
            await asyncio.wait(tasks, timeout=5)
        if self._transport is not None:
            transport, self._transport = self._transport, None
            await asyncio.get_running_loop().run_in_executor(None, transport.stop, delete_inbox)

    # -- services and subscriptions -----------------------------------------

    def register(self, service_id: str, handler: Handler) -> None:
        if service_id in self._services:
            raise ValueError(f"service {service_id!r} is already registered")
        self._services[service_id] = handler

    def serves(self, service_id: str) -> bool:
        return service_id in self._services

    def subscribe(self, event_type: type[Event], handler: EventHandler) -> Callable[[], None]:
        """Call ``handler`` for every ``event_type`` published by any MN."""
        handlers = self._subscribers[event_type.TYPE]
        handlers.append(handler)
        return lambda: handlers.remove(handler)

    # -- sending ------------------------------------------------------------

    def _target(self, msg: Message, node: str | None) -> str:
        if node is not None:
            return node
        key = msg.route_key()
        if key is not None:
            return self.ring.owner(key)
        if self.member:
            return self.address
        raise ValueError(f"{msg.TYPE} has no resource to route by: a client must name the node")

    def _check_service(self, msg: Message, target: str) -> None:
        if msg.SERVICE is None:
            raise NoServiceError(None, msg.TYPE)
        # Every MN hosts the same services, so a member can refuse at once.
        if self.member and not self.serves(msg.SERVICE):
            raise NoServiceError(msg.SERVICE, msg.TYPE)
        if self.member and target != self.address and target not in self.ring:
            raise NodeUnavailableError(target, msg.TYPE)

    async def send(self, msg: Message, *, node: str | None = None) -> None:
        """Deliver ``msg`` once, without waiting for its handling."""
        target = self._target(msg, node)
        self._check_service(msg, target)
        request_id = new_uuid()
        if target == self.address and self.member:
            self._start_request(Request(msg, msg.SERVICE, self.address, request_id))
            return
        await self._publish(msg.to_wire(), target, KIND_REQUEST, message_id=request_id,
                            headers={"service": msg.SERVICE, "from": self.address})

    async def call(self, msg: Message, *, node: str | None = None,
                   timeout: float | None = None) -> Reply:
        """Send ``msg`` and wait for its reply; raise OperationError on failure."""
        timeout = self.call_timeout if timeout is None else timeout
        target = self._target(msg, node)
        self._check_service(msg, target)
        loop = asyncio.get_running_loop()
        correlation_id = new_uuid()
        future = loop.create_future()
        self._pending[correlation_id] = _PendingCall(future, target, msg.TYPE)
        deadline = time.time() + timeout
        try:
            if target == self.address and self.member:
                self._start_request(Request(msg, msg.SERVICE, self.address, correlation_id,
                                            correlation_id, deadline=deadline, _local_future=future))
            else:
                await self._publish(msg.to_wire(), target, KIND_REQUEST, message_id=correlation_id,
                                    correlation_id=correlation_id, reply_to=self.address,
                                    headers={"service": msg.SERVICE, "from": self.address,
                                             "deadline": deadline})
            # A timer, not asyncio.wait_for: no extra task per call.
            timer = loop.call_later(max(0.0, deadline - time.time()), _expire, future,
                                    msg.TYPE, target, timeout)
            try:
                reply = await future
            finally:
                timer.cancel()
        finally:
            self._pending.pop(correlation_id, None)
        return reply.raise_for_error()

    async def reply(self, request: Request, reply: Reply) -> None:
        if request.replied or not request.expects_reply:
            return
        request.replied = True
        if request._local_future is not None:
            if not request._local_future.done():
                request._local_future.set_result(reply)
            return
        await self._publish(reply.to_wire(), request.reply_to, KIND_REPLY,
                            correlation_id=request.correlation_id, persistent=False,
                            headers={"from": self.address})

    async def publish(self, event: Event) -> None:
        """Broadcast ``event`` to every subscriber on every MN (this one too)."""
        await self._publish(event.to_wire(), event.TYPE, KIND_EVENT, event=True, persistent=False,
                            headers={"from": self.address}, message_id=new_uuid())

    async def _publish(self, body: dict, routing_key: str, kind: str, *, event: bool = False,
                       headers: dict, persistent: bool = True, **props: Any) -> None:
        if self._transport is None:
            raise BusUnavailableError("the bus is not started")
        headers["kind"] = kind
        try:
            await self._transport.publish(body, routing_key=routing_key, event=event,
                                          headers=headers, persistent=persistent, **props)
        except OperationError:
            raise
        except Exception as exc:
            raise BusUnavailableError(f"{type(exc).__name__}: {exc}") from exc

    # -- membership ---------------------------------------------------------

    def fail_calls_to(self, node_uuid: str) -> int:
        """Fail every call waiting on ``node_uuid`` (it left the ring)."""
        failed = 0
        for pending in list(self._pending.values()):
            if pending.target == node_uuid and not pending.future.done():
                pending.future.set_exception(NodeUnavailableError(node_uuid, pending.msg_type))
                failed += 1
        return failed

    async def adopt_orphans(self, dead_node: str) -> int:
        """Re-route what a dead MN left unconsumed in its inbox.

        One-way messages about a resource go to the resource's new owner.
        Requests whose caller waits get a clear failure instead: the caller
        already failed them when the node left, and doing them now would do
        an operation its user was told had failed.
        """
        loop = asyncio.get_running_loop()
        orphans = await loop.run_in_executor(None, self._transport.take_orphan_inbox, dead_node)
        for orphan in orphans:
            if orphan.headers.get("kind") != KIND_REQUEST:
                continue
            try:
                await self._adopt(orphan, dead_node)
            except Exception as exc:  # one bad orphan must not lose the others
                log.error("could not re-route a message of dead node %s: %s", dead_node, exc)
        if orphans:
            log.info("adopted %d orphan messages of dead node %s", len(orphans), dead_node)
        return len(orphans)

    async def _adopt(self, orphan: Delivery, dead_node: str) -> None:
        msg = from_wire(orphan.body)
        if orphan.reply_to and orphan.correlation_id:
            request = Request(msg, orphan.headers.get("service", ""), self.address,
                              orphan.message_id or new_uuid(), orphan.correlation_id, orphan.reply_to)
            await self.reply(request, Reply.failure(NodeUnavailableError(dead_node, msg.TYPE).error))
        elif msg.route_key() is not None:
            await self.send(msg)
        else:
            log.warning("dropping %s addressed to dead node %s", msg.TYPE, dead_node)

    # -- receiving ----------------------------------------------------------

    def _on_delivery(self, delivery: Delivery) -> None:
        kind = delivery.headers.get("kind")
        if kind == KIND_REPLY:
            pending = self._pending.get(delivery.correlation_id or "")
            if pending is None or pending.future.done():
                return  # late or duplicate: the caller has moved on
            try:
                reply = from_wire(delivery.body)
            except OperationError as exc:
                reply = Reply.failure(exc.error)
            pending.future.set_result(reply if isinstance(reply, Reply) else Reply.failure(
                error(SysErrors.INTERNAL, f"{reply.TYPE} is not a reply")))
            return
        if delivery.message_id:
            if delivery.message_id in self._seen:
                return
            self._seen[delivery.message_id] = None
            if len(self._seen) > SEEN_IDS_KEPT:
                self._seen.popitem(last=False)
        if kind == KIND_EVENT:
            self._deliver_event(delivery)
        elif kind == KIND_REQUEST:
            self._receive_request(delivery)

    def _receive_request(self, delivery: Delivery) -> None:
        service = delivery.headers.get("service", "")
        try:
            msg = from_wire(delivery.body)
        except OperationError as exc:
            request = Request(Message(), service, delivery.headers.get("from", ""),
                              delivery.message_id or new_uuid(), delivery.correlation_id, delivery.reply_to)
            self._spawn(self.reply(request, Reply.failure(exc.error)))
            return
        deadline = delivery.headers.get("deadline")
        self._start_request(Request(msg, service, delivery.headers.get("from", ""),
                                    delivery.message_id or new_uuid(), delivery.correlation_id,
                                    delivery.reply_to, float(deadline) if deadline else None))

    def _start_request(self, request: Request) -> None:
        self._spawn(self._handle(request))

    async def _handle(self, request: Request) -> None:
        handler = self._services.get(request.service)
        if handler is None:
            await self.reply(request, Reply.failure(NoServiceError(request.service, request.msg.TYPE).error))
            return
        if request.deadline is not None and time.time() > request.deadline:
            log.info("dropping expired %s from %s", request.msg.TYPE, request.sender)
            return
        try:
            result = await handler(request.msg, request)
        except OperationError as exc:
            result = Reply.failure(exc.error)
        except asyncio.CancelledError:
            result = Reply.failure(error(SysErrors.MANAGEMENT_NODE_UNAVAILABLE_ERROR,
                                         f"management node {self.address} is stopping"))
            await self.reply(request, result)
            raise
        except Exception as exc:
            log.exception("%s handling %s failed", request.service, request.msg.TYPE)
            result = Reply.failure(error(SysErrors.INTERNAL, f"{type(exc).__name__}: {exc}"))
        await self.reply(request, result if result is not None else Reply())

    def _deliver_event(self, delivery: Delivery) -> None:
        handlers = self._subscribers.get(delivery.body.get("type", ""))
        if not handlers:
            return
        try:
            event = from_wire(delivery.body)
        except OperationError as exc:
            log.warning("undecodable event: %s", exc)
            return
        for handler in list(handlers):
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    self._spawn(result)
            except Exception:
                log.exception("event handler %r failed on %s", handler, event.TYPE)

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("bus task failed: %r", task.exception())


def _expire(future: asyncio.Future, msg_type: str, target: str, timeout: float) -> None:
    if not future.done():
        future.set_exception(CallTimeoutError(msg_type, target, timeout))


__all__ = ["CloudBus", "Request", "ErrorCode"]
