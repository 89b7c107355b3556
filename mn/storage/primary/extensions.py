"""What other services can do when a primary storage changes state
(ZStack's PrimaryStorageChangeStateExtensionPoint).

The VM service, for one, stops the VMs whose volumes are on a storage
entering Maintenance, as ZStack does. It registers when it starts::

    node.services["storage.primary"].add_state_extension(MyExtension())
"""

from __future__ import annotations

from mn.storage.primary.inventory import PrimaryStorageInventory


class PrimaryStorageStateExtension:
    """Hooks around a primary storage's state change; override the ones you need.

    ``pre_change`` may refuse by raising OperationError (the change fails
    with SYS.1005 and nothing changes). ``before_change`` runs once no
    extension refused, before the new state is stored (e.g. stop VMs before
    Maintenance); ``after_change`` runs with the new inventory. What those
    two raise is logged and does not stop the change.
    """

    async def pre_change(self, storage: PrimaryStorageInventory, event: str, next_state: str) -> None:
        """Raise OperationError to refuse changing ``storage`` to ``next_state``."""

    async def before_change(self, storage: PrimaryStorageInventory, event: str, next_state: str) -> None:
        """Called once no extension refused, before the new state is stored."""

    async def after_change(self, storage: PrimaryStorageInventory, event: str, previous_state: str) -> None:
        """Called with the storage's new inventory after the new state is stored."""
