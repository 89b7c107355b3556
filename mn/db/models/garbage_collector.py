"""GarbageCollectorVO: deferred cleanups, stored until they succeed."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Optional

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mn.db.models.base import Base
from mn.db.types import Timestamp, created_or_now, utcnow
from mn.ids import new_uuid


class GCStatus(str, enum.Enum):
    """ZStack's ``GCStatus``: where a job is in its life."""

    #: Waiting for its next run (timer or trigger event).
    Idle = "Idle"
    #: Claimed and running on ``managementNodeUuid``.
    Processing = "Processing"
    #: Collected; kept for a while so operators can see it.
    Done = "Done"


class GarbageCollectorType(str, enum.Enum):
    """ZStack's ``GarbageCollectorType``: what makes a job retry."""

    #: Retried on a timer only.
    TimeBased = "TimeBased"
    #: Retried on a timer and at once on matching bus events.
    EventBased = "EventBased"


class GarbageCollectorVO(Base):
    """One garbage collection job: a runner class and the JSON context it needs.

    ZStack's columns, plus ``nextRunDate``, ``retries`` and ``lastError``,
    which the timer and operators need.
    """

    __tablename__ = "GarbageCollectorVO"
    __table_args__ = (Index(None, "status", "nextRunDate"),)

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255))
    #: ``module:QualifiedClassName`` of the GarbageCollector subclass.
    runnerClass: Mapped[str] = mapped_column(String(512))
    #: The runner's context, a JSON object.
    context: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32), default=GCStatus.Idle.value)
    type: Mapped[str] = mapped_column(String(32), default=GarbageCollectorType.TimeBased.value)
    #: The MN running (or that last ran) the job; cleared when that MN's row
    #: goes, as in ZStack, which marks a Processing job as orphaned.
    managementNodeUuid: Mapped[Optional[str]] = mapped_column(
        String(32), ForeignKey("ManagementNodeVO.uuid", ondelete="SET NULL"))
    #: When the timer runs the job next.
    nextRunDate: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    #: Failed runs so far; the retry delay doubles with each.
    retries: Mapped[int] = mapped_column(default=0)
    lastError: Mapped[Optional[str]] = mapped_column(Text)
    createDate: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    lastOpDate: Mapped[datetime] = mapped_column(Timestamp, default=created_or_now, onupdate=utcnow)
