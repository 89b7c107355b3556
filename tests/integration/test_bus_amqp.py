"""CloudBus on a real RabbitMQ: routing, durable inboxes, adoption of a dead node's messages."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from typing import Callable

import pytest
from amqp.exceptions import NotFound
from kombu import Connection

from mn.bus import CloudBus, Message, Reply, Request
from mn.bus.transport import node_inbox
from mn.errors import OperationError, SysErrors
from mn.ids import new_uuid
from mn.ring import Ring

pytestmark = pytest.mark.integration

BUS_URL = os.environ.get("ZSTACK_TEST_BUS_URL", "amqp://guest:guest@127.0.0.1:5672//")
SERVICE = "busAmqpTest"
WAIT = 10.0


class BusAmqpRoutedMsg(Message):
    TYPE = "test.busamqp.RoutedMsg"
    SERVICE = SERVICE
    ROUTE_BY = "resourceUuid"
    resourceUuid: str
    tag: str = ""


class BusAmqpPlainMsg(Message):
    TYPE = "test.busamqp.PlainMsg"
    SERVICE = SERVICE
    tag: str = ""


class BusAmqpWhoReply(Reply):
    TYPE = "test.busamqp.WhoReply"
    handledBy: str = ""
    resourceUuid: str | None = None


class Harness:
    """Serves SERVICE on the buses it is given; records (address, message)."""

    def __init__(self) -> None:
        self.handled: list[tuple[str, Message]] = []
        self._watchers: list[tuple[Callable[[], bool], asyncio.Future]] = []

    def serve(self, bus: CloudBus) -> None:
        address = bus.address

        async def handle(msg: Message, request: Request) -> Reply:
            self.handled.append((address, msg))
            for condition, future in self._watchers:
                if not future.done() and condition():
                    future.set_result(None)
            return BusAmqpWhoReply(handledBy=address, resourceUuid=getattr(msg, "resourceUuid", None))

        bus.register(SERVICE, handle)

    def tagged(self, tag: str) -> list[tuple[str, Message]]:
        return [(address, msg) for address, msg in self.handled if getattr(msg, "tag", None) == tag]

    async def until(self, condition: Callable[[], bool], timeout: float = WAIT) -> None:
        if condition():
            return
        future = asyncio.get_running_loop().create_future()
        self._watchers.append((condition, future))
        try:
            await asyncio.wait_for(future, timeout)
        finally:
            self._watchers = [(c, f) for c, f in self._watchers if f is not future]


def _queue_depth(name: str) -> int | None:
    """Messages ready in queue ``name``, or None when it does not exist."""
    with Connection(BUS_URL, connect_timeout=5) as conn:
        try:
            return conn.default_channel.queue_declare(queue=name, passive=True).message_count
        except NotFound:
            return None


async def queue_depth(name: str) -> int | None:
    return await asyncio.get_running_loop().run_in_executor(None, _queue_depth, name)


def _delete_queues(names: list[str]) -> None:
    with Connection(BUS_URL, connect_timeout=5) as conn:
        for name in names:
            conn.default_channel.queue_delete(queue=name)


@pytest.fixture
def harness():
    return Harness()


@pytest.fixture
async def make_bus(harness):
    buses: list[CloudBus] = []
    inboxes: set[str] = set()

    async def make(*, address: str | None = None, ring: Ring | None = None, member: bool = True,
                   serve: bool = True) -> CloudBus:
        bus = CloudBus(BUS_URL, address or new_uuid(), ring, member=member, call_timeout=WAIT)
        if serve and member:
            harness.serve(bus)
        buses.append(bus)
        if member:
            inboxes.add(node_inbox(bus.address).name)
        await bus.start()
        return bus

    yield make
    await asyncio.gather(*(bus.stop(delete_inbox=True) for bus in buses))
    # Inboxes of buses a test stopped without deleting them (the test failed midway).
    await asyncio.get_running_loop().run_in_executor(None, _delete_queues, sorted(inboxes))


def owned_by(ring: Ring, node: str, n: int) -> list[str]:
    found: list[str] = []
    while len(found) < n:
        uuid = new_uuid()
        if ring.owner(uuid) == node:
            found.append(uuid)
    return found


async def test_route_by_resource_goes_to_ring_owner(make_bus, harness):
    a_addr, b_addr = new_uuid(), new_uuid()
    ring = Ring([a_addr, b_addr])
    a = await make_bus(address=a_addr, ring=ring)
    b = await make_bus(address=b_addr, ring=ring)
    uuids = [new_uuid() for _ in range(1000)]
    replies = await asyncio.wait_for(asyncio.gather(*(
        (a if i % 2 else b).call(BusAmqpRoutedMsg(resourceUuid=u)) for i, u in enumerate(uuids))), 20)
    expected = {u: ring.owner(u) for u in uuids}
    assert {r.resourceUuid: r.handledBy for r in replies} == expected
    owners = Counter(expected.values())
    assert owners[a_addr] > 300 and owners[b_addr] > 300
    assert len(harness.handled) == len(uuids)
    assert {msg.resourceUuid: address for address, msg in harness.handled} == expected
    # node= addressing over the broker.
    assert (await a.call(BusAmqpPlainMsg(), node=b_addr)).handledBy == b_addr
    assert (await b.call(BusAmqpPlainMsg(), node=a_addr)).handledBy == a_addr


async def test_message_to_a_stopped_member_waits_in_its_durable_inbox(make_bus, harness):
    a_addr, c_addr = new_uuid(), new_uuid()
    ring = Ring([a_addr, c_addr])
    a = await make_bus(address=a_addr, ring=ring)
    c = await make_bus(address=c_addr, ring=ring)
    await c.stop()  # the MN process is gone; its durable inbox stays
    inbox = node_inbox(c_addr).name
    assert await queue_depth(inbox) == 0

    tag = new_uuid()
    await a.send(BusAmqpPlainMsg(tag=tag), node=c_addr)  # returns once the broker confirmed it
    assert await queue_depth(inbox) == 1
    assert harness.tagged(tag) == []

    await make_bus(address=c_addr, ring=ring)  # the MN starts again with the same uuid
    await harness.until(lambda: bool(harness.tagged(tag)))
    assert [address for address, _ in harness.tagged(tag)] == [c_addr]
    assert await queue_depth(inbox) == 0


async def test_adopt_orphans_reroutes_one_way_messages_and_fails_waiting_requests(make_bus, harness):
    a_addr, b_addr, c_addr = new_uuid(), new_uuid(), new_uuid()
    ring = Ring([a_addr, b_addr, c_addr])
    a = await make_bus(address=a_addr, ring=ring)
    await make_bus(address=b_addr, ring=ring)
    c = await make_bus(address=c_addr, ring=ring)
    client = await make_bus(member=False)
    await c.stop()  # C dies: nothing consumes its inbox any more
    inbox = node_inbox(c_addr).name

    # One-way messages about resources C owns, sent before anyone noticed.
    resources = owned_by(ring, c_addr, 20)
    for u in resources:
        await a.send(BusAmqpRoutedMsg(resourceUuid=u, tag="orphan"))
    # And a request whose caller waits for C's reply.
    published = asyncio.Event()
    publish = client._publish

    async def publish_then_signal(*args, **kwargs):
        await publish(*args, **kwargs)
        published.set()

    client._publish = publish_then_signal
    call = asyncio.create_task(client.call(BusAmqpPlainMsg(tag="orphan-call"), node=c_addr, timeout=WAIT))
    await asyncio.wait_for(published.wait(), WAIT)
    assert await queue_depth(inbox) == len(resources) + 1
    assert harness.handled == []

    # Membership removes C from the ring, then the fencer adopts its inbox.
    assert ring.update([a_addr, b_addr])
    assert await a.adopt_orphans(c_addr) == len(resources) + 1

    with pytest.raises(OperationError) as info:
        await asyncio.wait_for(call, WAIT)
    assert info.value.error.code == SysErrors.MANAGEMENT_NODE_UNAVAILABLE_ERROR.value == "SYS.1012"
    assert c_addr in info.value.error.details

    await harness.until(lambda: len(harness.tagged("orphan")) >= len(resources))
    handled = {msg.resourceUuid: address for address, msg in harness.tagged("orphan")}
    assert len(harness.tagged("orphan")) == len(resources)  # each exactly once
    assert handled == {u: ring.owner(u) for u in resources}
    assert set(handled.values()) <= {a_addr, b_addr}
    assert harness.tagged("orphan-call") == []  # the failed request was not done after all

    assert await queue_depth(inbox) is None  # the dead node's inbox is gone
    assert await a.adopt_orphans(c_addr) == 0  # and adopting again finds nothing
    assert await queue_depth(inbox) is None
