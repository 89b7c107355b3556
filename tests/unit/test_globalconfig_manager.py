"""GlobalConfigManager on SQLite and the in-process bus.

Each simulated MN has its own bus, its own registry (the same entries
declared again, as each MN process declares them) and its own manager; all
share one database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from types import SimpleNamespace

import pytest
from sqlalchemy import delete, func, select, update

from mn.bus import CloudBus
from mn.db import Database, upgrade
from mn.db.models.global_config import GlobalConfigVO
from mn.errors import OperationError
from mn.globalconfig import (REGISTRY, GlobalConfig, GlobalConfigInventory, GlobalConfigManager,
                             GlobalConfigRegistry, GlobalConfigUpdatedEvent, number_range)

CATEGORY = "test.gcmanager"


def declare(registry: GlobalConfigRegistry, *, ratio_default: float = 10.0) -> SimpleNamespace:
    """The entries every simulated MN declares."""
    return SimpleNamespace(
        ratio=GlobalConfig(CATEGORY, "cpu.ratio", float, ratio_default, description="vCPUs per CPU",
                           validators=[number_range(1, 100)], registry=registry),
        enabled=GlobalConfig(CATEGORY, "enabled", bool, True, registry=registry),
        name=GlobalConfig(CATEGORY, "name", str, "zstack", registry=registry),
    )


class FakeNode:
    """What the manager uses of a ManagementNode: uuid, db and bus."""

    def __init__(self, db: Database, bus: CloudBus):
        self.uuid = bus.address
        self.db = db
        self.bus = bus


class MN:
    def __init__(self, db: Database, *, resync_interval: float = 60.0, **declare_args):
        self.bus = CloudBus("memory://")
        self.node = FakeNode(db, self.bus)
        self.registry = GlobalConfigRegistry()
        self.entries = declare(self.registry, **declare_args)
        self.manager = GlobalConfigManager(self.node, registry=self.registry,
                                           resync_interval=resync_interval)
        self.changes: list[tuple] = []
        self.entries.ratio.on_change(lambda old, new: self.changes.append((old, new)))

    async def start(self) -> "MN":
        await self.bus.start()
        await self.manager.start()
        return self

    async def stop(self) -> None:
        await self.manager.stop()
        await self.bus.stop(delete_inbox=True)


@pytest.fixture
async def db(sqlite_url):
    upgrade(sqlite_url)
    database = Database(sqlite_url, threads=4)
    yield database
    database.close()


@pytest.fixture
async def mns(db):
    made: list[MN] = []

    async def make(**kwargs) -> MN:
        mn = MN(db, **kwargs)
        made.append(mn)
        return await mn.start()

    yield make
    for mn in made:
        await mn.stop()


async def rows(db: Database) -> dict[str, tuple]:
    def read(session):
        return {vo.name: (vo.description, vo.defaultValue, vo.value)
                for vo in session.scalars(select(GlobalConfigVO).where(GlobalConfigVO.category == CATEGORY))}

    return await db.run(read)


async def set_behind_the_cache(db: Database, name: str, value: str | None) -> None:
    await db.run(lambda s: s.execute(update(GlobalConfigVO).where(
        GlobalConfigVO.category == CATEGORY, GlobalConfigVO.name == name).values(value=value)))


async def eventually(predicate, timeout: float = 2.0) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "condition not met in time"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def test_start_stores_the_defaults(mns, db):
    mn = await mns()
    assert await rows(db) == {"cpu.ratio": ("vCPUs per CPU", "10.0", "10.0"),
                              "enabled": (None, "true", "true"),
                              "name": (None, "zstack", "zstack")}
    assert (mn.entries.ratio.value, mn.entries.enabled.value, mn.entries.name.value) == (10.0, True, "zstack")
    assert mn.changes == []


async def test_a_later_mn_loads_the_stored_values(mns, db):
    first = await mns()
    await first.entries.ratio.update("20")
    second = await mns()
    assert second.entries.ratio.value == 20.0
    assert second.changes == []  # loading at start is not a change
    assert len(await rows(db)) == 3


async def test_mns_starting_together_insert_each_row_once(db):
    group = [MN(db) for _ in range(4)]
    try:
        await asyncio.gather(*(mn.start() for mn in group))
        count = await db.run(lambda s: s.scalar(
            select(func.count()).select_from(GlobalConfigVO).where(GlobalConfigVO.category == CATEGORY)))
        assert count == 3
    finally:
        for mn in group:
            await mn.stop()


async def test_update_converts_text_and_stores_it(mns, db):
    mn = await mns()
    assert await mn.manager.update(CATEGORY, "cpu.ratio", "12.5") is mn.entries.ratio
    assert await mn.entries.enabled.update("FALSE") is False
    await mn.entries.name.update("cloud")
    assert (mn.entries.ratio.value, mn.entries.enabled.value, mn.entries.name.value) == (12.5, False, "cloud")
    stored = await rows(db)
    assert (stored["cpu.ratio"][2], stored["enabled"][2], stored["name"][2]) == ("12.5", "false", "cloud")
    assert mn.entries.ratio.inventory() == GlobalConfigInventory(
        name="cpu.ratio", category=CATEGORY, description="vCPUs per CPU", defaultValue="10.0", value="12.5")
    assert mn.manager.get(CATEGORY, "enabled") is mn.entries.enabled
    assert set(mn.manager.entries()) == set(vars(mn.entries).values())


@pytest.mark.parametrize("entry, value, reason", [
    ("cpu.ratio", "200", "must be in the range [1, 100], got 200.0"),
    ("cpu.ratio", "fast", "is of type float: 'fast' is not a number"),
    ("enabled", "yes", "is of type bool: 'yes' is not a boolean: use true or false"),
])
async def test_refused_value_leaves_no_trace(mns, db, entry, value, reason):
    mn = await mns()
    before = await rows(db)
    with pytest.raises(OperationError) as err:
        await mn.manager.update(CATEGORY, entry, value)
    assert err.value.error.code == "SYS.1007"
    assert err.value.error.details == f"GlobalConfig[category:{CATEGORY}, name:{entry}] {reason}"
    assert await rows(db) == before
    assert mn.entries.ratio.value == 10.0 and mn.entries.enabled.value is True
    assert mn.changes == []


async def test_unknown_entry_is_an_invalid_argument(mns):
    mn = await mns()
    with pytest.raises(OperationError) as err:
        await mn.manager.update(CATEGORY, "no.such", "1")
    assert err.value.error.code == "SYS.1007"
    assert "unable to find GlobalConfig[category:test.gcmanager, name:no.such]" in err.value.error.details


async def test_an_added_validator_can_refuse(mns, db):
    mn = await mns()
    seen = []

    async def only_even(value):  # extension validators may be async
        seen.append(value)
        if value % 2:
            raise ValueError("must be even for the test plugin")

    remove = mn.entries.ratio.add_validator(only_even)
    with pytest.raises(OperationError, match="must be even for the test plugin") as err:
        await mn.entries.ratio.update("3")
    assert err.value.error.code == "SYS.1007"
    assert (await rows(db))["cpu.ratio"][2] == "10.0"
    await mn.entries.ratio.update("4")
    assert seen == [3.0, 4.0]

    remove()
    await mn.entries.ratio.update("5")
    assert mn.entries.ratio.value == 5.0


async def test_listeners_get_old_and_new_and_a_failing_one_breaks_nothing(mns, db, caplog):
    mn = await mns()
    calls = []

    def broken(old, new):
        raise RuntimeError("listener bug")

    async def async_listener(old, new):
        await asyncio.sleep(0)
        calls.append(("async", old, new))

    mn.entries.ratio.on_change(broken)
    mn.entries.ratio.on_change(async_listener)
    with caplog.at_level(logging.ERROR):
        await mn.entries.ratio.update(30)
    assert mn.entries.ratio.value == 30.0
    assert (await rows(db))["cpu.ratio"][2] == "30.0"
    assert mn.changes == [(10.0, 30.0)]
    assert calls == [("async", 10.0, 30.0)]
    assert "listener bug" in caplog.text

    await mn.entries.ratio.update(30)  # the same value again is no change
    assert mn.changes == [(10.0, 30.0)]


async def test_a_change_on_one_mn_reaches_the_others(mns):
    a, b, c = await mns(), await mns(), await mns()
    await a.entries.ratio.update("42")
    elapsed = await eventually(lambda: b.entries.ratio.value == 42.0 and c.entries.ratio.value == 42.0)
    assert elapsed < 1.0
    assert a.changes == b.changes == c.changes == [(10.0, 42.0)]


async def test_concurrent_updates_converge_to_the_last_write(mns, db):
    a, b = await mns(), await mns()
    for round_ in range(5):
        await asyncio.gather(a.entries.ratio.update(20 + round_), b.entries.ratio.update(60 + round_))
        stored = float((await rows(db))["cpu.ratio"][2])
        await eventually(lambda: a.entries.ratio.value == b.entries.ratio.value == stored)


async def test_resync_picks_up_a_change_no_event_announced(mns, db):
    mn = await mns(resync_interval=0.05)
    await set_behind_the_cache(db, "cpu.ratio", "55.0")
    await eventually(lambda: mn.entries.ratio.value == 55.0)
    assert mn.changes == [(10.0, 55.0)]


async def test_resync_restores_a_deleted_row_with_its_default(mns, db):
    mn = await mns()
    await mn.entries.ratio.update(33)
    await db.run(lambda s: s.execute(delete(GlobalConfigVO).where(GlobalConfigVO.name == "cpu.ratio")))
    assert await mn.manager.resync() == 1
    assert mn.entries.ratio.value == 10.0
    assert (await rows(db))["cpu.ratio"] == ("vCPUs per CPU", "10.0", "10.0")
    # An update of a row deleted meanwhile stores it again.
    await db.run(lambda s: s.execute(delete(GlobalConfigVO).where(GlobalConfigVO.name == "name")))
    await mn.entries.name.update("back")
    assert (await rows(db))["name"] == (None, "zstack", "back")


async def test_invalid_stored_value_falls_back_to_the_default(mns, db, caplog):
    first = await mns()
    await set_behind_the_cache(db, "cpu.ratio", "500")     # out of range since an upgrade
    await set_behind_the_cache(db, "enabled", None)
    with caplog.at_level(logging.WARNING):
        second = await mns()
        await second.manager.resync()
    assert second.entries.ratio.value == 10.0 and second.entries.enabled.value is True
    assert caplog.text.count("stored value '500' is not valid") == 1  # not repeated by the resync
    await second.entries.ratio.update("7")
    assert (await rows(db))["cpu.ratio"][2] == "7.0"
    await eventually(lambda: first.entries.ratio.value == 7.0)


async def test_a_new_default_is_followed_unless_a_value_was_chosen(mns, db):
    old = await mns()
    await old.entries.name.update("chosen")
    await old.stop()
    upgraded = await mns(ratio_default=16.0)
    assert upgraded.entries.ratio.value == 16.0  # was at the old default: follows
    stored = await rows(db)
    assert stored["cpu.ratio"] == ("vCPUs per CPU", "16.0", "16.0")
    assert upgraded.entries.name.value == "chosen"


async def test_an_entry_declared_after_start_is_stored_at_the_next_resync(mns, db):
    mn = await mns()
    late = GlobalConfig(CATEGORY, "late", int, 3, registry=mn.registry)
    await mn.manager.resync()
    assert (await rows(db))["late"] == (None, "3", "3")
    await late.update("4")
    assert late.value == 4


async def test_lost_bus_does_not_lose_the_update(mns, db, caplog):
    a, b = await mns(), await mns(resync_interval=0.05)

    async def broker_down(event):
        raise ConnectionError("broker is restarting")

    a.bus.publish = broker_down
    with caplog.at_level(logging.WARNING):
        await a.entries.ratio.update("8")
    assert "could not announce" in caplog.text
    assert a.entries.ratio.value == 8.0
    await eventually(lambda: b.entries.ratio.value == 8.0)  # by b's resync


async def test_a_registry_serves_one_manager(db, mns):
    mn = await mns()
    other = GlobalConfigManager(mn.node, registry=mn.registry)
    with pytest.raises(RuntimeError, match="already served"):
        await other.start()
    await mn.manager.stop()
    with pytest.raises(OperationError) as err:
        await mn.entries.ratio.update(2)
    assert err.value.error.code == "SYS.1010"


async def test_module_level_entries_use_the_process_registry(db):
    entry = GlobalConfig("test.gcmanager.process", "limit", int, 8, validators=[number_range(1, 64)])
    assert REGISTRY.find("test.gcmanager.process", "limit") is entry
    bus = CloudBus("memory://")
    await bus.start()
    manager = GlobalConfigManager(FakeNode(db, bus))
    await manager.start()
    try:
        events = []
        bus.subscribe(GlobalConfigUpdatedEvent, events.append)
        assert await entry.update("16") == 16
        assert entry.value == 16
        await eventually(lambda: len(events) == 1)
        assert (events[0].category, events[0].name, events[0].value, events[0].nodeUuid) == (
            "test.gcmanager.process", "limit", "16", bus.address)
    finally:
        await manager.stop()
        await bus.stop(delete_inbox=True)
