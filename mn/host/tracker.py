"""Each MN pings the hosts it owns on the ring (ZStack's HostTrackImpl).

Every ``host/ping.interval`` seconds the tracker takes the hosts whose owner
on the ring is this MN, so trackers move by themselves when MNs join or
leave (a change of the ring also wakes the tracker at once). It asks each
Connected host's :class:`~mn.host.factory.HostFactory` to ping it; a failed
ping is retried ``ping.sleepPeriodAfterFailure`` seconds later, and
``ping.maxFailure`` failures in a row make the host Disconnected. From the
next round on, a Disconnected host is reconnected
(``host/connection.autoReconnectOnError``), which for KVM redeploys or
restarts its agent; the host shows Disconnected for an interval meanwhile,
and a host that is down is not hammered. A ping may also answer that the
host needs reconnecting (an agent out of date, or one that lost its state).
Hosts being connected or in maintenance are left alone.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from mn.db.models.host import HOST_CONNECTED, HOST_DISCONNECTED, HOST_MAINTENANCE, HOST_PRE_MAINTENANCE, HostVO
from mn.errors import OperationError
from mn.host.config import (
    AUTO_RECONNECT,
    PING_INTERVAL,
    PING_MAX_FAILURE,
    PING_PARALLELISM,
    PING_SLEEP_AFTER_FAILURE,
)
from mn.host.messages import ChangeHostConnectionStateMsg, ReconnectHostMsg

if TYPE_CHECKING:
    from mn.host.factory import HostFactory

log = logging.getLogger(__name__)

#: Seconds a reconnect may take: it may deploy an agent over SSH.
RECONNECT_TIMEOUT = 1800.0


class HostTracker:
    """Pings this MN's hosts and reconnects the ones that need it."""

    def __init__(self, node: Any, factories: dict[str, "HostFactory"]):
        self.node = node
        #: The host service's factories by hypervisor type (shared, not copied).
        self.factories = factories
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        #: Hosts with a reconnect in flight (one at a time per host).
        self._reconnecting: dict[str, asyncio.Task] = {}
        self._unsubscribe: Any = None
        #: Hosts pinged in the last round (for benchmarks and tests).
        self.tracked = 0
        self._owned_last: set[str] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="host-tracker")
        self._unsubscribe = PING_INTERVAL.on_change(self._interval_changed)

    async def _interval_changed(self, old: int, new: int) -> None:
        # A shorter interval applies now, not after the longer one ends.
        self.wake()

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        tasks = [t for t in [self._task, *self._reconnecting.values()] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        self._reconnecting.clear()

    def wake(self, *_: Any) -> None:
        """Track at once (the ring changed: some hosts may be ours now)."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            # Cleared before the round, not after: a ring change during the
            # round must start another one at once.
            self._wake.clear()
            try:
                await self.track_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("tracking hosts failed; trying again next interval")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=PING_INTERVAL.value)
            except asyncio.TimeoutError:
                pass

    async def owned_hosts(self) -> list[tuple[str, str, str, str, str]]:
        """``(uuid, hypervisorType, managementIp, status, state)`` of the hosts this MN owns."""
        rows = await self.node.db.run(lambda s: s.execute(
            select(HostVO.uuid, HostVO.hypervisorType, HostVO.managementIp, HostVO.status, HostVO.state)).all())
        ring, me = self.node.ring, self.node.uuid
        if not len(ring):
            return []
        return [tuple(row) for row in rows if ring.owner(row[0]) == me]

    async def track_once(self) -> None:
        """One round over the hosts this MN owns."""
        limit = asyncio.Semaphore(PING_PARALLELISM.value)

        async def track(host: tuple[str, str, str, str, str]) -> None:
            async with limit:
                await self._track(*host)

        hosts = [h for h in await self.owned_hosts()
                 if h[4] not in (HOST_MAINTENANCE, HOST_PRE_MAINTENANCE) and h[0] not in self._reconnecting
                 and h[1] in self.factories]
        # Hosts new to this MN (taken over from a dead one) first: the
        # semaphore starts the pings in this order.
        hosts.sort(key=lambda h: h[0] in self._owned_last)
        self._owned_last = {h[0] for h in hosts}
        self.tracked = len(hosts)
        await asyncio.gather(*(track(h) for h in hosts))

    async def _track(self, host_uuid: str, hypervisor_type: str, ip: str, status: str, state: str) -> None:
        if status == HOST_DISCONNECTED:
            if AUTO_RECONNECT.value:
                self._reconnect_later(host_uuid, "it is Disconnected")
            return
        if status != HOST_CONNECTED:
            return  # Connecting: an add or reconnect is at work
        factory = self.factories[hypervisor_type]
        failures = PING_MAX_FAILURE.value
        for attempt in range(failures):
            try:
                reason = await factory.ping(self.node, host_uuid, ip)
                break
            except OperationError as exc:
                log.info("ping %d/%d of host %s (%s) failed: %s", attempt + 1, failures, host_uuid, ip,
                         exc.error.details or exc.error.description)
                if attempt + 1 < failures:
                    await asyncio.sleep(PING_SLEEP_AFTER_FAILURE.value)
        else:
            await self._disconnected(host_uuid, ip, failures)
            return
        if reason:
            self._reconnect_later(host_uuid, reason)

    async def _disconnected(self, host_uuid: str, ip: str, failures: int) -> None:
        log.warning("host %s (%s) missed %d pings: Disconnected", host_uuid, ip, failures)
        try:
            await self.node.bus.call(ChangeHostConnectionStateMsg(uuid=host_uuid, connectionStateEvent="disconnected"))
        except OperationError as exc:
            log.warning("could not mark host %s Disconnected: %s", host_uuid, exc)

    def _reconnect_later(self, host_uuid: str, why: str) -> None:
        if host_uuid in self._reconnecting:
            return
        log.info("reconnecting host %s: %s", host_uuid, why)

        async def reconnect() -> None:
            try:
                await self.node.bus.call(ReconnectHostMsg(uuid=host_uuid), timeout=RECONNECT_TIMEOUT)
                log.info("host %s reconnected", host_uuid)
            except OperationError as exc:
                log.warning("reconnecting host %s failed: %s", host_uuid, exc.error.details or exc)
            finally:
                self._reconnecting.pop(host_uuid, None)

        self._reconnecting[host_uuid] = asyncio.create_task(reconnect(), name=f"reconnect-{host_uuid}")
