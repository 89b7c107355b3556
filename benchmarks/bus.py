"""Request/reply speed of CloudBus over RabbitMQ, against raw kombu as the floor.

Run: python benchmarks/bus.py [--url amqp://...] [--calls N] [--concurrency C [C ...]]

Measured in one run, on the same broker:

* **CloudBus**: two members A and B (one process, one loop, one ring holding
  both) and A calls B with ``node=B.address``: request and reply both cross
  the broker (A -> broker -> B -> broker -> A).
* **floor**: the same pattern with raw kombu and the transport's guarantees
  (persistent requests to a durable queue, transient replies, publisher
  confirms with ``confirm_publish``, ack on receipt): a requester thread
  publishes a JSON request with ``reply_to`` + ``correlation_id`` and a
  responder thread answers to the requester's queue. One connection and one
  thread per side, no thread hand-offs, acks batched: as fast as kombu goes.
* **ratio** = CloudBus / floor round trips per second, per concurrency level.
* for information: the floor with *asynchronous* publisher confirms (the
  same guarantee, a call completes once its reply arrived and its request
  was confirmed, but confirms are pipelined instead of one round trip per
  publish), the local call rate (A calls itself, the broker is skipped) and
  the ``memory://`` transport rate.

Concurrency 1 is sequential latency (p50/p99 are printed); concurrency C keeps
C calls in flight. Figures go to stdout and to benchmarks/results/bus.json.
Queues get unique names and are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import faulthandler
import json
import logging
import os
import platform
import signal
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kombu import Connection, Consumer, Producer, Queue  # noqa: E402

from mn.bus import CloudBus, Message, Reply  # noqa: E402
from mn.ring import Ring  # noqa: E402

DEFAULT_URL = os.environ.get("ZSTACK_BENCH_BUS_URL") or "amqp://guest:guest@127.0.0.1:5672//"
RESULTS = ROOT / "benchmarks" / "results" / "bus.json"
RUN_ID = uuid.uuid4().hex[:8]
SERVICE = "bench.bus"
#: Seconds a single call / publish confirm may take before the run fails.
CALL_TIMEOUT = 10.0
#: Payload of every request, to make it a realistic small message.
PAYLOAD = "x" * 64

log = logging.getLogger("bench.bus")

#: Every queue this run creates, deleted at the end whatever happens.
_QUEUES: set[str] = set()


class BenchPingMsg(Message):
    SERVICE = SERVICE
    seq: int = 0
    payload: str = ""


class BenchPongReply(Reply):
    seq: int = 0


async def pong(msg: BenchPingMsg, request) -> BenchPongReply:
    return BenchPongReply(seq=msg.seq)


# -- measuring ------------------------------------------------------------------


@dataclass
class Run:
    """Completed round trips of one measurement."""

    calls: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    capped: bool = False  # stopped by the time cap before all calls were done
    cpu: float = 0.0  # CPU seconds of this whole process (all threads) during the run

    @property
    def cpu_us(self) -> float | None:
        return self.cpu / self.calls * 1e6 if self.calls else None

    @property
    def rate(self) -> float:
        return self.calls / self.elapsed if self.elapsed > 0 else 0.0

    def pct_ms(self, p: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


async def drive(call: Callable[[int], Awaitable[object]], total: int, concurrency: int,
                max_seconds: float) -> Run:
    """Make ``total`` calls keeping ``concurrency`` in flight, for at most ``max_seconds``."""
    run = Run()
    issued = 0
    deadline = time.perf_counter() + max_seconds

    async def worker() -> None:
        nonlocal issued
        while issued < total and time.perf_counter() < deadline:
            issued += 1
            t0 = time.perf_counter()
            await call(issued)
            run.latencies.append(time.perf_counter() - t0)

    start, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))),
                           max_seconds + CALL_TIMEOUT + 5)
    run.elapsed = time.perf_counter() - start
    run.cpu = time.process_time() - cpu0
    run.calls = len(run.latencies)
    run.capped = run.calls < total
    return run


# -- CloudBus -------------------------------------------------------------------


async def bench_cloudbus(url: str, calls: int, levels: list[int], max_seconds: float,
                         *, local: bool) -> tuple[dict[int, Run], dict[int, Run]]:
    """A calls B across the broker at each level; with ``local`` also A calls A."""
    a_addr, b_addr = f"bench-{RUN_ID}-a-{uuid.uuid4().hex[:6]}", f"bench-{RUN_ID}-b-{uuid.uuid4().hex[:6]}"
    if not url.startswith("memory://"):
        _QUEUES.update({f"zstack.mn.{a_addr}", f"zstack.mn.{b_addr}",
                        f"zstack.event.{a_addr}", f"zstack.event.{b_addr}"})
    ring = Ring([a_addr, b_addr])
    a = CloudBus(url, a_addr, ring, member=True, call_timeout=CALL_TIMEOUT)
    b = CloudBus(url, b_addr, ring, member=True, call_timeout=CALL_TIMEOUT)
    for bus in (a, b):
        bus.register(SERVICE, pong)
    remote: dict[int, Run] = {}
    local_runs: dict[int, Run] = {}
    started: list[CloudBus] = []
    try:
        for bus in (a, b):
            await asyncio.wait_for(bus.start(), 40)
            started.append(bus)

        async def call_b(seq: int) -> object:
            return await a.call(BenchPingMsg(seq=seq, payload=PAYLOAD), node=b.address)

        async def call_self(seq: int) -> object:
            return await a.call(BenchPingMsg(seq=seq, payload=PAYLOAD))

        for level in levels:
            await drive(call_b, max(50, min(500, calls // 10)), level, 5)  # warm up
            remote[level] = await drive(call_b, calls, level, max_seconds)
            if local:
                await drive(call_self, 200, level, 2)
                local_runs[level] = await drive(call_self, calls, level, max_seconds)
    finally:
        for bus in reversed(started):
            try:
                await asyncio.wait_for(bus.stop(delete_inbox=True), 20)
            except Exception as exc:
                log.warning("stopping bus %s: %s", bus.address, exc)
    return remote, local_runs


# -- raw kombu floor ---------------------------------------------------------------


def _connection(url: str, *, confirm: bool) -> Connection:
    options = {"read_timeout": CALL_TIMEOUT, "write_timeout": CALL_TIMEOUT}
    if confirm:
        options["confirm_publish"] = True
    return Connection(url, transport_options=options, heartbeat=0, connect_timeout=5)


def _queue(name: str, *, durable: bool) -> Queue:
    _QUEUES.add(name)
    # x-expires: the broker drops the queue by itself if a crash skipped cleanup.
    return Queue(name, routing_key=name, durable=durable, queue_arguments={"x-expires": 300_000})


class _Confirms:
    """Asynchronous publisher confirms of one channel: tag -> callback on ack."""

    def __init__(self, channel):
        self.waiting: collections.OrderedDict[int, Callable[[], None] | None] = collections.OrderedDict()
        self.seq = 0
        self.nacked = 0
        channel.confirm_select()
        channel.events["basic_ack"].add(self._ack)
        channel.events["basic_nack"].add(self._nack)

    def published(self, on_confirm: Callable[[], None] | None = None) -> None:
        self.seq += 1
        self.waiting[self.seq] = on_confirm

    def _settle(self, tag: int, multiple: bool) -> list[Callable[[], None] | None]:
        done = []
        if multiple:
            while self.waiting and next(iter(self.waiting)) <= tag:
                done.append(self.waiting.popitem(last=False)[1])
        elif tag in self.waiting:
            done.append(self.waiting.pop(tag))
        return done

    def _ack(self, tag: int, multiple: bool) -> None:
        for callback in self._settle(tag, multiple):
            if callback is not None:
                callback()

    def _nack(self, tag: int, multiple: bool) -> None:
        self.nacked += len(self._settle(tag, multiple))


class FloorResponder(threading.Thread):
    """Consumes requests, acks them in batches and publishes the replies."""

    def __init__(self, url: str, queue_name: str, *, async_confirms: bool):
        super().__init__(name="floor-responder", daemon=True)
        self.url, self.queue_name, self.async_confirms = url, queue_name, async_confirms
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with _connection(self.url, confirm=not self.async_confirms) as conn:
                channel = conn.channel()
                inbox: collections.deque = collections.deque()
                consumer = Consumer(channel, queues=[_queue(self.queue_name, durable=True)],
                                    callbacks=[lambda body, message: inbox.append((body, message))],
                                    accept=["json"])
                consumer.qos(prefetch_count=2000)
                producer = Producer(channel, serializer="json", auto_declare=False)
                confirms = _Confirms(channel) if self.async_confirms else None
                with consumer:
                    self.ready.set()
                    while not self.stopping.is_set():
                        if not inbox:
                            try:
                                conn.drain_events(timeout=0.2)
                            except socket.timeout:
                                continue
                        while inbox:
                            batch = list(inbox)
                            inbox.clear()
                            channel.basic_ack(batch[-1][1].delivery_tag, multiple=True)
                            for body, message in batch:
                                props = message.properties
                                producer.publish(
                                    {"type": "BenchPongReply", "version": 1,
                                     "body": {"seq": body["body"]["seq"], "success": True, "error": None}},
                                    exchange="", routing_key=props["reply_to"],
                                    correlation_id=props["correlation_id"], delivery_mode=1,
                                    headers={"kind": "reply", "from": "floor-responder"},
                                    confirm_timeout=CALL_TIMEOUT)
                                if confirms is not None:
                                    confirms.published()
        except BaseException as exc:  # reported by the requester side
            self.error = exc
            self.ready.set()


class FloorRequester:
    """Keeps ``concurrency`` requests outstanding; one connection, one thread."""

    def __init__(self, url: str, request_queue: str, reply_queue: str, *, async_confirms: bool):
        self.url, self.request_queue, self.reply_queue = url, request_queue, reply_queue
        self.async_confirms = async_confirms

    def run(self, total: int, concurrency: int, max_seconds: float) -> Run:
        with _connection(self.url, confirm=not self.async_confirms) as conn:
            channel = conn.channel()
            replies: collections.deque = collections.deque()
            consumer = Consumer(channel, queues=[_queue(self.reply_queue, durable=True)],
                                callbacks=[lambda body, message: replies.append(message)],
                                accept=["json"])
            consumer.qos(prefetch_count=2000)
            producer = Producer(channel, serializer="json", auto_declare=False)
            confirms = _Confirms(channel) if self.async_confirms else None
            with consumer:
                return self._loop(conn, channel, producer, confirms, replies, total, concurrency, max_seconds)

    def _loop(self, conn, channel, producer, confirms, replies, total, concurrency, max_seconds) -> Run:
        run = Run()
        # correlation id -> [start time, reply seen, request confirmed]
        inflight: dict[str, list] = {}
        sent = 0
        start, cpu0 = time.perf_counter(), time.process_time()
        # When each free slot freed up: a request's latency counts from there,
        # as a caller's would (with sync confirms a burst of sends queues up).
        free: collections.deque[float] = collections.deque([start] * min(concurrency, total))

        def finish(corr: str) -> None:
            # A call is done once its reply arrived and its request was
            # confirmed (CloudBus.call awaits both); the slot is then free
            # for the next request, like an awaiting caller.
            now = time.perf_counter()
            run.latencies.append(now - inflight.pop(corr)[0])
            free.append(now)

        def confirmed(corr: str) -> None:
            state = inflight[corr]
            state[2] = True
            if state[1]:
                finish(corr)

        def send() -> None:
            nonlocal sent
            sent += 1
            corr = uuid.uuid4().hex
            inflight[corr] = [free.popleft(), False, confirms is None]
            producer.publish(
                {"type": "BenchPingMsg", "version": 1, "body": {"seq": sent, "payload": PAYLOAD}},
                exchange="", routing_key=self.request_queue, reply_to=self.reply_queue,
                correlation_id=corr, delivery_mode=2,
                headers={"kind": "request", "service": SERVICE, "from": "floor-requester",
                         "deadline": time.time() + CALL_TIMEOUT},
                confirm_timeout=CALL_TIMEOUT)  # with sync confirms: returns once confirmed
            if confirms is not None:
                confirms.published(lambda: confirmed(corr))

        deadline = start + max_seconds
        hard_deadline = deadline + CALL_TIMEOUT
        while True:
            while free and sent < total and time.perf_counter() < deadline:
                send()
            if len(run.latencies) >= sent:
                break
            if time.perf_counter() > hard_deadline:
                raise TimeoutError(f"floor: {sent - len(run.latencies)} round trips unanswered")
            if not replies:
                try:
                    conn.drain_events(timeout=0.2)  # replies, and acks with async confirms
                except socket.timeout:
                    pass
            if replies:
                batch = list(replies)
                replies.clear()
                channel.basic_ack(batch[-1].delivery_tag, multiple=True)
                for message in batch:
                    corr = message.properties.get("correlation_id")
                    state = inflight.get(corr)
                    if state is None:
                        continue  # a late reply of an earlier run
                    state[1] = True
                    if state[2]:
                        finish(corr)
        run.elapsed = time.perf_counter() - start
        run.cpu = time.process_time() - cpu0
        run.calls = len(run.latencies)
        run.capped = run.calls < total
        if confirms is not None and confirms.nacked:
            raise RuntimeError(f"floor: the broker nacked {confirms.nacked} publishes")
        return run


def bench_floor(url: str, calls: int, levels: list[int], max_seconds: float, *,
                async_confirms: bool) -> dict[int, Run]:
    tag = "async" if async_confirms else "sync"
    request_queue = f"bench.floor.{RUN_ID}.{tag}.requests"
    reply_queue = f"bench.floor.{RUN_ID}.{tag}.replies"
    responder = FloorResponder(url, request_queue, async_confirms=async_confirms)
    responder.start()
    try:
        if not responder.ready.wait(20) or responder.error is not None:
            raise RuntimeError(f"floor responder did not start: {responder.error!r}")
        requester = FloorRequester(url, request_queue, reply_queue, async_confirms=async_confirms)
        runs: dict[int, Run] = {}
        for level in levels:
            requester.run(max(50, min(500, calls // 10)), level, 5)  # warm up
            runs[level] = requester.run(calls, level, max_seconds)
            if responder.error is not None:
                raise RuntimeError(f"floor responder failed: {responder.error!r}")
        return runs
    finally:
        responder.stopping.set()
        responder.join(5)


# -- housekeeping -----------------------------------------------------------------


def delete_queues(url: str) -> None:
    """Delete every queue this run declared (idempotent on RabbitMQ)."""
    if url.startswith("memory://") or not _QUEUES:
        return
    try:
        with _connection(url, confirm=False) as conn:
            conn.ensure_connection(max_retries=2)
            for name in sorted(_QUEUES):
                channel = conn.channel()
                try:
                    channel.queue_delete(name)
                except Exception as exc:
                    log.warning("could not delete queue %s: %s", name, exc)
                finally:
                    try:
                        channel.close()
                    except Exception:
                        pass
    except Exception as exc:
        log.warning("could not clean up queues %s: %s", sorted(_QUEUES), exc)


def broker_version(url: str) -> str:
    with _connection(url, confirm=False) as conn:
        conn.ensure_connection(max_retries=2, timeout=5)
        props = conn.connection.server_properties
        return f"{props.get('product', 'broker')} {props.get('version', '?')}"


def safe_url(url: str) -> str:
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    user = rest.rpartition("@")[0].partition(":")[0]
    return f"{scheme}://{user}:***@{rest.rpartition('@')[2]}"


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


# -- main -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="AMQP broker URL (env ZSTACK_BENCH_BUS_URL)")
    parser.add_argument("--calls", type=int, default=5000, help="round trips per measurement")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 100],
                        help="calls in flight, one measurement per level")
    parser.add_argument("--max-seconds", type=float, default=8.0,
                        help="cap of one measurement; the rate is then over the calls done")
    parser.add_argument("--skip-extras", action="store_true",
                        help="only CloudBus and the floor (no local, memory:// or async-confirm runs)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    levels = sorted(set(args.concurrency))
    if args.calls < 1 or levels[0] < 1:
        parser.error("--calls and --concurrency must be positive")

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Last resort against hangs: dump every thread's stack and leave.
    watchdog_s = 180
    faulthandler.dump_traceback_later(watchdog_s, exit=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    url = args.url
    t_start = time.perf_counter()
    try:
        version = broker_version(url)
    except Exception as exc:
        print(f"cannot reach the broker at {safe_url(url)}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    try:
        print(f"bus benchmark: {safe_url(url)} ({version}), {args.calls:,} calls per measurement, "
              f"concurrency {', '.join(map(str, levels))}, python {platform.python_version()}",
              flush=True)
        ours, local = asyncio.run(bench_cloudbus(url, args.calls, levels, args.max_seconds,
                                                 local=not args.skip_extras))
        print("  CloudBus done", flush=True)
        floor = bench_floor(url, args.calls, levels, args.max_seconds, async_confirms=False)
        print("  raw kombu floor done", flush=True)
        floor_async: dict[int, Run] = {}
        memory: dict[int, Run] = {}
        if not args.skip_extras:
            floor_async = bench_floor(url, args.calls, levels, args.max_seconds, async_confirms=True)
            memory, _ = asyncio.run(bench_cloudbus("memory://", args.calls, levels,
                                                   min(args.max_seconds, 5.0), local=False))
            print("  extras done", flush=True)
    except Exception as exc:
        log.exception("bus benchmark failed")
        print(f"bus benchmark failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        delete_queues(url)
        faulthandler.cancel_dump_traceback_later()
    total_s = time.perf_counter() - t_start

    figures: dict[str, object] = {
        "broker": version, "url": safe_url(url), "calls": args.calls, "concurrency": levels,
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "total_seconds": round(total_s, 1),
    }
    rows: list[tuple[str, int, Run | float | None]] = []
    for level in levels:
        o, f = ours[level], floor[level]
        ratio = o.rate / f.rate if f.rate else None
        figures.update({
            f"roundtrips_per_s_c{level}": _r(o.rate),
            f"p50_ms_c{level}": _r(o.pct_ms(50), 3), f"p99_ms_c{level}": _r(o.pct_ms(99), 3),
            f"floor_roundtrips_per_s_c{level}": _r(f.rate),
            f"floor_p50_ms_c{level}": _r(f.pct_ms(50), 3), f"floor_p99_ms_c{level}": _r(f.pct_ms(99), 3),
            f"ratio_c{level}": _r(ratio, 3),
            f"cpu_us_per_roundtrip_c{level}": _r(o.cpu_us),
            f"floor_cpu_us_per_roundtrip_c{level}": _r(f.cpu_us),
        })
        rows.append(("CloudBus A->B->A (RabbitMQ)", level, o))
        rows.append(("raw kombu floor", level, f))
        rows.append(("ratio CloudBus / floor", level, ratio))
        if level in floor_async:
            fa = floor_async[level]
            ratio_async = o.rate / fa.rate if fa.rate else None
            figures.update({
                f"floor_async_confirms_roundtrips_per_s_c{level}": _r(fa.rate),
                f"floor_async_confirms_p50_ms_c{level}": _r(fa.pct_ms(50), 3),
                f"floor_async_confirms_p99_ms_c{level}": _r(fa.pct_ms(99), 3),
                f"ratio_async_confirms_c{level}": _r(ratio_async, 3),
            })
            rows.append(("info: raw kombu, async confirms", level, fa))
            rows.append(("info: CloudBus / async confirms", level, ratio_async))
        if level in local:
            figures[f"local_calls_per_s_c{level}"] = _r(local[level].rate)
            figures[f"local_p50_ms_c{level}"] = _r(local[level].pct_ms(50), 3)
            rows.append(("info: CloudBus A->A (no broker)", level, local[level]))
        if level in memory:
            figures[f"memory_roundtrips_per_s_c{level}"] = _r(memory[level].rate)
            figures[f"memory_p50_ms_c{level}"] = _r(memory[level].pct_ms(50), 3)
            rows.append(("info: CloudBus A->B->A memory://", level, memory[level]))
        rows.append(("", level, None))

    width = 34
    print()
    print(f"{'':{width}} {'conc':>5} {'calls':>7} {'round trips/s':>14} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'CPU us/rt':>9}")
    for name, level, value in rows:
        if not name:
            print()
        elif isinstance(value, Run):
            capped = "*" if value.capped else " "
            print(f"{name:{width}} {level:>5} {value.calls:>6}{capped} {value.rate:>14,.0f} "
                  f"{_fmt(value.pct_ms(50), '8.3f')} {_fmt(value.pct_ms(99), '8.3f')} "
                  f"{_fmt(value.cpu_us, '9.0f')}")
        else:
            print(f"{name:{width}} {level:>5} {'':>7} {_fmt(value, '14.3f')}")
    if any(isinstance(v, Run) and v.capped for _, _, v in rows):
        print(f"* stopped by the time cap ({args.max_seconds:g} s, memory:// 5 s): rate over the calls done")
    print("floor: raw kombu, same guarantees (persistent requests, durable queues, confirm_publish, "
          "transient replies)")
    print("CPU us/rt: CPU time of this process (both ends, all threads; not the broker's) per round trip")
    print(f"total {total_s:.1f} s")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"bus": figures}, indent=2) + "\n")
    print(f"written to {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
