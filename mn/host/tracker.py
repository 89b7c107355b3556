"""Each MN pings the KVM hosts it owns on the ring (ZStack's HostTrackImpl).

Every ``host/ping.interval`` seconds the tracker takes the KVM hosts whose
owner on the ring is this MN, so trackers move by themselves when MNs join
or leave (a change of the ring also wakes the tracker at once). For each
Connected host it pings the agent; a failed ping is retried
``ping.sleepPeriodAfterFailure`` seconds later, and ``ping.maxFailure``
failures in a row make the host Disconnected. A Disconnected host is
reconnected from the next round on (``host/connection.autoReconnectOnError``),
which redeploys or
restarts its agent when it does not answer. An agent that answers with
another version (an upgrade is due) or without the host's uuid (it lost its
state) is reconnected too. Hosts being connected or in maintenance are left
alone.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from mn.db.models.host import HOST_CONNECTED, HOST_DISCONNECTED, HOST_MAINTENANCE, HOST_PRE_MAINTENANCE, HostVO
from mn.errors import OperationError
from mn.host.messages import ChangeHostConnectionStateMsg, ReconnectHostMsg
from mn.vm.sync import sync_host_vms
from plugins.kvm import commands as cmds
from plugins.kvm.config import (
    AUTO_RECONNECT,
    PING_INTERVAL,
    PING_MAX_FAILURE,
    PING_PARALLELISM,
    PING_SLEEP_AFTER_FAILURE,
    PING_TIMEOUT,
    VM_SYNC_ON_PING,
)
from plugins.kvm.hypervisor import KVM_HYPERVISOR_TYPE

if TYPE_CHECKING:
    from mn.node import ManagementNode
    from plugins.kvm.agent import AgentClient
    from plugins.kvm.factory import KvmHostFactory

log = logging.getLogger(__name__)

#: Seconds a reconnect may take: it may deploy the agent over SSH.
RECONNECT_TIMEOUT = 1800.0


class HostTracker:
    """Pings this MN's KVM hosts and reconnects the ones that need it."""

    def __init__(self, node: "ManagementNode", agents: "AgentClient", factory: "KvmHostFactory"):
        self.node = node
        self.agents = agents
        self.factory = factory
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        #: Hosts with a reconnect in flight (one at a time per host).
        self._reconnecting: dict[str, asyncio.Task] = {}
        self._unsubscribe: Any = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kvm-host-tracker")
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
            try:
                await self.track_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("tracking kvm hosts failed; trying again next interval")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=PING_INTERVAL.value)
            except asyncio.TimeoutError:
                pass

    async def owned_hosts(self) -> list[tuple[str, str, str, str]]:
        """``(uuid, managementIp, status, state)`` of the KVM hosts this MN owns."""
        rows = await self.node.db.run(lambda s: s.execute(
            select(HostVO.uuid, HostVO.managementIp, HostVO.status, HostVO.state)
            .where(HostVO.hypervisorType == KVM_HYPERVISOR_TYPE)).all())
        ring = self.node.ring
        return [tuple(row) for row in rows if len(ring) and ring.owner(row[0]) == self.node.uuid]

    async def track_once(self) -> None:
        """One round over the hosts this MN owns."""
        limit = asyncio.Semaphore(PING_PARALLELISM.value)

        async def track(host: tuple[str, str, str, str]) -> None:
            async with limit:
                await self._track(*host)

        hosts = [h for h in await self.owned_hosts()
                 if h[3] not in (HOST_MAINTENANCE, HOST_PRE_MAINTENANCE) and h[0] not in self._reconnecting]
        await asyncio.gather(*(track(h) for h in hosts))

    async def _track(self, host_uuid: str, ip: str, status: str, state: str) -> None:
        if status == HOST_DISCONNECTED:
            if AUTO_RECONNECT.value:
                self._reconnect_later(host_uuid, "it is Disconnected")
            return
        if status != HOST_CONNECTED:
            return  # Connecting: an add or reconnect is at work
        answer = await self._ping(host_uuid, ip)
        if answer is None:
            log.warning("kvm host %s (%s) missed %d pings: Disconnected", host_uuid, ip, PING_MAX_FAILURE.value)
            try:
                await self.node.bus.call(ChangeHostConnectionStateMsg(uuid=host_uuid,
                                                                      connectionStateEvent="disconnected"))
            except OperationError as exc:
                log.warning("could not mark kvm host %s Disconnected: %s", host_uuid, exc)
            # Reconnected from the next round on: the host shows Disconnected
            # for an interval, and a host that is down is not hammered.
            return
        if answer.get("hostUuid") != host_uuid:
            self._reconnect_later(host_uuid, f"its agent knows it as {answer.get('hostUuid')}")
        elif answer.get("version") != self.factory.agent_version:
            self._reconnect_later(host_uuid, f"its agent is version {answer.get('version')}, "
                                             f"this MN ships {self.factory.agent_version}")
        elif VM_SYNC_ON_PING.value:
            await self._sync_vms(host_uuid, ip)

    async def _ping(self, host_uuid: str, ip: str) -> dict | None:
        """The agent's answer, or None after ``ping.maxFailure`` failures in a row."""
        failures = PING_MAX_FAILURE.value
        for attempt in range(failures):
            try:
                return await self.agents.call_sync(ip, cmds.PING, {"hostUuid": host_uuid},
                                                   timeout=PING_TIMEOUT.value)
            except OperationError as exc:
                log.info("ping %d/%d of kvm host %s (%s) failed: %s", attempt + 1, failures, host_uuid, ip,
                         exc.error.details)
                if attempt + 1 < failures:
                    await asyncio.sleep(PING_SLEEP_AFTER_FAILURE.value)
        return None

    async def _sync_vms(self, host_uuid: str, ip: str) -> None:
        from plugins.kvm.factory import to_vm_states

        try:
            states = (await self.agents.call(ip, cmds.VM_SYNC, {})).get("states") or {}
        except OperationError as exc:
            log.info("vm sync of kvm host %s failed: %s", host_uuid, exc.error.details)
            return
        await sync_host_vms(self.node, host_uuid, to_vm_states(states))

    def _reconnect_later(self, host_uuid: str, why: str) -> None:
        if host_uuid in self._reconnecting:
            return
        log.info("reconnecting kvm host %s: %s", host_uuid, why)

        async def reconnect() -> None:
            try:
                await self.node.bus.call(ReconnectHostMsg(uuid=host_uuid), timeout=RECONNECT_TIMEOUT)
                log.info("kvm host %s reconnected", host_uuid)
            except OperationError as exc:
                log.warning("reconnecting kvm host %s failed: %s", host_uuid, exc.error.details or exc)
            finally:
                self._reconnecting.pop(host_uuid, None)

        self._reconnecting[host_uuid] = asyncio.create_task(reconnect(), name=f"reconnect-{host_uuid}")
