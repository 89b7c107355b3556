"""ZoneVO: a data center; everything physical lives in exactly one zone."""

from __future__ import annotations

from sqlalchemy import Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from mn.db.models.base import Base, ResourceMixin

#: ``type`` of every zone: ZStack has no other zone type.
ZSTACK_ZONE_TYPE = "zstack"


class ZoneVO(ResourceMixin, Base):
    """A zone, with ZStack's columns (ZoneAO).

    ``isDefault`` marks at most one zone as the one to use when a caller names
    none; the zone service keeps it unique.
    """

    __tablename__ = "ZoneVO"

    name: Mapped[str] = mapped_column(String(255), index=True)
    type: Mapped[str] = mapped_column(String(255), default=ZSTACK_ZONE_TYPE)
    state: Mapped[str] = mapped_column(String(32), default="Enabled")
    isDefault: Mapped[bool] = mapped_column(Boolean, default=False)
