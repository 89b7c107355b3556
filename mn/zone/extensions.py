"""What other services can do when a zone changes state (ZStack's ZoneChangeStateExtensionPoint).

A service that cares (the cluster service: clusters follow their zone)
registers an extension with the zone service when it starts::

    node.services["zone"].add_state_extension(MyZoneExtension())
"""

from __future__ import annotations

from mn.zone.inventory import ZoneInventory


class ZoneStateExtension:
    """Hooks around a zone's state change; override the ones you need.

    ``pre_change`` may refuse by raising OperationError (the change fails
    with SYS.1005 and nothing changes). ``before_change`` and
    ``after_change`` cannot stop the change: what they raise is logged.
    """

    async def pre_change(self, zone: ZoneInventory, event: str, next_state: str) -> None:
        """Raise OperationError to refuse changing ``zone`` to ``next_state``."""

    async def before_change(self, zone: ZoneInventory, event: str, next_state: str) -> None:
        """Called once no extension refused, before the new state is stored."""

    async def after_change(self, zone: ZoneInventory, event: str, previous_state: str) -> None:
        """Called with the zone's new inventory after the new state is stored."""
