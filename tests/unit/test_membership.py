"""Membership on SQLite and the in-process bus, driven tick by tick."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from mn.bus import CloudBus
from mn.db import Database, upgrade
from mn.db.models.management_node import ManagementNodeVO
from mn.membership import Membership
from mn.ring import Ring

INTERVAL = 0.05
MISSES = 3


class Peer:
    """One MN's membership with its own ring and bus, ticked by hand."""

    def __init__(self, db: Database):
        self.ring = Ring()
        self.bus = CloudBus("memory://", ring=self.ring)
        self.left: list[str] = []
        self.joined: list[str] = []
        self.removed = asyncio.Event()

        async def self_removed() -> None:
            self.removed.set()

        self.membership = Membership(node_uuid=self.bus.address, db=db, bus=self.bus, ring=self.ring,
                                     host_name="127.0.0.1", port=8080, version="test",
                                     interval=INTERVAL, misses=MISSES, on_self_removed=self_removed)
        self.membership.on_node_left(self.left.append)
        self.membership.on_node_joined(self.joined.append)

    @property
    def uuid(self) -> str:
        return self.bus.address

    async def start(self) -> None:
        await self.bus.start()
        await self.membership.join()


@pytest.fixture
async def db(sqlite_url):
    upgrade(sqlite_url)
    database = Database(sqlite_url, threads=2)
    yield database
    database.close()


@pytest.fixture
async def peers(db):
    made: list[Peer] = []

    async def make() -> Peer:
        peer = Peer(db)
        await peer.start()
        made.append(peer)
        return peer

    yield make
    await asyncio.gather(*(peer.bus.stop(delete_inbox=True) for peer in made))


async def wait_dead_period() -> None:
    await asyncio.sleep(INTERVAL * MISSES + 0.05)


async def test_peers_see_each_other_and_build_the_same_ring(peers):
    a, b = await peers(), await peers()
    await a.membership.tick()
    assert set(a.ring.nodes) == set(b.ring.nodes) == {a.uuid, b.uuid}
    assert b.uuid in a.joined


async def test_a_silent_peer_is_fenced_and_its_callers_released(peers, db):
    a, b = await peers(), await peers()
    await a.membership.tick()
    failed = []
    a.bus.fail_calls_to = lambda node: failed.append(node) or 0

    await a.membership.tick()          # sees b's latest heartbeat
    await wait_dead_period()           # b does not beat
    await a.membership.tick()

    assert a.ring.nodes == (a.uuid,)
    assert a.left == [b.uuid] and failed == [b.uuid]
    rows = await db.run(lambda s: s.scalars(select(ManagementNodeVO.uuid)).all())
    assert rows == [a.uuid]

    await b.membership.tick()          # b finds its own row gone
    assert b.removed.is_set()


async def test_a_beating_peer_is_never_fenced(peers):
    a, b = await peers(), await peers()
    for _ in range(MISSES * 3):
        await asyncio.sleep(INTERVAL)
        await b.membership.tick()
        await a.membership.tick()
    assert set(a.ring.nodes) == {a.uuid, b.uuid}
    assert not a.left


async def test_fencing_is_compare_and_delete(peers, db):
    a, b = await peers(), await peers()
    await a.membership.tick()
    await wait_dead_period()
    # b beats after a last read it: a's delete must not match any more.
    seen = a.membership._observed[b.uuid][0]
    assert not await a.membership._fence(b.uuid, type(seen)(2000, 1, 1))
    await b.membership.tick()
    await a.membership.tick()
    assert b.uuid in a.ring


async def test_our_own_database_outage_does_not_condemn_peers(peers, db):
    a, b = await peers(), await peers()
    await a.membership.tick()

    real_run = db.run

    async def broken(*args, **kwargs):
        raise ConnectionError("database is down")

    a.membership.db.run = broken
    await wait_dead_period()
    await a.membership.tick()          # fails: a forgets what it measured
    a.membership.db.run = real_run
    await b.membership.tick()
    await a.membership.tick()          # b looks fresh again, even though ...
    await wait_dead_period()           # ... and only a full silent period after recovery ...
    await a.membership.tick()
    assert b.uuid not in a.ring        # ... counts against it.


async def test_ring_view_converges_after_a_peer_leaves(peers):
    a, b = await peers(), await peers()
    await a.membership.tick()
    await b.membership.leave()
    await a.membership.tick()
    assert a.ring.nodes == (a.uuid,)
    assert a.left == [b.uuid]


async def test_peers_agree_on_owners(peers):
    nodes = [await peers() for _ in range(3)]
    for node in nodes:
        await node.membership.tick()
    keys = [f"{i:032x}" for i in range(500)]
    owners = [[node.ring.owner(k) for k in keys] for node in nodes]
    assert owners[0] == owners[1] == owners[2]
