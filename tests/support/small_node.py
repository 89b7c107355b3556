"""A management node with just what the API services use, for service tests.

It has a real database (migrated), a real bus (``memory://`` or AMQP), work
queues, tags, global config and cascade, but no membership, flows, GC, HTTP
or identity (``identity`` is None unless a test sets one), so a test can
call services through the bus in milliseconds::

    node = SmallNode(sqlite_url)
    await node.start(ZoneService, ClusterService)
    event = await node.call(APICreateZoneMsg(name="z1"))
"""

from __future__ import annotations

import asyncio
from typing import Any

from mn.api.dispatch import ApiDispatcher
from mn.api.jobs import JobManager
from mn.api.message import APIMessage, SessionInfo
from mn.bus import CloudBus, Message, Reply
from mn.cascade import CascadeFacade
from mn.db import Database, ensure_database_exists, upgrade
from mn.globalconfig import GlobalConfigManager, GlobalConfigRegistry
from mn.ids import new_uuid
from mn.ring import Ring
from mn.tags import TagManager
from mn.workqueue import WorkQueues

#: What the API layer puts on messages of the admin account.
ADMIN = SessionInfo(uuid=new_uuid(), accountUuid="36c27e8ff05c4780bf6d2fa65700f22e", isAdmin=True)


class SmallNode:
    """``uuid``, ``db``, ``bus``, ``ring``, ``queues``, ``tags``, ``global_config``,
    ``cascade``, ``services`` and ``identity`` of a ManagementNode."""

    def __init__(self, db_url: str, *, bus_url: str = "memory://", ring: Ring | None = None,
                 uuid: str | None = None, registry: GlobalConfigRegistry | None = None):
        self.uuid = uuid or new_uuid()
        self.db_url = db_url
        self.bus_url = bus_url
        self.ring = ring if ring is not None else Ring([self.uuid])
        self.queues = WorkQueues()
        self.db: Database | None = None
        self.bus: CloudBus | None = None
        self.services: dict[str, Any] = {}
        self.identity: Any = None
        self.tags = TagManager(self)
        # A registry of the test's own: the process-wide one serves one manager at a time.
        self.global_config = GlobalConfigManager(self, registry=registry or GlobalConfigRegistry())
        self.cascade = CascadeFacade(self)
        self.api = ApiDispatcher(self, JobManager(self))

    async def start(self, *service_classes: type) -> "SmallNode":
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, ensure_database_exists, self.db_url)
        await loop.run_in_executor(None, upgrade, self.db_url)
        self.db = Database(self.db_url, threads=4)
        self.bus = CloudBus(self.bus_url, self.uuid, self.ring, member=True, call_timeout=20)
        for cls in service_classes:
            service = cls(self)
            self.services[cls.SERVICE_ID] = service
            self.bus.register(cls.SERVICE_ID, service.handle)
        await self.bus.start()
        await self.global_config.start()
        for service in self.services.values():
            await service.start()
        return self

    async def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            await service.stop()
        await self.queues.close()
        await self.global_config.stop()
        if self.bus is not None:
            await self.bus.stop(delete_inbox=True)
        if self.db is not None:
            self.db.close()

    async def call(self, msg: Message, *, session: SessionInfo | None = ADMIN) -> Reply:
        """Send ``msg`` as the API layer would (an API message gets ``session``);
        raises OperationError if it fails."""
        if isinstance(msg, APIMessage):
            msg.session = session
        return await self.bus.call(msg)

    async def intercept_and_call(self, msg: APIMessage, *, session: SessionInfo | None = ADMIN) -> Reply:
        """The service's interceptor (as the API layer runs it), then the call."""
        msg.session = session
        await self.services[msg.SERVICE].intercept(msg)
        return await self.call(msg, session=session)
