"""Membership table: one row per running management node."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from mn.db.models.base import Base
from mn.db.types import Timestamp, utcnow
from mn.ids import new_uuid


class ManagementNodeVO(Base):
    """A management node of the cluster and its last heartbeat."""

    __tablename__ = "ManagementNodeVO"

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_uuid)
    hostName: Mapped[str] = mapped_column(String(255))
    port: Mapped[int]
    state: Mapped[str] = mapped_column(String(32), default="Running")
    joinDate: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    heartBeat: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    #: Software version of the node, to spot mixed-version clusters.
    version: Mapped[Optional[str]] = mapped_column(String(64))
