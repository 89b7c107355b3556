"""Helpers shared by the identity tests (this module holds no tests).

The identity tests run the manager and the service on SQLite with the
in-process bus, calling handlers directly as the API layer would.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timezone

from mn.api.message import SessionInfo
from mn.bus import CloudBus
from mn.db import Database
from mn.globalconfig import GlobalConfig, GlobalConfigManager
from mn.identity import IdentityManager, IdentityService
from mn.identity.config import SESSION_MAX_CONCURRENT, SESSION_TIMEOUT
from mn.identity.messages import APICreateAccessKeyMsg, APICreateAccountMsg
from mn.identity import password
from mn.identity.password import client_digest
from mn.identity.signature import format_date, sign
from mn.ids import new_uuid
from mn.tags import TagManager
from mn.workqueue import WorkQueues


class IdentityNode:
    """What identity uses of a ManagementNode: uuid, db, queues, tags, and a
    bus (started only to serve global config); plus ``identity`` (the
    manager) and ``service`` (the API handlers)."""

    def __init__(self, db: Database):
        self.uuid = new_uuid()
        self.db = db
        self.bus = CloudBus("memory://")
        self.queues = WorkQueues()
        self.tags = TagManager(self)
        self.identity = IdentityManager(self)
        self.service = IdentityService(self)

    async def start(self) -> "IdentityNode":
        await self.identity.start()
        return self

    async def stop(self) -> None:
        await self.identity.stop()
        await self.queues.close()

    async def call(self, msg, session: SessionInfo | None):
        """Intercept and handle ``msg`` as the API layer does."""
        msg.session = session
        await self.service.intercept(msg)
        return await self.service.handle(msg, None)

    async def login(self, name: str = "admin", password: str = "password") -> SessionInfo:
        inventory = await self.identity.login(name, client_digest(password))
        return await self.identity.session_info(inventory.uuid)

    async def new_account(self, admin: SessionInfo, name: str, password: str = "secret",
                          **fields) -> str:
        event = await self.call(APICreateAccountMsg(name=name, password=client_digest(password),
                                                    **fields), admin)
        return event.inventory.uuid

    async def new_access_key(self, session: SessionInfo, account_uuid: str):
        event = await self.call(APICreateAccessKeyMsg(accountUuid=account_uuid,
                                                      userUuid=account_uuid), session)
        return event.inventory


def cheap_password_hashing(monkeypatch) -> None:
    """Make scrypt cheap for the test (rows record their cost, so they still verify)."""
    monkeypatch.setattr(password, "SCRYPT_N", 2 ** 8)


def signed(key_id: str, secret: str, method: str, path: str,
           when: datetime | None = None) -> tuple[str, str]:
    """The Authorization and Date headers a ZStack SDK sends for a request."""
    date = format_date(when or datetime.now(timezone.utc))
    return f"ZStack {key_id}:{sign(secret, method, date, path)}", date


@contextlib.asynccontextmanager
async def global_config(node: IdentityNode) -> AsyncIterator[None]:
    """Serve the process's global config entries while the block runs, so
    tests can ``await ENTRY.update(...)``; identity's entries are reset after."""
    await node.bus.start()
    manager = GlobalConfigManager(node)
    await manager.start()
    try:
        yield
    finally:
        entry: GlobalConfig
        for entry in (SESSION_TIMEOUT, SESSION_MAX_CONCURRENT):
            await entry.update(entry.default)
        await manager.stop()
        await node.bus.stop(delete_inbox=True)
