"""The broadcast that tells every MN a global config entry changed."""

from __future__ import annotations

from mn.bus import Event


class GlobalConfigUpdatedEvent(Event):
    """Published by the MN that stored a new value, after its commit.

    Receivers re-read the entry's row rather than trust ``value``: events of
    two concurrent updates may arrive in either order, the database holds
    the last write.
    """

    category: str
    name: str
    #: The text that was stored, for logs.
    value: str
    #: The MN that made the change (it has already applied it).
    nodeUuid: str
