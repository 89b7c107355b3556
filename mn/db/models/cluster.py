"""ClusterVO: hosts of one hypervisor type in one zone."""

from __future__ import annotations

from typing import Optional

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from mn.db.models.base import Base, ResourceMixin

#: ``type`` of clusters created by the core (ZStack's ClusterConstant.ZSTACK_CLUSTER_TYPE).
ZSTACK_CLUSTER_TYPE = "zstack"


class ClusterVO(ResourceMixin, Base):
    """A cluster, with ZStack's columns (ClusterAO).

    ``zoneUuid`` is RESTRICT as in ZStack: a zone goes only after its
    clusters, which the cascade deletes first. ``managementNodeId`` records
    the MN that created the cluster (ZStack's column; nothing depends on it).
    """

    __tablename__ = "ClusterVO"

    name: Mapped[str] = mapped_column(String(255), index=True)
    zoneUuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("ZoneVO.uuid", ondelete="RESTRICT"), index=True)
    type: Mapped[str] = mapped_column(String(255), default=ZSTACK_CLUSTER_TYPE)
    state: Mapped[str] = mapped_column(String(32), default="Enabled")
    hypervisorType: Mapped[str] = mapped_column(String(64))
    managementNodeId: Mapped[Optional[str]] = mapped_column(String(128))
    architecture: Mapped[Optional[str]] = mapped_column(String(32))
