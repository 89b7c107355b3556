"""CallbackWaiters: futures resolved by agent callbacks, or failed on timeout."""

import asyncio
import time

import pytest

from mn.callbacks import AgentCallbackArrivedEvent, CallbackWaiters
from mn.errors import OperationError, SysErrors


async def test_deliver_resolves_the_waiter():
    waiters = CallbackWaiters()
    future = waiters.expect("task-1", timeout=5)
    assert len(waiters) == 1
    body = {"success": True, "value": 42}
    assert waiters.deliver("task-1", body) is True
    assert await asyncio.wait_for(future, 1) == body
    await asyncio.sleep(0)  # let the done callback forget the waiter
    assert len(waiters) == 0


async def test_timeout_fails_with_sys_1001():
    waiters = CallbackWaiters()
    started = time.monotonic()
    future = waiters.expect("task-2", timeout=0.05)
    with pytest.raises(OperationError) as info:
        await asyncio.wait_for(future, 2)
    assert info.value.error.code == SysErrors.TIMEOUT.value == "SYS.1001"
    assert "task-2" in info.value.error.details
    assert time.monotonic() - started < 1
    await asyncio.sleep(0)
    assert len(waiters) == 0


async def test_late_deliver_returns_false():
    waiters = CallbackWaiters()
    future = waiters.expect("task-3", timeout=0.01)
    with pytest.raises(OperationError):
        await asyncio.wait_for(future, 2)
    assert waiters.deliver("task-3", {"late": True}) is False


async def test_duplicate_deliver_returns_false_and_keeps_the_first_body():
    waiters = CallbackWaiters()
    future = waiters.expect("task-4", timeout=5)
    assert waiters.deliver("task-4", {"n": 1}) is True
    # Before and after the waiter is forgotten.
    assert waiters.deliver("task-4", {"n": 2}) is False
    assert await future == {"n": 1}
    await asyncio.sleep(0)
    assert waiters.deliver("task-4", {"n": 3}) is False


async def test_unknown_task_is_ignored():
    waiters = CallbackWaiters()
    other = waiters.expect("task-5", timeout=5)
    assert waiters.deliver("nobody-waits", {}) is False
    assert not other.done()
    other.cancel()


async def test_expect_twice_same_uuid_raises():
    waiters = CallbackWaiters()
    future = waiters.expect("task-6", timeout=5)
    with pytest.raises(ValueError):
        waiters.expect("task-6", timeout=5)
    # The first waiter is untouched by the refused second one.
    assert waiters.deliver("task-6", "ok") is True
    assert await future == "ok"


async def test_cancelled_waiter_is_forgotten_and_its_uuid_reusable():
    waiters = CallbackWaiters()
    future = waiters.expect("task-7", timeout=5)
    future.cancel()
    await asyncio.sleep(0)
    assert len(waiters) == 0
    assert waiters.deliver("task-7", {}) is False
    again = waiters.expect("task-7", timeout=5)
    assert waiters.deliver("task-7", {"again": 1}) is True
    assert await again == {"again": 1}


async def test_a_forwarded_callback_reaches_its_waiter_and_is_ignored_elsewhere():
    waiting, other = CallbackWaiters(), CallbackWaiters()
    future = waiting.expect("task-8", timeout=5)
    event = AgentCallbackArrivedEvent(taskUuid="task-8", body={"success": True})
    other.on_forwarded(event)       # every MN gets the broadcast; only one waits
    waiting.on_forwarded(event)
    assert await future == {"success": True}
    assert "task-8" not in waiting and len(other) == 0
