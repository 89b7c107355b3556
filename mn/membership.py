"""Who is alive: heartbeats in ``ManagementNodeVO``, fencing, and the ring.

Every MN, every ``heartbeat_interval`` seconds, in one transaction, stamps
its own row and reads all rows. From that read it rebuilds the ring, so all
MNs that read the same table compute the same ring.

A peer is dead when its ``heartBeat`` value has not changed for
``heartbeat_misses * heartbeat_interval`` seconds, measured on *this* MN's
monotonic clock while this MN's own heartbeats succeed. Comparing values,
not timestamps, makes detection immune to clock skew between machines; not
counting time when our own database access failed keeps a database outage
from making every MN declare every other dead.

A dead peer is fenced by deleting its row with compare-and-delete (the row
must still hold the heartbeat we saw), so only one survivor wins and a peer
that came back in time is left alone. The winner adopts the dead node's
unconsumed messages and broadcasts a change so the others re-read at once.
An MN that finds its own row gone has been fenced: it stops itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

from sqlalchemy import delete, select, update

from mn.bus import CloudBus, Event
from mn.db import Database
from mn.db.models.management_node import ManagementNodeVO
from mn.db.types import utcnow
from mn.ring import Ring

log = logging.getLogger(__name__)

NodeListener = Callable[[str], Awaitable[None] | None]

#: Value of ManagementNodeVO.state for a serving MN.
STATE_RUNNING = "Running"


class MembershipChangedEvent(Event):
    """Broadcast when an MN joins, leaves or is fenced: peers re-read now."""

    nodeUuid: str
    change: str  # "joined" | "left" | "fenced"


class Membership:
    """Heartbeat, failure detection and the ring of one MN."""

    def __init__(self, *, node_uuid: str, db: Database, bus: CloudBus, ring: Ring,
                 host_name: str, port: int, version: str,
                 interval: float = 2.0, misses: int = 3,
                 on_self_removed: Callable[[], Awaitable[None]] | None = None):
        self.node_uuid = node_uuid
        self.db = db
        self.bus = bus
        self.ring = ring
        self.host_name = host_name
        self.port = port
        self.version = version
        self.interval = interval
        self.dead_after = interval * misses
        self._on_self_removed = on_self_removed
        self._joined_listeners: list[NodeListener] = []
        self._left_listeners: list[NodeListener] = []
        # peer uuid -> (last heartBeat value seen, monotonic time it last changed)
        self._observed: dict[str, tuple[object, float]] = {}
        self._wake = asyncio.Event()
        self._stopped = False

    # -- listeners ------------------------------------------------------------

    def on_node_joined(self, listener: NodeListener) -> None:
        self._joined_listeners.append(listener)

    def on_node_left(self, listener: NodeListener) -> None:
        self._left_listeners.append(listener)

    # -- life cycle -----------------------------------------------------------

    async def join(self) -> None:
        """Insert our row, then build the ring from the table."""
        now = utcnow()

        def insert(session):
            session.add(ManagementNodeVO(uuid=self.node_uuid, hostName=self.host_name, port=self.port,
                                         state=STATE_RUNNING, joinDate=now, heartBeat=now,
                                         version=self.version))

        await self.db.run(insert)
        self.bus.subscribe(MembershipChangedEvent, self._on_changed)
        await self.tick()
        await self._announce("joined", self.node_uuid)

    async def run(self) -> None:
        """Heartbeat until cancelled."""
        while not self._stopped:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            await self.tick()

    async def leave(self) -> None:
        self._stopped = True

        def remove(session):
            session.execute(delete(ManagementNodeVO).where(ManagementNodeVO.uuid == self.node_uuid))

        try:
            await self.db.run(remove)
            await self._announce("left", self.node_uuid)
        except Exception as exc:
            log.warning("could not leave the ring cleanly: %s", exc)

    # -- the heartbeat ----------------------------------------------------------

    def _beat_and_read(self, session) -> tuple[bool, list[tuple[str, object]]]:
        stamped = session.execute(
            update(ManagementNodeVO).where(ManagementNodeVO.uuid == self.node_uuid)
            .values(heartBeat=utcnow())).rowcount
        rows = session.execute(select(ManagementNodeVO.uuid, ManagementNodeVO.heartBeat)).all()
        return stamped == 1, [(uuid, beat) for uuid, beat in rows]

    async def tick(self) -> None:
        """One heartbeat: stamp, read, detect, fence, rebuild the ring."""
        if self._stopped:
            return
        started = time.monotonic()
        try:
            alive, rows = await self.db.run(self._beat_and_read)
        except Exception as exc:
            # Our own view is blind: forget what we measured rather than
            # blame peers for our outage.
            log.warning("heartbeat failed: %s", exc)
            self._observed.clear()
            return
        if time.monotonic() - started > self.interval:
            # The database kept us waiting (an outage the engine rode out):
            # peers were as blind as we were, so measure them afresh.
            self._observed.clear()
        if not alive:
            log.error("management node %s was fenced by its peers; stopping", self.node_uuid)
            self._stopped = True
            if self._on_self_removed is not None:
                await self._on_self_removed()
            return
        now = time.monotonic()
        live, fenced = set(), []
        for uuid, beat in rows:
            seen = self._observed.get(uuid)
            if seen is None or seen[0] != beat:
                self._observed[uuid] = (beat, now)
                live.add(uuid)
            elif uuid == self.node_uuid or now - seen[1] <= self.dead_after:
                live.add(uuid)
            elif await self._fence(uuid, beat):
                fenced.append(uuid)
            else:
                live.add(uuid)  # it beat in the meantime, or another MN fenced it first
        for gone in set(self._observed) - live:
            del self._observed[gone]
        await self._apply(live)
        # Only now is the dead node off our ring, so its orphans cannot be
        # routed back to it.
        for uuid in fenced:
            try:
                await self.bus.adopt_orphans(uuid)
            except Exception as exc:
                log.warning("could not adopt the messages of %s: %s", uuid, exc)
            await self._announce("fenced", uuid)

    async def _fence(self, uuid: str, beat: object) -> bool:
        def compare_and_delete(session):
            return session.execute(delete(ManagementNodeVO).where(
                ManagementNodeVO.uuid == uuid, ManagementNodeVO.heartBeat == beat)).rowcount

        try:
            won = await self.db.run(compare_and_delete) == 1
        except Exception as exc:
            log.warning("could not fence %s: %s", uuid, exc)
            return False
        if won:
            log.warning("management node %s missed its heartbeats for %.1fs: fenced",
                        uuid, self.dead_after)
        return won

    async def _apply(self, live: set[str]) -> None:
        before = set(self.ring.nodes)
        if not self.ring.update(live):
            return
        log.info("ring is now %d node(s): %s", len(live), ", ".join(sorted(live)))
        for uuid in sorted(before - live):
            self.bus.fail_calls_to(uuid)
            await self._notify(self._left_listeners, uuid)
        for uuid in sorted(live - before):
            await self._notify(self._joined_listeners, uuid)

    async def _notify(self, listeners: list[NodeListener], uuid: str) -> None:
        for listener in listeners:
            try:
                result = listener(uuid)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("membership listener %r failed for %s", listener, uuid)

    async def _announce(self, change: str, uuid: str) -> None:
        try:
            await self.bus.publish(MembershipChangedEvent(nodeUuid=uuid, change=change))
        except Exception as exc:
            log.warning("could not announce %s of %s: %s", change, uuid, exc)

    def _on_changed(self, event: MembershipChangedEvent) -> None:
        self._wake.set()
