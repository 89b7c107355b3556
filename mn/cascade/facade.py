"""The cascade facade: the graph of resource types and the deletion walk.

Each registered :class:`~mn.cascade.extension.CascadeExtension` adds one
node (its resource type) and an edge from each of its parents, so the graph
grows by registration alone: a new resource type takes part in deletions
without any change here. Registration refuses an extension that would close
a cycle, so the graph is always a DAG.

Deleting resources of type R walks the part of the graph below R:

1. find the resources, level by level from R down: each type asks its
   extension for its resources under the parents found so far. A type's
   level is its *longest* distance from R, so a type reachable through
   several paths is found once all its parents are, and handled once;
2. Permissive: ``check`` every type; one refusal aborts the deletion with
   nothing deleted. Enforcing skips this;
3. ``delete`` (Enforcing: ``force_delete``) level by level, deepest first,
   so a resource is deleted only after everything depending on it; the
   tags and ownership records of each deleted resource go with it;
4. ``cleanup`` every type in the same order; a failing cleanup is logged
   and does not stop the others (the resources are already gone).

A failing ``delete`` stops the walk and raises: the deeper levels already
deleted stay deleted (they are not restorable), and since children go
before their parents, what remains is consistent and the deletion can be
retried. Resources created under the tree while the walk runs are not seen.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any

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
from mn.errors import OperationError, SysErrors, error

log = logging.getLogger(__name__)

#: Entry point group of extensions provided by plugins; each entry point
#: names an extension class (instantiated without arguments) or instance.
CASCADE_ENTRY_POINTS = "zstack.cascade"

#: Most uuids passed to one extension call; keeps ``IN (...)`` lists and
#: transactions of huge deletions bounded.
DEFAULT_BATCH_SIZE = 500

#: Root uuids named in an error message before it abbreviates.
_UUIDS_SHOWN = 5


class CascadeGraphError(ValueError):
    """An extension that cannot be added: bad declaration, duplicate or cycle."""


async def _forget(node, uuids: list[str]) -> None:
    """Remove what other frameworks keep about deleted resources: their
    tags and their ownership records."""
    tags = getattr(node, "tags", None)
    if tags is not None:
        await tags.delete_tags_of(uuids)
    identity = getattr(node, "identity", None)
    if identity is not None:
        await node.db.run(identity.delete_refs_in_session, uuids)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _describe(resource_type: str, uuids: list[str]) -> str:
    shown = ", ".join(uuids[:_UUIDS_SHOWN])
    more = f", ... ({len(uuids)} in all)" if len(uuids) > _UUIDS_SHOWN else ""
    return f"{resource_type}[{shown}{more}]"


class CascadeFacade:
    """Registered cascade extensions and the deletions that walk them."""

    def __init__(self, node: Any = None, *, batch_size: int = DEFAULT_BATCH_SIZE):
        self.node = node
        self.batch_size = batch_size
        # Registration order is kept: it orders types of the same level.
        self._extensions: dict[str, CascadeExtension] = {}

    # -- the graph --------------------------------------------------------------

    def register(self, extension: CascadeExtension) -> None:
        """Add a resource type; raises :class:`CascadeGraphError` and changes nothing if it cannot."""
        resource_type = getattr(extension, "resource_type", None)
        if not isinstance(resource_type, str) or not resource_type:
            raise CascadeGraphError(f"{extension!r} declares no resource_type")
        parents = tuple(getattr(extension, "parents", ()))
        if not all(isinstance(parent, str) and parent for parent in parents):
            raise CascadeGraphError(f"{resource_type}: parents must be resource type names, not {parents!r}")
        if resource_type in self._extensions:
            raise CascadeGraphError(f"{resource_type} is already registered by {self._extensions[resource_type]!r}")
        if resource_type in parents:
            raise CascadeGraphError(f"{resource_type} names itself as its parent")
        for parent in parents:
            path = self._path(resource_type, parent)
            if path is not None:
                cycle = " -> ".join([*path, resource_type])
                raise CascadeGraphError(f"{resource_type} under {parent} would make a cycle: {cycle}")
        self._extensions[resource_type] = extension
        log.debug("cascade: %s registered under %s", resource_type, ", ".join(parents) or "nothing")

    def load_entry_points(self, group: str = CASCADE_ENTRY_POINTS) -> int:
        """Register the extensions plugins declare under ``group``; returns how many."""
        loaded = 0
        for ep in sorted(entry_points(group=group), key=lambda ep: ep.name):
            target = ep.load()
            self.register(target() if isinstance(target, type) else target)
            loaded += 1
        return loaded

    @property
    def resource_types(self) -> tuple[str, ...]:
        return tuple(self._extensions)

    def extension(self, resource_type: str) -> CascadeExtension:
        try:
            return self._extensions[resource_type]
        except KeyError:
            raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                    f"no cascade extension is registered for {resource_type!r}") from None

    def _child_types(self, resource_type: str) -> list[str]:
        return [child for child, ext in self._extensions.items() if resource_type in ext.parents]

    def _path(self, start: str, goal: str) -> list[str] | None:
        """Types from ``start`` down to ``goal`` along child edges, or None."""
        came_from: dict[str, str | None] = {start: None}
        frontier = [start]
        while frontier:
            current = frontier.pop()
            if current == goal:
                path = [current]
                while (previous := came_from[path[-1]]) is not None:
                    path.append(previous)
                return path[::-1]
            for child in self._child_types(current):
                if child not in came_from:
                    came_from[child] = current
                    frontier.append(child)
        return None

    def levels(self, resource_type: str) -> list[list[str]]:
        """The types a deletion of ``resource_type`` visits, by level: ``[[root], children, ...]``.

        A type's level is its longest distance from the root, so each of its
        parents is on a level above it.
        """
        self.extension(resource_type)
        # Depth-first post-order gives a reverse topological order of the
        # reachable part of the graph.
        post_order: list[str] = []
        seen: set[str] = set()

        def visit(node: str) -> None:
            seen.add(node)
            for child in self._child_types(node):
                if child not in seen:
                    visit(child)
            post_order.append(node)

        visit(resource_type)
        depth = {resource_type: 0}
        for node in reversed(post_order):
            for child in self._child_types(node):
                depth[child] = max(depth.get(child, 0), depth[node] + 1)
        levels: list[list[str]] = [[] for _ in range(max(depth.values()) + 1)]
        for node in self._extensions:  # registration order within a level
            if node in depth:
                levels[depth[node]].append(node)
        return levels

    # -- deletion ---------------------------------------------------------------

    async def delete(self, resource_type: str, uuids: list[str], *, mode: str = PERMISSIVE,
                     request: Any = None) -> dict[str, list[str]]:
        """Delete ``uuids`` of ``resource_type`` and everything below them.

        Returns the resources deleted, by type. Raises OperationError
        (SYS.1004) when a check refuses (nothing deleted) or a delete fails
        (deeper levels stay deleted); SYS.1007 for an unknown type or mode.
        """
        if mode not in DELETION_MODES:
            raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                    f"deletion mode must be one of {', '.join(DELETION_MODES)}, not {mode!r}")
        if isinstance(uuids, str) or not all(isinstance(uuid, str) and uuid for uuid in uuids):
            raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                    f"uuids to delete must be a list of {resource_type} uuids, not {uuids!r}")
        levels = self.levels(resource_type)
        roots = list(dict.fromkeys(uuids))
        if not roots:
            return {}
        ctx = CascadeContext(node=self.node, mode=mode, root_type=resource_type, root_uuids=roots,
                             request=request)
        ctx.tree = await self._find(ctx, levels)
        leaves_first = [t for level in reversed(levels) for t in level if ctx.tree.get(t)]
        if mode == PERMISSIVE:
            ctx.action = DELETION_CHECK
            for t in leaves_first:
                await self._check(ctx, t)
        ctx.action = DELETION_FORCE_DELETE if mode == ENFORCING else DELETION_DELETE
        for t in leaves_first:
            await self._delete(ctx, t)
        ctx.action = DELETION_CLEANUP
        for t in leaves_first:
            await self._cleanup(ctx, t)
        return {t: ctx.tree[t] for t in leaves_first}

    async def _find(self, ctx: CascadeContext, levels: list[list[str]]) -> dict[str, list[str]]:
        tree = {ctx.root_type: ctx.root_uuids}
        for level in levels[1:]:
            for t in level:
                ext = self._extensions[t]
                found: dict[str, None] = {}
                for parent in ext.parents:
                    for chunk in _chunks(tree.get(parent, []), self.batch_size):
                        try:
                            found.update(dict.fromkeys(await ext.children(ctx, parent, chunk)))
                        except Exception as exc:
                            raise self._failure(ctx, f"finding the {t} under {_describe(parent, chunk)} failed",
                                                exc) from exc
                if found:
                    tree[t] = list(found)
        return tree

    async def _check(self, ctx: CascadeContext, t: str) -> None:
        ext = self._extensions[t]
        for chunk in _chunks(ctx.tree[t], self.batch_size):
            try:
                await ext.check(ctx, chunk)
            except DeletionRefused as exc:
                raise self._refusal(ctx, f"{t}[uuid:{exc.resource_uuid}] refuses: {exc.reason}", exc) from exc
            except OperationError as exc:
                raise self._refusal(ctx, f"{t} refuses: {exc.error.details or exc.error.description}",
                                    exc) from exc
            except Exception as exc:
                log.exception("cascade: %s check crashed", t)
                raise self._refusal(ctx, f"{t} could not check: {type(exc).__name__}: {exc}", exc) from exc

    async def _delete(self, ctx: CascadeContext, t: str) -> None:
        ext = self._extensions[t]
        for chunk in _chunks(ctx.tree[t], self.batch_size):
            log.debug("cascade %s: %s --> %s (%d)", ctx.action, ctx.root_type, t, len(chunk))
            try:
                if ctx.forced:
                    await ext.force_delete(ctx, chunk)
                else:
                    await ext.delete(ctx, chunk)
                await _forget(ctx.node, chunk)
            except Exception as exc:
                if not isinstance(exc, OperationError):
                    log.exception("cascade: deleting %s crashed", t)
                raise self._failure(ctx, f"deleting {_describe(t, chunk)} failed (resources deleted "
                                         f"before it stay deleted)", exc) from exc

    async def _cleanup(self, ctx: CascadeContext, t: str) -> None:
        ext = self._extensions[t]
        for chunk in _chunks(ctx.tree[t], self.batch_size):
            try:
                await ext.cleanup(ctx, chunk)
            except Exception:
                log.exception("cascade: cleanup of %s after deleting %s failed; continuing",
                              _describe(t, chunk), _describe(ctx.root_type, ctx.root_uuids))

    @staticmethod
    def _refusal(ctx: CascadeContext, why: str, exc: Exception) -> OperationError:
        cause = exc.error if isinstance(exc, OperationError) else None
        return OperationError(error(SysErrors.DELETE_RESOURCE_ERROR,
                                    f"cannot delete {_describe(ctx.root_type, ctx.root_uuids)}: {why}", cause))

    @staticmethod
    def _failure(ctx: CascadeContext, why: str, exc: Exception) -> OperationError:
        cause = exc.error if isinstance(exc, OperationError) else None
        reason = (cause.details or cause.description) if cause else f"{type(exc).__name__}: {exc}"
        return OperationError(error(SysErrors.DELETE_RESOURCE_ERROR,
                                    f"cannot delete {_describe(ctx.root_type, ctx.root_uuids)}: {why}: {reason}",
                                    cause))
