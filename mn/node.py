"""One management node: the parts of the spine, started and stopped in order.

Start: load and check the flow chains (a bad chain stops start-up before
anything else), create/migrate the database (under a cross-MN lock), start
the bus (our durable inbox exists before anyone can route to us), load the
global configuration, join the membership table and the ring, load cascade
plugins and start garbage collection, start the services, adopt the chains
of vanished MNs, then heartbeat.
Stop: the reverse; running chains are cancelled (a peer ends them from their
records), GC jobs are released, the node leaves the ring so peers stop
routing to it, and deletes its inbox last.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
from typing import Callable

from mn import __version__
from mn.api.dispatch import ApiDispatcher
from mn.api.jobs import JobManager
from mn.api.query import QueryEngine
from mn.bus import CloudBus
from mn.callbacks import AgentCallbackArrivedEvent, AgentReports, CallbackWaiters
from mn.cascade import CascadeFacade
from mn.config import Settings
from mn.db import Database, ensure_database_exists, upgrade
from mn.flow import FlowEngine, load_flows, split_dirs
from mn.gc import GCManager
from mn.globalconfig import GlobalConfigManager
from mn.identity import IdentityManager
from mn.ids import new_uuid
from mn.membership import Membership
from mn.ring import Ring
from mn.service import Service, load_service_classes
from mn.tags import TagManager
from mn.workqueue import WorkQueues

log = logging.getLogger(__name__)


def _terminate_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


class ManagementNode:
    """Everything one MN process runs. Create, ``await start()``, ``await stop()``."""

    def __init__(self, settings: Settings, *, exit_process: Callable[[], None] = _terminate_self):
        self.settings = settings
        self.uuid = new_uuid()
        self.ring = Ring()
        self.callbacks = CallbackWaiters()
        self.agent_reports = AgentReports()
        self.queues = WorkQueues()
        self.db: Database | None = None
        self.bus: CloudBus | None = None
        self.membership: Membership | None = None
        self.services: dict[str, Service] = {}
        self.flows: FlowEngine | None = None
        # These read the db and bus only when used, so services can register
        # tag patterns, cascade extensions and GC runners when constructed.
        self.tags = TagManager(self)
        self.global_config = GlobalConfigManager(self)
        self.identity = IdentityManager(self)
        self.cascade = CascadeFacade(self)
        self.gc = GCManager(self)
        self.jobs = JobManager(self)
        self.query = QueryEngine(self)
        self.api = ApiDispatcher(self, self.jobs)
        # Importing the service classes registers their messages and APIs,
        # which the HTTP routes are built from before the node starts.
        self.service_classes = load_service_classes(settings.services)
        self._exit_process = exit_process
        self._heartbeat: asyncio.Task | None = None
        self.started = False

    async def start(self) -> None:
        settings = self.settings
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        flow_registry = load_flows(split_dirs(settings.flow_dirs))
        url = settings.database_url
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, ensure_database_exists, url)
        await loop.run_in_executor(None, upgrade, url)
        self.db = Database(url, threads=settings.db_threads)
        self.flows = FlowEngine(self, flow_registry)

        self.bus = CloudBus(settings.bus_url, self.uuid, self.ring, member=True,
                            call_timeout=settings.call_timeout)
        for cls in self.service_classes:
            service = cls(self)
            self.services[cls.SERVICE_ID] = service
            self.bus.register(cls.SERVICE_ID, service.handle)
        await self.bus.start()
        self.bus.subscribe(AgentCallbackArrivedEvent, self.callbacks.on_forwarded)
        await self.global_config.start()
        await self.identity.start()

        self.membership = Membership(
            node_uuid=self.uuid, db=self.db, bus=self.bus, ring=self.ring,
            host_name=settings.host_name, port=settings.port, version=__version__,
            interval=settings.heartbeat_interval, misses=settings.heartbeat_misses,
            on_self_removed=self._fenced)
        await self.membership.join()
        self.membership.on_node_left(self.flows.on_node_left)
        self.cascade.load_entry_points()
        await self.gc.start()
        await self.jobs.start()
        for service in self.services.values():
            await service.start()
        self.flows.start()
        self._heartbeat = asyncio.create_task(self.membership.run(), name="heartbeat")
        self.started = True
        # What start made (modules, models, registries) lives as long as the
        # process: keep it out of the collector's full passes, which otherwise
        # walk it all again and again (tens of ms each, seen in query p99).
        gc.freeze()
        self._record()
        log.info("management node %s started on %s:%d (ring of %d)", self.uuid,
                 settings.node_ip, settings.port, len(self.ring))

    async def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        await self.jobs.stop()
        for service in reversed(list(self.services.values())):
            try:
                await service.stop()
            except Exception:
                log.exception("service %s failed to stop", service.SERVICE_ID)
        if self.flows is not None:
            await self.flows.stop()
        await self.gc.stop()
        if self.membership is not None and self.started:
            await self.membership.leave()
        await self.queues.close()
        await self.identity.stop()
        await self.global_config.stop()
        if self.bus is not None:
            await self.bus.stop(delete_inbox=True)
        if self.db is not None:
            self.db.close()
        self.started = False
        self.info_file.unlink(missing_ok=True)
        log.info("management node %s stopped", self.uuid)

    @property
    def info_file(self):
        """``<var_dir>/node.json``: who runs here, for zstack-ctl and tests."""
        return self.settings.var_dir / "node.json"

    def _record(self) -> None:
        info = {"uuid": self.uuid, "pid": os.getpid(), "port": self.settings.port,
                "nodeIp": self.settings.node_ip, "version": __version__}
        self.info_file.write_text(json.dumps(info))

    async def _fenced(self) -> None:
        # Peers removed our row: they have taken over what we owned, so we
        # must not act on anything any more.
        self._exit_process()
