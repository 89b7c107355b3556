"""ApiJobVO: the record of an asynchronous API call, polled by clients."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mn.db.models.base import Base
from mn.db.types import Timestamp, created_or_now, utcnow

#: Values of ApiJobVO.state.
JOB_PROCESSING, JOB_SUCCEEDED, JOB_FAILED = "Processing", "Succeeded", "Failed"


class ApiJobVO(Base):
    """One API job: accepted by an MN, run, its rendered result kept until it expires."""

    __tablename__ = "ApiJobVO"
    __table_args__ = (
        Index("ix_ApiJobVO_managementNodeUuid_state", "managementNodeUuid", "state"),
        Index("ix_ApiJobVO_state_lastOpDate", "state", "lastOpDate"),
    )

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    apiName: Mapped[str] = mapped_column(String(255), nullable=False)
    state: Mapped[str] = mapped_column(String(32), nullable=False, default=JOB_PROCESSING)
    managementNodeUuid: Mapped[str] = mapped_column(String(32), nullable=False)
    #: {"fullName": <response class>, "body": <rendered response>} once ended.
    result: Mapped[str | None] = mapped_column(Text, nullable=True)
    webHook: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    createDate: Mapped[datetime] = mapped_column(Timestamp, nullable=False, default=utcnow)
    lastOpDate: Mapped[datetime] = mapped_column(Timestamp, nullable=False, default=created_or_now, onupdate=utcnow)
