"""What other services can do when a cluster changes state (ZStack's ClusterChangeStateExtensionPoint).

A service that cares (later: hosts follow their cluster) registers an
extension with the cluster service when it starts::

    node.services["cluster"].add_state_extension(MyClusterExtension())
"""

from __future__ import annotations

from mn.cluster.inventory import ClusterInventory


class ClusterStateExtension:
    """Hooks around a cluster's state change; override the ones you need.

    ``pre_change`` may refuse by raising OperationError (the change fails
    with SYS.1005 and nothing changes); it is also asked, for every cluster
    of a zone, before that zone changes state. ``before_change`` and
    ``after_change`` cannot stop the change: what they raise is logged.
    """

    async def pre_change(self, cluster: ClusterInventory, event: str, next_state: str) -> None:
        """Raise OperationError to refuse changing ``cluster`` to ``next_state``."""

    async def before_change(self, cluster: ClusterInventory, event: str, next_state: str) -> None:
        """Called once no extension refused, before the new state is stored."""

    async def after_change(self, cluster: ClusterInventory, event: str, previous_state: str) -> None:
        """Called with the cluster's new inventory after the new state is stored."""
