"""Expunging what the Delay deletion policy kept, once its period has passed
(ZStack's VM and data volume expunge tasks).

Every ``<category>/expungeInterval`` seconds each MN finds the resources
deleted longer than ``<category>/expungePeriod`` ago and expunges those it
owns on the ring, through the owning service (in the resource's work
queue), so no two MNs expunge one resource and an expunge never
interleaves with another operation on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any, Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from mn.db.types import utcnow
from mn.errors import OperationError
from mn.globalconfig import GlobalConfig, at_least

log = logging.getLogger(__name__)

VM_EXPUNGE_PERIOD = GlobalConfig(
    "vm", "expungePeriod", int, 604800, validators=[at_least(1)],
    description="the period before a destroyed vm being deleted from database and before its root volume "
                "being deleted from primary storage, in seconds")
VM_EXPUNGE_INTERVAL = GlobalConfig(
    "vm", "expungeInterval", int, 3600, validators=[at_least(2)],
    description="the interval the expunging vm task runs, in seconds")
VOLUME_EXPUNGE_PERIOD = GlobalConfig(
    "volume", "expungePeriod", int, 259200, validators=[at_least(1)],
    description="the period before a deleted data volume being deleted from database and primary storage, "
                "in seconds")
VOLUME_EXPUNGE_INTERVAL = GlobalConfig(
    "volume", "expungeInterval", int, 3600, validators=[at_least(2)],
    description="the interval the expunging data volume task runs, in seconds")


def deleted_before(model: Any, period_seconds: int, *where: Any) -> Callable[[Session], list[str]]:
    """A query for the uuids of ``model`` rows meeting ``where`` untouched for ``period_seconds``."""
    def find(session: Session) -> list[str]:
        deadline = utcnow() - timedelta(seconds=period_seconds)
        return list(session.scalars(select(model.uuid).where(*where, model.lastOpDate <= deadline)
                                    .order_by(model.uuid)))

    return find


class Expunger:
    """A periodic pass over due resources: ``due()`` lists them, ``expunge(uuid)``
    expunges one (raising OperationError if it is no longer due)."""

    def __init__(self, node: Any, name: str, interval: GlobalConfig,
                 due: Callable[[], Awaitable[list[str]]], expunge: Callable[[str], Awaitable[None]]):
        self.node, self.name, self.interval = node, name, interval
        self.due, self.expunge = due, expunge
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> None:
        # A new interval takes effect at once, not after the old one.
        self._unsubscribe = self.interval.on_change(lambda old, new: self._wake.set())
        self._task = asyncio.create_task(self._loop(), name=f"{self.name}-expunger")

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self) -> int:
        """Expunge what is due and owned by this MN now; returns how many were."""
        done = 0
        for uuid in await self.due():
            if self.node.ring.owner(uuid) != self.node.uuid:
                continue  # its owner expunges it
            try:
                await self.expunge(uuid)
                done += 1
            except OperationError as exc:
                # Recovered or expunged meanwhile; the next pass sees the truth.
                log.info("%s %s not expunged: %s", self.name, uuid, exc.error.details)
        if done:
            log.info("expunged %d %s(s) past their expunge period", done, self.name)
        return done

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval.value)
            try:
                await self.run_once()
            except Exception:
                log.exception("the %s expunge pass failed; trying again in %ds", self.name, self.interval.value)
