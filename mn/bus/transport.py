"""kombu plumbing of the bus: two threads, whatever the load.

kombu is blocking and its connections are not thread-safe, so the transport
owns exactly two connections, each used by one thread:

* the **consumer** thread drains this process's inbox and event queues and
  hands every delivery to the asyncio loop with ``call_soon_threadsafe``;
* the **publisher** thread takes publish requests from a queue, publishes
  them (with pipelined publisher confirms on AMQP) and resolves an asyncio
  future when the broker has confirmed.

Both reconnect by themselves when the broker goes away; the inbox of a
management node is durable and its messages persistent, so what the broker
confirmed survives a broker restart.

Topology (the same on ``amqp://`` and ``memory://``):

* ``zstack.p2p`` (direct, durable): point-to-point. Each MN's inbox
  ``zstack.mn.<uuid>`` (durable) is bound with its uuid; a client's inbox
  ``zstack.client.<uuid>`` is transient.
* ``zstack.event`` (topic, durable): broadcasts, routing key = event type.
  Each process has a transient ``zstack.event.<uuid>`` queue bound with ``#``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.serialization import dumps as kombu_dumps

log = logging.getLogger(__name__)

P2P_EXCHANGE = Exchange("zstack.p2p", type="direct", durable=True)
EVENT_EXCHANGE = Exchange("zstack.event", type="topic", durable=True)

#: How kombu retries a publish on memory:// (no broker to lose).
PUBLISH_RETRY_POLICY = {"max_retries": 40, "interval_start": 0.1, "interval_step": 0.5, "interval_max": 2.0}
#: A publish the broker has not confirmed this many seconds after it was
#: asked for fails clearly (the broker was away longer than a restart takes).
PUBLISH_GIVE_UP = 60.0
#: Most messages published before the publisher looks for confirms again.
PUBLISH_BATCH = 500
#: Seconds between reconnect attempts of the consumer.
RECONNECT_DELAY = 0.5
#: The consumer checks for a stop request this often (seconds).
DRAIN_SLICE = 0.25


def node_inbox(node_uuid: str) -> Queue:
    return Queue(f"zstack.mn.{node_uuid}", P2P_EXCHANGE, routing_key=node_uuid, durable=True)


def client_inbox(address: str) -> Queue:
    return Queue(f"zstack.client.{address}", P2P_EXCHANGE, routing_key=address,
                 durable=False, auto_delete=True)


def event_queue(address: str) -> Queue:
    return Queue(f"zstack.event.{address}", EVENT_EXCHANGE, routing_key="#",
                 durable=False, auto_delete=True)


class LoopFeeder:
    """Runs callbacks from I/O threads on the event loop, in order, in batches.

    One ``call_soon_threadsafe`` (a self-pipe write and a loop wake-up) per
    batch instead of per message: under load most puts find a drain already
    scheduled and cost only a deque append.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._items: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._scheduled = False

    def put(self, fn: Callable, *args: Any) -> None:
        with self._lock:
            self._items.append((fn, args))
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # loop closed while shutting down
            pass

    def _drain(self) -> None:
        with self._lock:
            items, self._items = self._items, collections.deque()
            self._scheduled = False
        for fn, args in items:
            try:
                fn(*args)
            except Exception:
                log.exception("bus callback %r failed", fn)


@dataclass
class Delivery:
    """A received message as plain data, safe to pass between threads."""

    body: dict[str, Any]
    headers: dict[str, Any]
    correlation_id: str | None = None
    reply_to: str | None = None
    message_id: str | None = None


@dataclass
class _Publish:
    body: dict[str, Any]
    exchange: Exchange
    routing_key: str
    headers: dict[str, Any]
    persistent: bool
    correlation_id: str | None
    reply_to: str | None
    message_id: str | None
    future: asyncio.Future | None = field(default=None, repr=False)
    created: float = field(default_factory=time.monotonic)


