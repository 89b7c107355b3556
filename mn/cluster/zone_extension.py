"""Clusters follow their zone's state (ZStack's ClusterExtensionToZone).

Before a zone changes state, every extension of each of its clusters is
asked (a refusal refuses the zone's change); then each cluster gets the
same state event on its owner MN. A cluster that fails to follow is
logged and does not stop the zone, as in ZStack.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from mn.cluster.messages import ChangeClusterStateMsg
from mn.zone.extensions import ZoneStateExtension
from mn.zone.inventory import ZoneInventory

if TYPE_CHECKING:
    from mn.cluster.service import ClusterService

log = logging.getLogger(__name__)

#: Clusters changed at once when a zone changes state.
PARALLEL_CHANGES = 32


class ClusterZoneExtension(ZoneStateExtension):
    """Registered with the zone service by the cluster service."""

    def __init__(self, clusters: "ClusterService"):
        self.clusters = clusters

    async def pre_change(self, zone: ZoneInventory, event: str, next_state: str) -> None:
        for cluster in await self.clusters.clusters_of_zone(zone.uuid):
            await self.clusters.ask_extensions(cluster, event)

    async def before_change(self, zone: ZoneInventory, event: str, next_state: str) -> None:
        clusters = await self.clusters.clusters_of_zone(zone.uuid)
        bus = self.clusters.node.bus
        for start in range(0, len(clusters), PARALLEL_CHANGES):
            batch = clusters[start:start + PARALLEL_CHANGES]
            results = await asyncio.gather(
                *(bus.call(ChangeClusterStateMsg(uuid=c.uuid, stateEvent=event)) for c in batch),
                return_exceptions=True)
            for cluster, result in zip(batch, results):
                if isinstance(result, BaseException):
                    log.warning("cluster %s (%s) did not follow zone %s to %s: %s",
                                cluster.uuid, cluster.name, zone.uuid, next_state, result)
