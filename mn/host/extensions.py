"""What other services can do around a host's life (ZStack's HostAddExtensionPoint,
HostChangeStateExtensionPoint and the maintenance hook of HostBase).

A service that cares registers an object with the host service when it
starts; the object needs only the hooks it uses::

    class StopVmsOnMaintenance:
        async def before_maintenance(self, host_uuid: str) -> None:
            ...  # stop or migrate every VM on the host; raise to refuse

    node.services["host"].add_maintenance_extension(StopVmsOnMaintenance())

Every MN registers the same extensions (each MN starts every service), so
whichever MN owns a host runs them.
"""

from __future__ import annotations

from mn.host.inventory import HostInventory


class HostExtension:
    """The hooks, all optional; subclassing this class is not required.

    Hooks run in the host's work queue (``host-<uuid>``) on the MN that owns
    the host: they must not wait for another operation on the same host
    (ChangeHostState, ReconnectHost, DeleteHost of that host), which would
    wait behind them forever.
    """

    async def pre_change_state(self, host: HostInventory, event: str, next_state: str) -> None:
        """Raise OperationError to refuse changing ``host`` to ``next_state``
        (also asked for every host of a cluster before the cluster changes)."""

    async def before_maintenance(self, host_uuid: str) -> None:
        """The host is in PreMaintenance: empty it (stop or migrate its VMs).

        Raising OperationError fails the maintenance: the host goes back to
        the state it had and the API fails with HOST.1001 and this cause.
        """

    async def after_add_host(self, host: HostInventory) -> None:
        """The host is added and Connected. Raising OperationError fails the
        addition: the host is deleted again (Enforcing cascade) and the API
        fails with HOST.1000 and this cause."""

    async def after_status_changed(self, host: HostInventory, old_status: str) -> None:
        """The host's connection status changed from ``old_status`` to
        ``host.status`` (stored already). Errors are logged, not raised: the
        change stands (the VM service marks the VMs of a Disconnected host
        Unknown here)."""


#: The hook names the host service calls.
HOOKS = ("pre_change_state", "before_maintenance", "after_add_host", "after_status_changed")
