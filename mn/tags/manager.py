"""TagManager: the node's tag service for code (the REST API builds on it).

Every database access goes through ``await node.db.run(...)``; the
``*_in_session`` functions and :meth:`TagManager.attach_at_create` are the
synchronous exceptions, for use inside a caller's own transaction.

Adding a tag is read-then-write (is this tag, or another of a single-valued
pattern, already there?), so two adds on one resource must not interleave:

* within an MN they run one at a time in the work queue ``tags-<uuid>``;
* across MNs (code on one MN tagging a resource another MN owns), MySQL runs
  the transaction SERIALIZABLE: the read locks the resource's index range,
  two racing inserts deadlock, InnoDB rolls one back, and it is retried and
  then sees the winner's row. SQLite serves a single MN, so the queue is
  enough there.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from mn.db.models.tag import SystemTagVO
from mn.errors import OperationError, SysErrors
from mn.tags import store
from mn.tags.pattern import PatternedSystemTag
from mn.tags.registry import (
    SystemTagRegistry,
    check_resource,
    check_tag_text,
    invalid_argument,
)
from mn.tags.store import TagKind

if TYPE_CHECKING:
    from mn.node import ManagementNode

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Attempts of one tag write that keeps losing MySQL deadlocks to other MNs.
WRITE_ATTEMPTS = 8

# InnoDB's "deadlock found" and "lock wait timeout": the transaction was
# rolled back (or should be) and is safe to run again.
_RETRYABLE_MYSQL_ERRORS = {1213, 1205}


def queue_signature(resource_uuid: str) -> str:
    """Work queue in which this MN adds tags to one resource."""
    return f"tags-{resource_uuid}"


class TagManager:
    """System and user tags of every resource, for one management node.

    Services register the system tag patterns they own (``register``) when
    they are created; the manager then validates, stores, reads and deletes
    tags. It needs ``node.db`` (a :class:`mn.db.Database`, read at each call,
    so the manager can be built before the node starts) and ``node.queues``.
    """

    def __init__(self, node: "ManagementNode") -> None:
        self.node = node
        self.registry = SystemTagRegistry()

    # -- patterns and validation (pure) ------------------------------------

    def register(self, *patterns: PatternedSystemTag) -> None:
        """Accept system tags of ``patterns`` on their resource types."""
        self.registry.register(*patterns)

    def patterns_of(self, resource_type: str) -> list[PatternedSystemTag]:
        return self.registry.patterns_of(resource_type)

    def validate_system_tags(self, resource_type: str, tags: Iterable[str]) -> None:
        """Raise OperationError INVALID_ARGUMENT_ERROR unless every tag is valid.

        The error names the tag and either lists the resource type's patterns
        (none matched) or gives the token validator's reason. Two different
        tags of one single-valued pattern are refused too.
        """
        self.registry.validate(resource_type, tags)

    def validate_user_tags(self, tags: Iterable[str]) -> None:
        """Raise OperationError INVALID_ARGUMENT_ERROR for an empty or too long tag."""
        for tag in tags:
            check_tag_text(tag, "user")

    # -- creating ----------------------------------------------------------

    async def create_system_tag(self, resource_uuid: str, resource_type: str, tag: str,
                                inherent: bool = False) -> dict:
        """Validate ``tag`` and put it on the resource; return its inventory.

        ``inherent`` is also set when the matching pattern is declared
        inherent. Adding a tag the resource already has returns the existing
        one; a second, different tag of a single-valued pattern is refused
        (OPERATION_ERROR naming the tag already there).
        """
        check_resource(resource_uuid, resource_type)
        pattern = self.registry.pattern_of(resource_type, tag)
        return await self._write(
            resource_uuid, store.add_system_tag, resource_uuid, resource_type, tag, pattern,
            inherent=inherent or pattern.inherent)

    async def create_user_tag(self, resource_uuid: str, resource_type: str, tag: str) -> dict:
        """Put the user tag on the resource (the same tag twice is stored once)."""
        check_resource(resource_uuid, resource_type)
        check_tag_text(tag, "user")
        return await self._write(resource_uuid, store.add_user_tag,
                                 resource_uuid, resource_type, tag)

    def attach_at_create(self, session: Session, resource_uuid: str, resource_type: str,
                         system_tags: Iterable[str] | None,
                         user_tags: Iterable[str] | None) -> list[dict]:
        """Add the tags of a create API call in the transaction creating the resource.

        Synchronous: call it from the function given to ``node.db.run`` that
        inserts the resource. Everything is validated before the first row is
        written, and an error rolls back the caller's transaction, so a create
        with a bad tag leaves neither the resource nor any tag. Returns the
        inventories, system tags first.
        """
        check_resource(resource_uuid, resource_type)
        system_tags = list(dict.fromkeys(system_tags or ()))
        user_tags = list(dict.fromkeys(user_tags or ()))
        patterns = self.registry.validate(resource_type, system_tags)
        self.validate_user_tags(user_tags)
        created = [store.add_system_tag(session, resource_uuid, resource_type, tag, pattern,
                                        inherent=pattern.inherent)
                   for tag, pattern in zip(system_tags, patterns)]
        created += [store.add_user_tag(session, resource_uuid, resource_type, tag)
                    for tag in user_tags]
        return created

    async def update_system_tag(self, uuid: str, tag: str, *,
                                allow_inherent: bool = False) -> dict:
        """Change a system tag's text, validated as a new tag of its resource.

        RESOURCE_NOT_FOUND if there is no such system tag; an inherent tag is
        refused unless ``allow_inherent`` (the system changing its own tag).
        """
        check_tag_text(tag, "system")
        current = await self.node.db.run(lambda s: _system_tag_row(s, uuid))
        pattern = self.registry.pattern_of(current["resourceType"], tag)

        def update(session: Session) -> dict:
            vo = session.get(SystemTagVO, uuid)
            if vo is None:
                raise _tag_not_found(uuid)
            if vo.inherent and not allow_inherent:
                raise invalid_argument(f"system tag {vo.tag!r} (uuid {uuid}) is inherent: "
                                       "the system manages it and it cannot be changed")
            return store.update_system_tag(session, vo, tag, pattern)

        return await self._write(current["resourceUuid"], update)

    async def create(self, pattern: PatternedSystemTag, resource_uuid: str,
                     tokens: Mapping[str, object], *, inherent: bool = False) -> dict:
        """``create_system_tag`` of ``pattern.instantiate(**tokens)`` on the resource."""
        tag = pattern.instantiate(**tokens)
        return await self.create_system_tag(resource_uuid, pattern.resource_type, tag,
                                            inherent=inherent)

    # -- reading -----------------------------------------------------------

    async def tags_of(self, resource_uuid: str, kind: TagKind | None = None) -> list[dict]:
        """Inventories of the resource's tags (both kinds unless ``kind``)."""
        return await self.node.db.run(store.tags_of, resource_uuid, kind)

    async def get_tag(self, pattern: PatternedSystemTag, resource_uuid: str) -> str | None:
        """The resource's (oldest) tag of ``pattern``, or None."""
        tags = await self.get_tags(pattern, resource_uuid)
        return tags[0] if tags else None

    async def get_tags(self, pattern: PatternedSystemTag, resource_uuid: str) -> list[str]:
        """Every tag of ``pattern`` on the resource, oldest first."""

        def read(session: Session) -> list[str]:
            return [vo.tag for vo in store.tags_of_pattern(session, pattern, resource_uuid)]

        return await self.node.db.run(read)

    async def get_tokens(self, pattern: PatternedSystemTag,
                         resource_uuid: str) -> dict[str, str] | None:
        """Token values of the resource's tag of ``pattern``, or None if it has none."""
        tag = await self.get_tag(pattern, resource_uuid)
        return None if tag is None else pattern.tokens(tag)

    async def get_tokens_list(self, pattern: PatternedSystemTag,
                              resource_uuid: str) -> list[dict[str, str]]:
        """Token values of each tag of a ``multi`` pattern on the resource."""
        return [pattern.tokens(tag) for tag in await self.get_tags(pattern, resource_uuid)]

    async def has_tag(self, pattern: PatternedSystemTag, resource_uuid: str) -> bool:
        return await self.get_tag(pattern, resource_uuid) is not None

    # -- deleting ----------------------------------------------------------

    async def delete_tag(self, uuid: str, *, allow_inherent: bool = False) -> bool:
        """Delete the system or user tag ``uuid``; False if there was none.

        An inherent system tag is refused (INVALID_ARGUMENT_ERROR) unless
        ``allow_inherent``: users may not remove what the system relies on.
        """

        def remove(session: Session) -> bool:
            vo = store.find_tag(session, uuid)
            if vo is None:
                return False
            if isinstance(vo, SystemTagVO) and vo.inherent and not allow_inherent:
                raise invalid_argument(f"system tag {vo.tag!r} (uuid {uuid}) is inherent: "
                                       "the system manages it and it cannot be deleted")
            session.delete(vo)
            return True

        return await self.node.db.run(remove)

    async def delete(self, pattern: PatternedSystemTag, resource_uuid: str) -> int:
        """Delete the resource's tags of ``pattern`` (inherent ones too); return how many."""
        return await self.node.db.run(store.delete_tags_of_pattern, pattern, resource_uuid)

    async def delete_tags_of(self, resource_uuids: Iterable[str]) -> int:
        """Delete every tag of these resources (they are being deleted); return how many."""
        return await self.node.db.run(store.delete_tags_of, list(resource_uuids))

    @staticmethod
    def delete_tags_of_in_session(session: Session, resource_uuids: Iterable[str]) -> int:
        """``delete_tags_of`` inside the caller's transaction (the one deleting the rows)."""
        return store.delete_tags_of(session, resource_uuids)

    # -- internals ---------------------------------------------------------

    async def _write(self, resource_uuid: str, fn: Callable[..., T], *args: Any,
                     **kwargs: Any) -> T:
        async def attempts() -> T:
            for attempt in range(1, WRITE_ATTEMPTS + 1):
                try:
                    return await self.node.db.run(_serializable, fn, *args, **kwargs)
                except DBAPIError as exc:
                    if not _is_lock_conflict(exc):
                        raise
                    log.debug("tag write on %s lost a lock conflict (attempt %d): %s",
                              resource_uuid, attempt, exc.orig)
                # Random back-off so the racers do not collide again in step.
                await asyncio.sleep(random.uniform(0.005, 0.02) * attempt)
            raise OperationError.of(
                SysErrors.OPERATION_ERROR,
                f"tags of resource {resource_uuid} are being changed concurrently; "
                f"gave up after {WRITE_ATTEMPTS} attempts, try again")

        return await self.node.queues.run(queue_signature(resource_uuid), attempts)


def _serializable(session: Session, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    if session.get_bind().dialect.name in ("mysql", "mariadb"):
        # Must be the session's first use: it fixes the transaction's level.
        session.connection(execution_options={"isolation_level": "SERIALIZABLE"})
    return fn(session, *args, **kwargs)


def _is_lock_conflict(exc: DBAPIError) -> bool:
    args = getattr(exc.orig, "args", ())
    return bool(args) and args[0] in _RETRYABLE_MYSQL_ERRORS


def _system_tag_row(session: Session, uuid: str) -> dict:
    vo = session.get(SystemTagVO, uuid)
    if vo is None:
        raise _tag_not_found(uuid)
    return store.system_tag_inventory(vo)


def _tag_not_found(uuid: str) -> OperationError:
    return OperationError.of(SysErrors.RESOURCE_NOT_FOUND, f"no system tag with uuid {uuid}")