class KombuTransport:
    """Connections, topology and the two I/O threads of one bus endpoint."""

    def __init__(self, url: str, address: str, *, durable_inbox: bool,
                 on_delivery: Callable[[Delivery], None], loop: asyncio.AbstractEventLoop):
        self.url = url
        self.address = address
        self.is_memory = url.startswith("memory://")
        self._inbox = node_inbox(address) if durable_inbox else client_inbox(address)
        self._events = event_queue(address)
        self._on_delivery = on_delivery
        self._loop = loop
        self._feeder = LoopFeeder(loop)
        self._outbox: queue.SimpleQueue[_Publish | None] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._consuming = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- life cycle -------------------------------------------------------

    def _connection(self) -> Connection:
        options: dict[str, Any] = {}
        if self.is_memory:
            # The virtual transport polls; keep latency low for in-process use.
            options["polling_interval"] = 0.001
        return Connection(self.url, transport_options=options, heartbeat=0, connect_timeout=5)

    def start(self, timeout: float = 30.0) -> None:
        """Declare the topology and start both threads; blocks until consuming."""
        for target, name in ((self._consume_loop, "bus-consumer"), (self._publish_loop, "bus-publisher")):
            thread = threading.Thread(target=target, name=f"{name}-{self.address[:8]}", daemon=True)
            thread.start()
            self._threads.append(thread)
        if not self._consuming.wait(timeout):
            raise ConnectionError(f"could not reach the message bus at {_safe_url(self.url)} in {timeout:g}s")

    def stop(self, delete_inbox: bool = False) -> None:
        self._stopping.set()
        self._outbox.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
        if delete_inbox:
            try:
                with self._connection() as conn:
                    self._inbox(conn.default_channel).delete()
            except Exception as exc:  # the broker may be gone; nothing to clean then
                log.warning("could not delete inbox %s: %s", self._inbox.name, exc)

    # -- publishing ---------------------------------------------------------

    def publish(self, body: dict[str, Any], *, routing_key: str, event: bool = False,
                headers: dict[str, Any] | None = None, persistent: bool = True,
                correlation_id: str | None = None, reply_to: str | None = None,
                message_id: str | None = None) -> asyncio.Future:
        """Queue a publish; the future resolves once the broker confirmed it."""
        future = self._loop.create_future()
        self._outbox.put(_Publish(body, EVENT_EXCHANGE if event else P2P_EXCHANGE, routing_key,
                                  headers or {}, persistent, correlation_id, reply_to, message_id, future))
        return future

    def _publish_loop(self) -> None:
        if self.is_memory:
            self._publish_loop_memory()
        else:
            self._publish_loop_amqp()

    def _publish_loop_memory(self) -> None:
        conn = self._connection()
        producer = Producer(conn, serializer="json", auto_declare=False)
        producer.maybe_declare(P2P_EXCHANGE)
        producer.maybe_declare(EVENT_EXCHANGE)
        while (item := self._outbox.get()) is not None:
            try:
                producer.publish(
                    item.body, exchange=item.exchange, routing_key=item.routing_key,
                    headers=item.headers, correlation_id=item.correlation_id,
                    reply_to=item.reply_to, message_id=item.message_id,
                    retry=True, retry_policy=PUBLISH_RETRY_POLICY)
            except Exception as exc:
                self._resolve(item.future, exc)
            else:
                self._resolve(item.future, None)
        conn.release()

    def _publish_loop_amqp(self) -> None:
        """Publish with pipelined confirms; republish what a lost connection left unconfirmed.

        Waiting for each confirm before the next publish (kombu's
        ``confirm_publish``) caps a connection at one message per broker
        round trip. Here every queued message is sent, and confirms settle
        futures as they arrive (``multiple=True`` acks settle a range). The
        guarantee is the same: a future resolves only on the broker's ack.
        After a reconnect the unconfirmed messages go again, in order; the
        receiver drops duplicates by message id.
        """
        unconfirmed: dict[int, _Publish] = {}
        backlog: collections.deque[_Publish] = collections.deque()
        stopping = False
        while not (stopping and not backlog and not unconfirmed):
            conn = None
            try:
                conn = self._connection()
                conn.connect()
                channel = conn.channel()
                P2P_EXCHANGE(channel).declare()
                EVENT_EXCHANGE(channel).declare()
                channel.confirm_select()
                settle = _Confirms(unconfirmed, self._resolve)
                channel.events["basic_ack"].add(settle.ack)
                channel.events["basic_nack"].add(settle.nack)
                backlog.extendleft(reversed(list(unconfirmed.values())))
                unconfirmed.clear()
                tag = 0
                while not (stopping and not backlog and not unconfirmed):
                    stopping = self._take_outbox(backlog, block=not unconfirmed and not stopping) or stopping
                    for _ in range(min(len(backlog), PUBLISH_BATCH)):
                        item = backlog.popleft()
                        tag += 1
                        unconfirmed[tag] = item
                        channel.basic_publish(self._amqp_message(channel, item),
                                              exchange=item.exchange.name, routing_key=item.routing_key)
                    if unconfirmed:
                        try:
                            conn.drain_events(timeout=0.002)
                        except socket.timeout:
                            pass
                    self._requeue_nacked(settle, unconfirmed, backlog)
            except Exception as exc:
                log.warning("bus publisher lost the broker (%s: %s); %d message(s) wait",
                            type(exc).__name__, exc, len(unconfirmed) + len(backlog))
                self._expire(unconfirmed, backlog)
                time.sleep(RECONNECT_DELAY)
            finally:
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:
                        pass

    def _take_outbox(self, backlog: collections.deque, *, block: bool) -> bool:
        """Move queued publishes to the backlog; True when asked to stop."""
        try:
            item = self._outbox.get(timeout=0.5) if block else self._outbox.get_nowait()
        except queue.Empty:
            return False
        while True:
            if item is None:
                return True
            backlog.append(item)
            if len(backlog) >= PUBLISH_BATCH:
                return False
            try:
                item = self._outbox.get_nowait()
            except queue.Empty:
                return False

    @staticmethod
    def _amqp_message(channel, item: _Publish):
        content_type, encoding, data = kombu_dumps(item.body, serializer="json")
        properties = {"delivery_mode": 2 if item.persistent else 1}
        for name in ("correlation_id", "reply_to", "message_id"):
            if getattr(item, name):
                properties[name] = getattr(item, name)
        return channel.prepare_message(data, content_type=content_type, content_encoding=encoding,
                                       headers=item.headers, properties=properties)

    @staticmethod
    def _requeue_nacked(settle: "_Confirms", unconfirmed: dict, backlog: collections.deque) -> None:
        if settle.nacked:
            backlog.extendleft(reversed(settle.nacked))
            settle.nacked.clear()

    def _expire(self, unconfirmed: dict, backlog: collections.deque) -> None:
        deadline = time.monotonic() - PUBLISH_GIVE_UP
        for tag, item in list(unconfirmed.items()):
            if item.created < deadline:
                del unconfirmed[tag]
                self._resolve(item.future, ConnectionError("the broker did not confirm in time"))
        for item in [i for i in backlog if i.created < deadline]:
            backlog.remove(item)
            self._resolve(item.future, ConnectionError("the broker was unreachable"))

    def _resolve(self, future: asyncio.Future | None, exc: BaseException | None) -> None:
        if future is not None:
            self._feeder.put(_settle, future, exc)

    # -- consuming ----------------------------------------------------------

    def _consume_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                with self._connection() as conn:
                    conn.ensure_connection(max_retries=1)
                    channel = conn.channel()
                    consumer = Consumer(channel, queues=[self._inbox, self._events],
                                        callbacks=[self._on_message], accept=["json"])
                    consumer.qos(prefetch_count=2000)
                    with consumer:
                        if not self._consuming.is_set():
                            log.info("bus connected to %s as %s", _safe_url(self.url), self.address)
                        else:
                            log.warning("bus reconnected to %s", _safe_url(self.url))
                        self._consuming.set()
                        while not self._stopping.is_set():
                            try:
                                conn.drain_events(timeout=DRAIN_SLICE)
                            except socket.timeout:
                                pass
            except Exception as exc:
                if self._stopping.is_set():
                    break
                log.warning("bus consumer lost the broker (%s: %s); reconnecting",
                            type(exc).__name__, exc)
                time.sleep(RECONNECT_DELAY)

    def _on_message(self, body: dict[str, Any], message) -> None:
        props = message.properties
        delivery = Delivery(body=body, headers=dict(message.headers or {}),
                            correlation_id=props.get("correlation_id"),
                            reply_to=props.get("reply_to"),
                            message_id=props.get("message_id"))
        # Ack on receipt: from here the MN's own durability (durable flows,
        # jobs) takes over; a redelivery after a lost ack is filtered by
        # message id in the bus.
        message.ack()
        self._feeder.put(self._on_delivery, delivery)

    # -- orphans --------------------------------------------------------------

    def take_orphan_inbox(self, node_uuid: str) -> list[Delivery]:
        """Empty and delete the durable inbox of a dead MN; blocking.

        Called by the MN that fenced the dead node, so that messages nobody
        consumed are re-routed instead of lost.
        """
        orphans: list[Delivery] = []
        inbox = node_inbox(node_uuid)
        with self._connection() as conn:
            bound = inbox(conn.default_channel)
            try:
                bound.declare()
            except Exception as exc:
                log.warning("cannot open inbox of dead node %s: %s", node_uuid, exc)
                return orphans
            while True:
                message = bound.get(accept=["json"])
                if message is None:
                    break
                props = message.properties
                orphans.append(Delivery(body=message.decode(), headers=dict(message.headers or {}),
                                        correlation_id=props.get("correlation_id"),
                                        reply_to=props.get("reply_to"),
                                        message_id=props.get("message_id")))
                message.ack()
            bound.delete()
        return orphans


def _settle(future: asyncio.Future, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is None:
        future.set_result(None)
    else:
        future.set_exception(exc)


class _Confirms:
    """Settles futures from the broker's basic.ack / basic.nack frames."""

    def __init__(self, unconfirmed: dict[int, _Publish], resolve):
        self.unconfirmed = unconfirmed
        self.resolve = resolve
        self.nacked: list[_Publish] = []

    def _take(self, tag: int, multiple: bool) -> list[_Publish]:
        if not multiple:
            item = self.unconfirmed.pop(tag, None)
            return [item] if item else []
        tags = [t for t in self.unconfirmed if t <= tag]
        return [self.unconfirmed.pop(t) for t in tags]

    def ack(self, tag: int, multiple: bool) -> None:
        for item in self._take(tag, multiple):
            self.resolve(item.future, None)

    def nack(self, tag: int, multiple: bool) -> None:
        # The broker could not take them (e.g. a disk alarm): send again.
        self.nacked.extend(self._take(tag, multiple))


def _safe_url(url: str) -> str:
    """The URL without its password, for logs."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"
