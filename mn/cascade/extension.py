"""What a resource type tells the cascade: its parents and how to delete it.

ZStack calls this a ``CascadeExtensionPoint``: a resource type names the
types it depends on (its *edges*, here ``parents``), finds its own resources
that depend on given parent resources, and takes part in each action of a
deletion: check, delete (or force delete) and cleanup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mn.errors import OperationError, SysErrors, error

if TYPE_CHECKING:
    from mn.node import ManagementNode

#: Deletion modes, as ZStack's ``APIDeleteMessage.DeletionMode``.
#: Permissive: every resource in the tree may refuse (``check``); the
#: deletion happens only if none does.
PERMISSIVE = "Permissive"
#: Enforcing: nothing is asked; every resource is force-deleted.
ENFORCING = "Enforcing"
DELETION_MODES = (PERMISSIVE, ENFORCING)

#: Action codes, ZStack's ``CascadeConstant``; ``CascadeContext.action`` holds
#: the one being run.
DELETION_CHECK = "deletion.check"
DELETION_DELETE = "deletion.delete"
DELETION_FORCE_DELETE = "deletion.forceDelete"
DELETION_CLEANUP = "deletion.cleanup"


class DeletionRefused(OperationError):
    """Raised by :meth:`CascadeExtension.check` to refuse deleting one resource.

    The facade turns it into an error naming the resource type, this uuid
    and ``reason``. Any other :class:`OperationError` raised by ``check``
    refuses too, with its own details as the reason.
    """

    def __init__(self, resource_uuid: str, reason: str):
        super().__init__(error(SysErrors.DELETE_RESOURCE_ERROR, f"{resource_uuid}: {reason}"))
        self.resource_uuid = resource_uuid
        self.reason = reason


@dataclass
class CascadeContext:
    """What every extension call of one cascade deletion sees."""

    #: The management node running the deletion (``node.db``, ``node.bus``...).
    node: "ManagementNode | Any"
    #: ``PERMISSIVE`` or ``ENFORCING``.
    mode: str
    #: The resource type and uuids the deletion was asked for.
    root_type: str
    root_uuids: list[str]
    #: Whatever the caller passed along, typically the API message being served.
    request: Any = None
    #: The action code being run (``DELETION_CHECK``...).
    action: str = DELETION_CHECK
    #: Every resource in the deletion, by type (roots included), once found.
    tree: dict[str, list[str]] = field(default_factory=dict)

    @property
    def forced(self) -> bool:
        return self.mode == ENFORCING


class CascadeExtension:
    """One resource type's part in cascade deletions.

    Subclasses set ``resource_type`` (ZStack uses the VO class name, e.g.
    ``"HostVO"``) and ``parents`` (the resource types whose deletion deletes
    this type), and implement :meth:`children` and :meth:`delete`. All
    methods receive batches of uuids, so one call can be one SQL statement.
    """

    #: A class attribute, or set per instance by generic extensions.
    resource_type: str
    parents: tuple[str, ...] = ()

    async def children(self, ctx: CascadeContext, parent_type: str, parent_uuids: list[str]) -> list[str]:
        """Uuids of this type's resources that depend on ``parent_uuids`` of ``parent_type``."""
        raise NotImplementedError(f"{type(self).__name__} must find its resources under {parent_type}")

    async def check(self, ctx: CascadeContext, uuids: list[str]) -> None:
        """Raise :class:`DeletionRefused` (or any OperationError) to refuse; Permissive mode only."""

    async def delete(self, ctx: CascadeContext, uuids: list[str]) -> None:
        """Delete ``uuids`` (their own descendants are already gone)."""
        raise NotImplementedError(f"{type(self).__name__} must delete its resources")

    async def force_delete(self, ctx: CascadeContext, uuids: list[str]) -> None:
        """Delete ``uuids`` in Enforcing mode, whatever their state; by default :meth:`delete`."""
        await self.delete(ctx, uuids)

    async def cleanup(self, ctx: CascadeContext, uuids: list[str]) -> None:
        """Tidy up after the whole tree is deleted (caches, agents, GC jobs); failures are logged."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {getattr(self, 'resource_type', '?')}>"
