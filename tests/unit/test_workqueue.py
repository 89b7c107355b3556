import asyncio
import random
from collections import defaultdict

import pytest

from mn.workqueue import QueueFullError, QueueStats, TaskTimeoutError, WorkQueues


def blocker():
    """Return (fn, release): fn runs until release() is called."""
    gate = asyncio.Event()

    async def fn():
        await gate.wait()
        return "released"

    return fn, gate.set


async def settle(rounds: int = 5) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


async def test_fifo_start_order_and_sync_level_under_load():
    rng = random.Random(1234)
    wq = WorkQueues()
    levels = {f"sig-{i}": (1, 2, 5)[i % 3] for i in range(100)}
    submitted = defaultdict(list)
    started = defaultdict(list)
    running = defaultdict(int)
    max_running = defaultdict(int)

    def make(sig, seq, delay):
        async def fn():
            started[sig].append(seq)
            running[sig] += 1
            max_running[sig] = max(max_running[sig], running[sig])
            try:
                await asyncio.sleep(delay)
            finally:
                running[sig] -= 1
            return seq

        return fn

    futures = []
    sigs = list(levels)
    for seq in range(10_000):
        sig = rng.choice(sigs)
        delay = 0 if rng.random() < 0.5 else rng.uniform(0, 0.001)
        submitted[sig].append(seq)
        futures.append((seq, wq.submit(sig, make(sig, seq, delay), sync_level=levels[sig])))

    results = await asyncio.gather(*(f for _, f in futures))

    assert results == [seq for seq, _ in futures]
    assert sum(len(v) for v in started.values()) == 10_000
    for sig in sigs:
        assert started[sig] == submitted[sig]
        assert max_running[sig] <= levels[sig]
    # The load is high enough that wider queues really ran in parallel.
    assert any(max_running[s] == 5 for s in sigs if levels[s] == 5)
    assert wq.signatures() == []


async def test_signatures_are_independent():
    wq = WorkQueues()
    block, release = blocker()
    blocked = wq.submit("a", block)

    async def quick():
        return "b"

    assert await asyncio.wait_for(wq.run("b", quick), 1) == "b"
    assert not blocked.done()
    release()
    assert await blocked == "released"


async def test_pending_limit():
    wq = WorkQueues()
    block, release = blocker()

    async def ok():
        return "ok"

    wq.submit("vm-1", block, pending_limit=3)  # starts at once: not pending
    pending = [wq.submit("vm-1", ok) for _ in range(3)]
    assert wq.stats("vm-1") == QueueStats(running=1, pending=3)

    with pytest.raises(QueueFullError, match=r"vm-1.*limit 3"):
        wq.submit("vm-1", ok)
    assert wq.stats("vm-1") == QueueStats(running=1, pending=3)

    release()
    assert await asyncio.gather(*pending) == ["ok"] * 3
    assert await wq.run("vm-1", ok) == "ok"
    assert wq.signatures() == []


async def test_settings_fixed_by_first_submit():
    wq = WorkQueues(default_sync_level=3)
    block, release = blocker()
    wq.submit("s", block, sync_level=1)
    second = wq.submit("s", block, sync_level=5)
    await settle()
    assert wq.stats("s") == QueueStats(running=1, pending=1)
    release()
    await second
    # Queue was dropped, so the next submit creates it afresh with the default.
    fns = [blocker() for _ in range(4)]
    futs = [wq.submit("s", fn) for fn, _ in fns]
    assert wq.stats("s") == QueueStats(running=3, pending=1)
    for _, rel in fns:
        rel()
    await asyncio.gather(*futs)


async def test_raising_task_releases_slot():
    wq = WorkQueues()
    order = []

    async def boom():
        order.append("boom")
        raise ValueError("bad")

    async def ok():
        order.append("ok")
        return 42

    failed = wq.submit("s", boom)
    good = wq.submit("s", ok)
    with pytest.raises(ValueError, match="bad"):
        await failed
    assert await good == 42
    assert order == ["boom", "ok"]
    assert wq.signatures() == []


async def test_synchronous_raise_in_fn_is_delivered():
    wq = WorkQueues()

    def not_a_coroutine_fn():
        raise KeyError("sync")

    with pytest.raises(KeyError):
        await wq.run("s", not_a_coroutine_fn)
    assert wq.signatures() == []


