"""Hosts follow their cluster's state (ZStack's HostExtensionToCluster).

Before a cluster is enabled or disabled, every host extension is asked
about each of its hosts (a refusal refuses the cluster's change); then each
host not in PreMaintenance or Maintenance gets the same event on its owner
MN. A host that fails to follow is logged and does not stop the cluster.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from mn.cluster.extensions import ClusterStateExtension
from mn.cluster.inventory import ClusterInventory
from mn.host.messages import ChangeHostStateMsg
from mn.host.state import DISABLE, ENABLE, MAINTENANCE_STATES

if TYPE_CHECKING:
    from mn.host.service import HostService

log = logging.getLogger(__name__)

#: Hosts changed at once when a cluster changes state.
PARALLEL_CHANGES = 32


class HostClusterExtension(ClusterStateExtension):
    """Registered with the cluster service by the host service."""

    def __init__(self, hosts: "HostService"):
        self.hosts = hosts

    async def pre_change(self, cluster: ClusterInventory, event: str, next_state: str) -> None:
        if event not in (ENABLE, DISABLE):
            return
        for host in await self.hosts.hosts_of_cluster(cluster.uuid):
            if host.state not in MAINTENANCE_STATES:
                await self.hosts.ask_extensions(host, event)

    async def before_change(self, cluster: ClusterInventory, event: str, next_state: str) -> None:
        if event not in (ENABLE, DISABLE):
            return
        hosts = [h for h in await self.hosts.hosts_of_cluster(cluster.uuid)
                 if h.state not in MAINTENANCE_STATES]
        bus = self.hosts.node.bus
        for start in range(0, len(hosts), PARALLEL_CHANGES):
            batch = hosts[start:start + PARALLEL_CHANGES]
            results = await asyncio.gather(
                *(bus.call(ChangeHostStateMsg(uuid=h.uuid, stateEvent=event)) for h in batch),
                return_exceptions=True)
            for host, result in zip(batch, results):
                if isinstance(result, BaseException):
                    log.warning("host %s (%s) did not follow cluster %s to %s: %s",
                                host.uuid, host.name, cluster.uuid, next_state, result)
