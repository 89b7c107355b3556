"""The consistent hash ring of live management nodes.

Every MN builds its ring from the same membership table, so for the same set
of live node uuids every MN computes the same owner for a resource uuid.
``uhashring`` places each node on the ring by hashing its uuid (160 virtual
nodes each), so the answer depends only on the set, not on insertion order.
"""

from __future__ import annotations

import threading
from typing import Iterable

from uhashring import HashRing


class EmptyRingError(LookupError):
    """No management node is alive to own anything."""


class Ring:
    """A replaceable, thread-safe view of the ring.

    Readers call :meth:`owner`; membership calls :meth:`update` with the live
    node uuids. Updates swap the whole ring at once, so a reader never sees a
    half-built ring.
    """

    def __init__(self, nodes: Iterable[str] = ()):
        self._lock = threading.Lock()
        self._nodes: tuple[str, ...] = ()
        self._ring = HashRing()
        self.update(nodes)

    @property
    def nodes(self) -> tuple[str, ...]:
        return self._nodes

    def update(self, nodes: Iterable[str]) -> bool:
        """Replace the members; returns True when the set changed."""
        new_nodes = tuple(sorted(set(nodes)))
        with self._lock:
            if new_nodes == self._nodes:
                return False
            self._ring = HashRing(nodes=list(new_nodes))
            self._nodes = new_nodes
            return True

    def owner(self, resource_uuid: str) -> str:
        """The uuid of the MN that owns ``resource_uuid``."""
        ring = self._ring
        if not self._nodes:
            raise EmptyRingError("no live management node is on the ring")
        return ring.get_node(resource_uuid)

    def __contains__(self, node_uuid: str) -> bool:
        return node_uuid in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)