async def test_timeout_cancels_stuck_task_and_next_runs():
    wq = WorkQueues()
    cancelled = asyncio.Event()

    async def stuck():
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def ok():
        return "next"

    first = wq.submit("s", stuck, timeout=0.05, name="stuck-op")
    second = wq.submit("s", ok)
    with pytest.raises(TaskTimeoutError, match="stuck-op"):
        await first
    assert cancelled.is_set()
    assert await second == "next"
    assert wq.signatures() == []


async def test_default_timeout_and_own_timeout_error_passes_through():
    wq = WorkQueues(default_timeout=0.05)

    async def stuck():
        await asyncio.sleep(10)

    async def own_timeout():
        raise TimeoutError("from fn")

    with pytest.raises(TaskTimeoutError):
        await wq.run("s", stuck)
    with pytest.raises(TimeoutError, match="from fn"):
        await wq.run("s", own_timeout)


async def test_timeout_counts_from_start_not_submission():
    wq = WorkQueues()

    async def slow():
        await asyncio.sleep(0.15)
        return "slow"

    async def quick():
        await asyncio.sleep(0.01)
        return "quick"

    first = wq.submit("s", slow)
    second = wq.submit("s", quick, timeout=0.1)  # waits 0.15 s before it starts
    assert await first == "slow"
    assert await second == "quick"


async def test_cancel_before_start_skips_task():
    wq = WorkQueues()
    block, release = blocker()
    ran = []

    async def record(tag):
        ran.append(tag)

    wq.submit("s", block)
    skipped = wq.submit("s", lambda: record("skipped"))
    after = wq.submit("s", lambda: record("after"))
    skipped.cancel()
    await settle()
    assert wq.stats("s") == QueueStats(running=1, pending=1)

    release()
    await after
    assert ran == ["after"]
    assert skipped.cancelled()
    assert wq.signatures() == []


async def test_cancel_while_running_releases_slot():
    wq = WorkQueues()
    state = []

    async def forever():
        state.append("started")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            state.append("cancelled")
            raise

    async def ok():
        return "next"

    running = wq.submit("s", forever)
    nxt = wq.submit("s", ok)
    await settle()
    assert wq.stats("s") == QueueStats(running=1, pending=1)

    running.cancel()
    assert await asyncio.wait_for(nxt, 1) == "next"
    assert state == ["started", "cancelled"]
    assert wq.signatures() == []


async def test_cancelling_caller_of_run_cancels_task():
    wq = WorkQueues()
    state = []

    async def forever():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            state.append("cancelled")
            raise

    caller = asyncio.create_task(wq.run("s", forever))
    await settle()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await settle()
    assert state == ["cancelled"]
    assert wq.signatures() == []


async def test_queue_dropped_when_empty():
    wq = WorkQueues()

    async def ok():
        await asyncio.sleep(0)

    futs = [wq.submit(f"sig-{i}", ok) for i in range(1000)]
    assert len(wq.signatures()) == 1000
    await asyncio.gather(*futs)
    assert wq.signatures() == []
    assert wq._queues == {}
    assert wq.stats("sig-1") == QueueStats(running=0, pending=0)


async def test_close_cancels_everything():
    wq = WorkQueues(default_sync_level=2)
    state = []

    async def forever():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            state.append("cancelled")
            raise

    async def never():
        state.append("ran")

    running = [wq.submit(f"s{i}", forever) for i in range(3) for _ in range(2)]
    pending = [wq.submit(f"s{i}", never) for i in range(3)]
    await settle()
    await wq.close()

    for fut in running + pending:
        assert fut.cancelled()
    assert state == ["cancelled"] * 6
    assert wq.signatures() == []
    with pytest.raises(RuntimeError):
        wq.submit("s0", never)


async def test_close_right_after_submit():
    # Tasks cancelled before their coroutine ever ran must still release.
    wq = WorkQueues()

    async def ok():
        return 1

    futs = [wq.submit("s", ok) for _ in range(3)]
    await wq.close()
    assert all(f.cancelled() for f in futs)
    assert wq.signatures() == []


def test_invalid_limits():
    with pytest.raises(ValueError):
        WorkQueues(default_sync_level=0)
    with pytest.raises(ValueError):
        WorkQueues(default_pending_limit=-1)
