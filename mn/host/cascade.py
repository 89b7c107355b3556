"""Hosts in cascade deletions (ZStack's HostCascadeExtension): under their
cluster, with their capacity and hypervisor rows."""

from __future__ import annotations

from sqlalchemy import delete

from mn.cascade import CascadeContext
from mn.db.models.cluster import ClusterVO
from mn.db.models.host import HostCapacityVO, HostVO, SimulatorHostVO
from mn.zone.cascade import TableCascade

#: Tables holding one row per host beside HostVO, deleted with it.
HOST_DETAIL_TABLES = (HostCapacityVO, SimulatorHostVO)


class HostCascade(TableCascade):
    """HostVO under ClusterVO. What runs on a host (VMs) registers HostVO as
    its parent and is deleted first, leaves first, by its own extension."""

    def __init__(self) -> None:
        super().__init__(HostVO, {ClusterVO.__tablename__: "clusterUuid"})

    async def delete(self, ctx: CascadeContext, uuids: list[str]) -> None:
        def remove(session) -> None:
            # The foreign keys cascade too; deleting explicitly keeps the
            # outcome the same where they are not enforced.
            for table in HOST_DETAIL_TABLES:
                session.execute(delete(table).where(table.uuid.in_(uuids)),
                                execution_options={"synchronize_session": False})
            session.execute(delete(HostVO).where(HostVO.uuid.in_(uuids)),
                            execution_options={"synchronize_session": False})

        await ctx.node.db.run(remove)
