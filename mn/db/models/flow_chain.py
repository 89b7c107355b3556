"""FlowChainVO: the durable record of a running flow chain."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from mn.db.models.base import Base
from mn.db.types import Timestamp, created_or_now, utcnow
from mn.ids import new_uuid

#: JSON documents: MariaDB's TEXT stops at 64 KiB, which a chain's data map
#: may pass; LONGTEXT has no practical limit.
JsonText = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


class FlowChainVO(Base):
    """Progress of one durable chain run, so another MN can end it after a crash.

    A row lives while its chain runs and is deleted when the chain ends
    (see ``mn/flow/persistence.py`` for the states). ``completedSteps`` is a
    JSON list of step ids in the order they completed, ``currentStep`` the
    step running (or being rolled back) now, ``data`` the chain's data map
    as of the last completed step, ``errorCode`` the failing step's error
    once rollback started.
    """

    __tablename__ = "FlowChainVO"

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_uuid)
    chainName: Mapped[str] = mapped_column(String(255))
    resourceUuid: Mapped[Optional[str]] = mapped_column(String(32))
    resourceType: Mapped[Optional[str]] = mapped_column(String(255))
    #: The MN running the chain; the only writer of the row while it lives.
    managementNodeUuid: Mapped[str] = mapped_column(String(32), index=True)
    state: Mapped[str] = mapped_column(String(32))
    currentStep: Mapped[Optional[str]] = mapped_column(String(1024))
    completedSteps: Mapped[str] = mapped_column(JsonText)
    data: Mapped[str] = mapped_column(JsonText)
    errorCode: Mapped[Optional[str]] = mapped_column(JsonText)
    createDate: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    lastOpDate: Mapped[datetime] = mapped_column(Timestamp, default=created_or_now, onupdate=utcnow)
