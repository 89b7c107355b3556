"""Expunges images deleted with the Delay policy once ``image/expungePeriod`` has passed
(ZStack's image expunge task).

Every ``image/expungeInterval`` seconds each MN looks for copies Deleted
longer than the period and expunges those of the images it owns on the
ring, in each image's work queue, so no two MNs expunge one image and an
expunge never interleaves with another operation on it. Under the Never
policy nothing is expunged automatically.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from mn.db.models.image import ImageBackupStorageRefVO as Ref
from mn.db.types import utcnow
from mn.errors import OperationError
from mn.image import constants as c
from mn.image.config import DELETION_POLICY, EXPUNGE_INTERVAL, EXPUNGE_PERIOD, NEVER

if TYPE_CHECKING:
    from mn.image.service import ImageService

log = logging.getLogger(__name__)


def expired_copies(session: Session, period_seconds: int) -> dict[str, list[str]]:
    """Backup storages of copies Deleted at least ``period_seconds`` ago, by image uuid."""
    deadline = utcnow() - timedelta(seconds=period_seconds)
    rows = session.execute(select(Ref.imageUuid, Ref.backupStorageUuid)
                           .where(Ref.status == c.DELETED, Ref.lastOpDate <= deadline)
                           .order_by(Ref.imageUuid, Ref.backupStorageUuid))
    found: dict[str, list[str]] = defaultdict(list)
    for image_uuid, bs_uuid in rows:
        found[image_uuid].append(bs_uuid)
    return dict(found)


class ImageExpunger:
    """The periodic expunge of one MN; :meth:`run_once` is one pass."""

    def __init__(self, images: "ImageService"):
        self.images = images
        self.node = images.node
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._unsubscribe: list = []

    def start(self) -> None:
        # A new interval or policy takes effect at once, not after the old interval.
        self._unsubscribe = [entry.on_change(lambda old, new: self._wake.set())
                             for entry in (EXPUNGE_INTERVAL, DELETION_POLICY)]
        self._task = asyncio.create_task(self._loop(), name="image-expunger")

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self) -> int:
        """Expunge what is due on this MN now; returns how many images were expunged."""
        if DELETION_POLICY.value == NEVER:
            return 0
        due = await self.node.db.run(expired_copies, EXPUNGE_PERIOD.value)
        done = 0
        for image_uuid, bs_uuids in due.items():
            if self.node.ring.owner(image_uuid) != self.node.uuid:
                continue  # its owner expunges it
            try:
                await self.images.expunge(image_uuid, bs_uuids)
                done += 1
            except OperationError as exc:
                # Recovered or expunged meanwhile; the next pass sees the truth.
                log.info("image %s: not expunged from %s: %s", image_uuid, bs_uuids, exc.error.details)
        if done:
            log.info("expunged %d image(s) deleted more than %ds ago", done, EXPUNGE_PERIOD.value)
        return done

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), EXPUNGE_INTERVAL.value)
            try:
                await self.run_once()
            except Exception:
                log.exception("the image expunge pass failed; trying again in %ds", EXPUNGE_INTERVAL.value)
