"""CloudBus over kombu's in-process ``memory://`` transport.

Every test gets buses with fresh uuid addresses (so their queues are new in
the process-wide memory broker) and stops them with ``delete_inbox=True``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Callable

import pytest

from mn.bus import (CallTimeoutError, CloudBus, Event, Message, NodeUnavailableError, NoServiceError,
                    Reply, Request)
from mn.bus.bus import KIND_EVENT, KIND_REPLY, KIND_REQUEST
from mn.bus.transport import Delivery
from mn.errors import OperationError, SysErrors, error
from mn.ids import new_uuid
from mn.ring import Ring

SERVICE = "busMemTest"
WAIT = 5.0  # upper bound of every wait on something that should happen at once


# -- messages (TYPE names are global: keep them unique to this module) --------

class BusMemRoutedMsg(Message):
    TYPE = "test.busmem.RoutedMsg"
    SERVICE = SERVICE
    ROUTE_BY = "resourceUuid"
    resourceUuid: str
    tag: str = ""


class BusMemPlainMsg(Message):
    TYPE = "test.busmem.PlainMsg"
    SERVICE = SERVICE
    tag: str = ""


class BusMemBlockMsg(Message):
    """Handled only once the test opens the gate named ``token``."""

    TYPE = "test.busmem.BlockMsg"
    SERVICE = SERVICE
    token: str


class BusMemFailMsg(Message):
    TYPE = "test.busmem.FailMsg"
    SERVICE = SERVICE
    details: str


class BusMemCrashMsg(Message):
    TYPE = "test.busmem.CrashMsg"
    SERVICE = SERVICE


class BusMemVersionedMsg(Message):
    TYPE = "test.busmem.VersionedMsg"
    VERSION = 3
    SERVICE = SERVICE


class BusMemGhostMsg(Message):
    TYPE = "test.busmem.GhostMsg"
    SERVICE = "busMemNobodyServesThis"


class BusMemNoServiceMsg(Message):
    TYPE = "test.busmem.NoServiceMsg"


class BusMemWhoReply(Reply):
    TYPE = "test.busmem.WhoReply"
    handledBy: str = ""
    resourceUuid: str | None = None
    tag: str = ""


class BusMemEvent(Event):
    TYPE = "test.busmem.Event"
    value: str


# -- harness ------------------------------------------------------------------

class Harness:
    """Serves SERVICE on every bus it is given and records what was handled."""

    def __init__(self) -> None:
        self.handled: list[tuple[str, Message, Request]] = []
        self._gates: dict[str, asyncio.Event] = {}
        self._started: dict[str, asyncio.Event] = {}
        self._finished: dict[str, asyncio.Event] = {}
        self._watchers: list[tuple[Callable[[], bool], asyncio.Future]] = []

    def _event(self, table: dict[str, asyncio.Event], token: str) -> asyncio.Event:
        return table.setdefault(token, asyncio.Event())

    def open(self, token: str) -> None:
        self._event(self._gates, token).set()

    def open_all(self) -> None:
        for gate in self._gates.values():
            gate.set()

    async def started(self, token: str) -> None:
        await asyncio.wait_for(self._event(self._started, token).wait(), WAIT)

    async def finished(self, token: str) -> None:
        await asyncio.wait_for(self._event(self._finished, token).wait(), WAIT)

    def count(self, predicate: Callable[[str, Message], bool]) -> int:
        return sum(1 for address, msg, _ in self.handled if predicate(address, msg))

    def tags(self) -> Counter:
        return Counter(getattr(msg, "tag", None) for _, msg, _ in self.handled)

    async def until(self, condition: Callable[[], bool], timeout: float = WAIT) -> None:
        """Wait until ``condition()`` holds after some message was handled."""
        if condition():
            return
        future = asyncio.get_running_loop().create_future()
        self._watchers.append((condition, future))
        try:
            await asyncio.wait_for(future, timeout)
        finally:
            self._watchers = [(c, f) for c, f in self._watchers if f is not future]

    async def until_tag(self, tag: str, n: int = 1) -> None:
        await self.until(lambda: self.tags()[tag] >= n)

    def _record(self, address: str, msg: Message, request: Request) -> None:
        self.handled.append((address, msg, request))
        for condition, future in self._watchers:
            if not future.done() and condition():
                future.set_result(None)

    def serve(self, bus: CloudBus) -> None:
        async def handle(msg: Message, request: Request) -> Reply | None:
            self._record(bus.address, msg, request)
            if isinstance(msg, BusMemBlockMsg):
                self._event(self._started, msg.token).set()
                try:
                    await self._event(self._gates, msg.token).wait()
                finally:
                    self._event(self._finished, msg.token).set()
                return BusMemWhoReply(handledBy=bus.address, tag=msg.token)
            if isinstance(msg, BusMemFailMsg):
                raise OperationError(error(SysErrors.OPERATION_ERROR, msg.details,
                                           cause=error(SysErrors.TIMEOUT, "inner cause")))
            if isinstance(msg, BusMemCrashMsg):
                raise ValueError("boom")
            if isinstance(msg, BusMemVersionedMsg):
                return None
            return BusMemWhoReply(handledBy=bus.address, resourceUuid=getattr(msg, "resourceUuid", None),
                                  tag=getattr(msg, "tag", ""))

        bus.register(SERVICE, handle)


@pytest.fixture
def harness():
    h = Harness()
    yield h
    h.open_all()


@pytest.fixture
async def make_bus(harness):
    """``await make_bus(ring=..., member=..., serve=...)``: a started memory bus."""
    buses: list[CloudBus] = []

    async def make(*, ring: Ring | None = None, member: bool = True, serve: bool = True,
                   address: str | None = None, call_timeout: float = WAIT) -> CloudBus:
        bus = CloudBus("memory://", address or new_uuid(), ring, member=member,
                       call_timeout=call_timeout)
        if serve and member:
            harness.serve(bus)
        buses.append(bus)
        await bus.start()
        return bus

    yield make
    harness.open_all()
    await asyncio.sleep(0)  # let released handlers answer before the buses stop
    await stop_buses(buses)


async def stop_buses(buses: list[CloudBus]) -> None:
    """Stop ``buses`` (deleting their inboxes) without waiting out each consumer's poll.

    A consumer thread notices ``stop()`` only when its ``drain_events`` slice
    (``mn.bus.transport.DRAIN_SLICE``) returns; one broadcast that every event
    queue receives makes them all return at once, which saves that slice per bus
    and per test.
    """
    live = [bus for bus in buses if bus._transport is not None]
    for bus in live:
        bus._transport._stopping.set()
    if live:
        await live[0]._transport.publish({"type": "test.busmem.wake"}, routing_key="test.busmem.wake",
                                         event=True, headers={"kind": "test-wake"}, persistent=False)
    await asyncio.gather(*(bus.stop(delete_inbox=True) for bus in buses))


@pytest.fixture
async def pair(make_bus):
    """Two member buses A and B sharing one ring."""
    a_addr, b_addr = new_uuid(), new_uuid()
    ring = Ring([a_addr, b_addr])
    a = await make_bus(ring=ring, address=a_addr)
    b = await make_bus(ring=ring, address=b_addr)
    return a, b, ring


def owned_by(ring: Ring, node: str, n: int = 1) -> list[str]:
    """``n`` fresh resource uuids that ``node`` owns on ``ring``."""
    found: list[str] = []
    while len(found) < n:
        uuid = new_uuid()
        if ring.owner(uuid) == node:
            found.append(uuid)
    return found


def forbid_broker(monkeypatch, bus: CloudBus) -> None:
    def publish(*args, **kwargs):
        raise AssertionError("this message must not go through the broker")

    monkeypatch.setattr(bus._transport, "publish", publish)


# -- routing ---------------------------------------------------------------------

async def test_route_by_resource_goes_to_ring_owner(pair, harness):
    a, b, ring = pair
    uuids = [new_uuid() for _ in range(1000)]
    callers = [a if i % 2 else b for i in range(len(uuids))]
    replies = await asyncio.wait_for(asyncio.gather(*(
        caller.call(BusMemRoutedMsg(resourceUuid=u)) for caller, u in zip(callers, uuids))), 20)
    expected = {u: ring.owner(u) for u in uuids}
    assert {r.resourceUuid: r.handledBy for r in replies} == expected
    # Both MNs own a fair share, and each uuid was handled once, by its owner.
    owners = Counter(expected.values())
    assert owners[a.address] > 300 and owners[b.address] > 300
    handled = {msg.resourceUuid: address for address, msg, _ in harness.handled}
    assert len(harness.handled) == len(uuids)
    assert handled == expected


async def test_node_addressing(pair, make_bus):
    a, b, _ = pair
    reply = await a.call(BusMemPlainMsg(tag="to-b"), node=b.address)
    assert reply.handledBy == b.address
    # node= wins over ROUTE_BY.
    [u] = owned_by(a.ring, a.address)
    reply = await a.call(BusMemRoutedMsg(resourceUuid=u), node=b.address)
    assert reply.handledBy == b.address
    # A client (no ring of its own) must name the node, and can.
    client = await make_bus(member=False)
    for target in (a, b):
        reply = await client.call(BusMemPlainMsg(), node=target.address)
        assert reply.handledBy == target.address
    with pytest.raises(ValueError):
        await client.call(BusMemPlainMsg())


async def test_client_with_ring_routes_by_resource(pair, make_bus):
    a, b, ring = pair
    client = await make_bus(member=False, ring=ring)
    for node in (a.address, b.address):
        [u] = owned_by(ring, node)
        assert (await client.call(BusMemRoutedMsg(resourceUuid=u))).handledBy == node


async def test_member_refuses_a_node_off_the_ring(pair):
    a, _, _ = pair
    started = time.monotonic()
    with pytest.raises(NodeUnavailableError) as info:
        await a.call(BusMemPlainMsg(), node=new_uuid())
    assert info.value.error.code == SysErrors.MANAGEMENT_NODE_UNAVAILABLE_ERROR.value
    assert time.monotonic() - started < 0.5


async def test_local_call_skips_the_broker(pair, harness, monkeypatch):
    a, _, ring = pair
    forbid_broker(monkeypatch, a)
    msg = BusMemPlainMsg(tag="local")
    reply = await a.call(msg)
    assert reply.handledBy == a.address
    [(address, handled, request)] = harness.handled
    assert address == a.address and request.sender == a.address
    assert handled is msg  # not serialised: it never left the process's memory
    # A routed message that this MN owns is local too.
    [u] = owned_by(ring, a.address)
    routed = BusMemRoutedMsg(resourceUuid=u)
    assert (await a.call(routed)).handledBy == a.address
    assert harness.handled[-1][1] is routed
    # And so is a one-way send.
    await a.send(BusMemPlainMsg(tag="local-send"))
    await harness.until_tag("local-send")


async def test_send_is_one_way_and_handled_exactly_once(pair, harness):
    a, b, ring = pair
    for node in (b.address, a.address):  # remote, then local
        first, sentinel = owned_by(ring, node, 2)
        assert await a.send(BusMemRoutedMsg(resourceUuid=first, tag=f"once-{node}")) is None
        await a.send(BusMemRoutedMsg(resourceUuid=sentinel, tag=f"sentinel-{node}"))
        # The sentinel came after, on the same path: a duplicate would be in by now.
        await harness.until_tag(f"sentinel-{node}")
        assert harness.tags()[f"once-{node}"] == 1
        assert harness.count(lambda addr, m: getattr(m, "tag", "") == f"once-{node}" and addr == node) == 1


async def test_send_does_not_wait_for_the_handler(pair, harness):
    a, b, _ = pair
    token = new_uuid()
    await asyncio.wait_for(a.send(BusMemBlockMsg(token=token), node=b.address), WAIT)
    await harness.started(token)  # the handler runs, and is still blocked
    harness.open(token)
    await harness.finished(token)


# -- failures ---------------------------------------------------------------------

async def test_unregistered_service_fails_at_once_on_a_member(pair, monkeypatch):
    a, b, _ = pair
    forbid_broker(monkeypatch, a)
    started = time.monotonic()
    for call in (lambda: a.call(BusMemGhostMsg()), lambda: a.call(BusMemGhostMsg(), node=b.address),
                 lambda: a.send(BusMemGhostMsg(), node=b.address), lambda: a.call(BusMemNoServiceMsg())):
        with pytest.raises(NoServiceError) as info:
            await call()
        assert info.value.error.code == SysErrors.NO_ROUTE_ERROR.value
    assert time.monotonic() - started < 0.5


async def test_client_gets_no_service_as_an_error_reply(pair, make_bus):
    a, _, _ = pair
    client = await make_bus(member=False)
    started = time.monotonic()
    with pytest.raises(OperationError) as info:
        await client.call(BusMemGhostMsg(), node=a.address, timeout=WAIT)
    assert not isinstance(info.value, CallTimeoutError)
    assert info.value.error.code == SysErrors.NO_ROUTE_ERROR.value
    assert "busMemNobodyServesThis" in info.value.error.details
    assert time.monotonic() - started < WAIT / 2


async def test_call_timeout(pair, harness):
    a, b, _ = pair
    token = new_uuid()
    timeout = 0.3
    started = time.monotonic()
    with pytest.raises(CallTimeoutError) as info:
        await a.call(BusMemBlockMsg(token=token), node=b.address, timeout=timeout)
    elapsed = time.monotonic() - started
    assert timeout - 0.05 <= elapsed < timeout + 1
    assert info.value.error.code == SysErrors.TIMEOUT.value
    assert a._pending == {}


async def test_local_call_timeout(pair, harness):
    a, _, _ = pair
    token = new_uuid()
    started = time.monotonic()
    with pytest.raises(CallTimeoutError):
        await a.call(BusMemBlockMsg(token=token), timeout=0.2)
    assert time.monotonic() - started < 1.2
    harness.open(token)
    await harness.finished(token)  # its answer goes nowhere, without error
    assert a._pending == {}


async def test_fail_calls_to_fails_waiting_calls_at_once(pair, harness):
    a, b, _ = pair
    to_b, to_a = new_uuid(), new_uuid()
    call_b = asyncio.create_task(a.call(BusMemBlockMsg(token=to_b), node=b.address, timeout=30))
    call_a = asyncio.create_task(a.call(BusMemBlockMsg(token=to_a), timeout=30))
    await harness.started(to_b)
    await harness.started(to_a)
    started = time.monotonic()
    assert a.fail_calls_to(b.address) == 1
    with pytest.raises(NodeUnavailableError) as info:
        await asyncio.wait_for(call_b, 1)
    assert time.monotonic() - started < 0.5
    assert info.value.error.code == "SYS.1012"
    assert b.address in info.value.error.details
    # Calls to other nodes are left alone, and failing again finds nothing.
    assert not call_a.done()
    assert a.fail_calls_to(b.address) == 0
    harness.open(to_a)
    assert (await asyncio.wait_for(call_a, WAIT)).handledBy == a.address
    # B still answers its request; the caller has moved on.
    harness.open(to_b)
    await harness.finished(to_b)


@pytest.mark.parametrize("remote", [True, False], ids=["remote", "local"])
async def test_operation_error_reaches_the_caller(pair, remote):
    a, b, _ = pair
    with pytest.raises(OperationError) as info:
        await a.call(BusMemFailMsg(details="it went wrong"), node=b.address if remote else None)
    err = info.value.error
    assert err.code == SysErrors.OPERATION_ERROR.value
    assert err.details == "it went wrong"
    assert err.cause is not None and err.cause.code == SysErrors.TIMEOUT.value


@pytest.mark.parametrize("remote", [True, False], ids=["remote", "local"])
async def test_unexpected_exception_is_an_internal_error(pair, remote, caplog):
    a, b, _ = pair
    with caplog.at_level(logging.CRITICAL, logger="mn.bus.bus"):  # the traceback is expected
        with pytest.raises(OperationError) as info:
            await a.call(BusMemCrashMsg(), node=b.address if remote else None)
    assert info.value.error.code == SysErrors.INTERNAL.value == "SYS.1000"
    assert "ValueError: boom" in info.value.error.details


async def test_newer_message_version_is_refused(pair, harness, monkeypatch):
    a, b, _ = pair
    original = BusMemVersionedMsg.to_wire

    def newer(self):
        wire = original(self)
        wire["version"] = BusMemVersionedMsg.VERSION + 1
        return wire

    monkeypatch.setattr(BusMemVersionedMsg, "to_wire", newer)
    with pytest.raises(OperationError) as info:
        await a.call(BusMemVersionedMsg(), node=b.address)
    assert info.value.error.code == SysErrors.UNKNOWN_MESSAGE_ERROR.value == "SYS.1008"
    assert "version 4" in info.value.error.details
    assert harness.count(lambda addr, m: isinstance(m, BusMemVersionedMsg)) == 0
    # The current version is accepted.
    monkeypatch.setattr(BusMemVersionedMsg, "to_wire", original)
    await a.call(BusMemVersionedMsg(), node=b.address)
    assert harness.count(lambda addr, m: isinstance(m, BusMemVersionedMsg)) == 1


# -- redelivery --------------------------------------------------------------------

def request_delivery(msg: Message, message_id: str) -> Delivery:
    return Delivery(body=msg.to_wire(), message_id=message_id,
                    headers={"kind": KIND_REQUEST, "service": msg.SERVICE, "from": "test"})


async def test_duplicate_message_id_is_handled_once(pair, harness):
    _, b, _ = pair
    dup_id = new_uuid()
    b._on_delivery(request_delivery(BusMemPlainMsg(tag="dup"), dup_id))
    b._on_delivery(request_delivery(BusMemPlainMsg(tag="dup"), dup_id))  # a redelivery
    b._on_delivery(request_delivery(BusMemPlainMsg(tag="dup-sentinel"), new_uuid()))
    await harness.until_tag("dup-sentinel")
    assert harness.tags()["dup"] == 1


async def test_duplicate_message_id_through_the_broker_is_handled_once(pair, harness):
    a, b, _ = pair
    dup_id = new_uuid()
    for tag, message_id in (("bdup", dup_id), ("bdup", dup_id), ("bdup-sentinel", new_uuid())):
        await a._publish(BusMemPlainMsg(tag=tag).to_wire(), b.address, KIND_REQUEST,
                         message_id=message_id, headers={"service": SERVICE, "from": a.address})
    await harness.until_tag("bdup-sentinel")
    assert harness.tags()["bdup"] == 1


async def test_duplicate_event_is_delivered_once(pair):
    _, b, _ = pair
    got: list[str] = []
    b.subscribe(BusMemEvent, lambda e: got.append(e.value))
    dup_id = new_uuid()
    for value, message_id in (("x", dup_id), ("x", dup_id), ("y", new_uuid())):
        b._on_delivery(Delivery(body=BusMemEvent(value=value).to_wire(), message_id=message_id,
                                headers={"kind": KIND_EVENT}))
    assert got == ["x", "y"]


# -- events --------------------------------------------------------------------------

async def test_publish_reaches_subscribers_on_every_bus(pair):
    a, b, _ = pair
    loop = asyncio.get_running_loop()
    seen = {a.address: loop.create_future(), b.address: loop.create_future()}
    counts: Counter = Counter()

    def subscriber(address):
        def on_event(event: BusMemEvent) -> None:
            counts[address] += 1
            if not seen[address].done():
                seen[address].set_result(event)
        return on_event

    a.subscribe(BusMemEvent, subscriber(a.address))
    b.subscribe(BusMemEvent, subscriber(b.address))
    value = new_uuid()
    await a.publish(BusMemEvent(value=value))
    events = await asyncio.wait_for(asyncio.gather(*seen.values()), WAIT)
    assert [e.value for e in events] == [value, value]
    assert all(isinstance(e, BusMemEvent) for e in events)

    # Async subscribers work too; an unsubscribed one hears nothing more.
    second = {a.address: loop.create_future(), b.address: loop.create_future()}

    def async_subscriber(address):
        async def on_event(event: BusMemEvent) -> None:
            if event.value == "second" and not second[address].done():
                second[address].set_result(event)
        return on_event

    removed: list[BusMemEvent] = []
    unsubscribe = a.subscribe(BusMemEvent, removed.append)
    unsubscribe()
    a.subscribe(BusMemEvent, async_subscriber(a.address))
    b.subscribe(BusMemEvent, async_subscriber(b.address))
    await b.publish(BusMemEvent(value="second"))
    await asyncio.wait_for(asyncio.gather(*second.values()), WAIT)
    assert removed == []
    # Every subscriber of a bus runs on the same delivery: once per event each.
    assert counts == {a.address: 2, b.address: 2}


# -- late replies ----------------------------------------------------------------------

async def test_late_reply_is_ignored(pair, harness, caplog):
    a, b, _ = pair
    replies: asyncio.Queue[Delivery] = asyncio.Queue()
    transport = a._transport
    original = transport._on_delivery

    def spy(delivery: Delivery) -> None:
        original(delivery)  # the bus's own handling must not raise
        if delivery.headers.get("kind") == KIND_REPLY:
            replies.put_nowait(delivery)

    transport._on_delivery = spy
    token = new_uuid()
    with pytest.raises(CallTimeoutError):
        await a.call(BusMemBlockMsg(token=token), node=b.address, timeout=0.2)
    with caplog.at_level(logging.WARNING):
        harness.open(token)
        late = await asyncio.wait_for(replies.get(), WAIT)
        assert late.body["type"] == BusMemWhoReply.TYPE
        assert late.body["body"]["tag"] == token
        # The bus is fine afterwards: no leaked call, and the next call works.
        assert a._pending == {}
        assert (await a.call(BusMemPlainMsg(), node=b.address)).handledBy == b.address
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_stopped_bus_refuses_to_send(make_bus):
    bus = await make_bus()
    await bus.stop()
    with pytest.raises(OperationError) as info:
        await bus.publish(BusMemEvent(value="x"))
    assert info.value.error.code == SysErrors.UNDELIVERABLE_ERROR.value


async def test_stopping_bus_tells_remote_callers(pair, harness):
    a, b, _ = pair
    token = new_uuid()
    call = asyncio.create_task(a.call(BusMemBlockMsg(token=token), node=b.address, timeout=1.5))
    await harness.started(token)
    await b.stop(delete_inbox=True)
    with pytest.raises(OperationError) as info:
        await call
    assert info.value.error.code == SysErrors.MANAGEMENT_NODE_UNAVAILABLE_ERROR.value
