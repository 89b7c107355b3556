"""Cascade deletion: resources declare their parents; deleting walks descendants leaves first.

A service makes its resource type part of cascades by registering an
extension, typically in its ``start()``::

    class HostCascade(CascadeExtension):
        resource_type = "HostVO"
        parents = ("ClusterVO",)
        async def children(self, ctx, parent_type, parent_uuids): ...
        async def delete(self, ctx, uuids): ...

    node.cascade.register(HostCascade())
    await node.cascade.delete("ZoneVO", [zone_uuid], mode=PERMISSIVE)

Plugins may instead declare the extension class under the ``zstack.cascade``
entry point group.
"""

from mn.cascade.extension import (
    DELETION_CHECK,
    DELETION_CLEANUP,
    DELETION_DELETE,
    DELETION_FORCE_DELETE,
    DELETION_MODES,
    ENFORCING,
    PERMISSIVE,
    CascadeContext,
    CascadeExtension,
    DeletionRefused,
)
from mn.cascade.facade import CASCADE_ENTRY_POINTS, CascadeFacade, CascadeGraphError

__all__ = [
    "CASCADE_ENTRY_POINTS",
    "DELETION_CHECK",
    "DELETION_CLEANUP",
    "DELETION_DELETE",
    "DELETION_FORCE_DELETE",
    "DELETION_MODES",
    "ENFORCING",
    "PERMISSIVE",
    "CascadeContext",
    "CascadeExtension",
    "CascadeFacade",
    "CascadeGraphError",
    "DeletionRefused",
]
