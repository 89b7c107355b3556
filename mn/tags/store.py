"""Tag rows inside a caller's transaction: the session-level half of mn.tags.

Every function takes an open SQLAlchemy session and neither commits nor
rolls back, so a service can create, read or delete tags in the same
transaction as its own rows (a resource and its tags appear, or vanish,
together). :class:`~mn.tags.manager.TagManager` runs them through
``node.db.run`` for callers that only want the tags.

Tag text is compared in Python, not with SQL ``=``: MariaDB's default
collation would call ``Web`` and ``web `` equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mn.db.models.tag import SYSTEM_TAG_TYPE, USER_TAG_TYPE, SystemTagVO, UserTagVO
from mn.db.types import utcnow
from mn.errors import OperationError, SysErrors
from mn.tags.pattern import LIKE_ESCAPE, PatternedSystemTag

TagKind = Literal["system", "user"]

#: Table of each kind of tag.
TAG_TABLES: dict[str, type[SystemTagVO] | type[UserTagVO]] = {
    "system": SystemTagVO,
    "user": UserTagVO,
}

# Bound on the uuids of one "IN (...)": a cascade may delete thousands.
_IN_CHUNK = 500


def system_tag_inventory(vo: SystemTagVO) -> dict:
    """ZStack's SystemTagInventory of a row."""
    return {"uuid": vo.uuid, "resourceUuid": vo.resourceUuid, "resourceType": vo.resourceType,
            "inherent": bool(vo.inherent), "type": SYSTEM_TAG_TYPE, "tag": vo.tag,
            "createDate": vo.createDate, "lastOpDate": vo.lastOpDate}


def user_tag_inventory(vo: UserTagVO) -> dict:
    """ZStack's UserTagInventory of a row."""
    return {"uuid": vo.uuid, "resourceUuid": vo.resourceUuid, "resourceType": vo.resourceType,
            "type": USER_TAG_TYPE, "tag": vo.tag,
            "createDate": vo.createDate, "lastOpDate": vo.lastOpDate}


def inventory(vo: SystemTagVO | UserTagVO) -> dict:
    if isinstance(vo, SystemTagVO):
        return system_tag_inventory(vo)
    return user_tag_inventory(vo)


def add_system_tag(session: Session, resource_uuid: str, resource_type: str, tag: str,
                   pattern: PatternedSystemTag, *, inherent: bool) -> dict:
    """Put a validated system tag (``pattern`` is the one it matched) on a resource.

    The same tag already there: its inventory is returned and nothing is
    written. Another tag of a single-valued pattern already there:
    OperationError OPERATION_ERROR, as one resource has one hostname.
    """
    existing = _system_tags(session, resource_uuid, resource_type)
    for vo in existing:
        if vo.tag == tag:
            return system_tag_inventory(vo)
    if not pattern.multi:
        _refuse_second_single_tag(existing, resource_uuid, resource_type, tag, pattern)
    vo = SystemTagVO(resourceUuid=resource_uuid, resourceType=resource_type, tag=tag,
                     inherent=inherent)
    session.add(vo)
    session.flush()
    return system_tag_inventory(vo)


def add_user_tag(session: Session, resource_uuid: str, resource_type: str, tag: str) -> dict:
    """Put a user tag on a resource; the same tag already there is returned as is."""
    rows = session.scalars(select(UserTagVO).where(UserTagVO.resourceUuid == resource_uuid,
                                                   UserTagVO.resourceType == resource_type))
    for vo in rows:
        if vo.tag == tag:
            return user_tag_inventory(vo)
    vo = UserTagVO(resourceUuid=resource_uuid, resourceType=resource_type, tag=tag)
    session.add(vo)
    session.flush()
    return user_tag_inventory(vo)


def update_system_tag(session: Session, vo: SystemTagVO, tag: str,
                      pattern: PatternedSystemTag) -> dict:
    """Change the text of a system tag to ``tag`` (valid for ``pattern``)."""
    if vo.tag == tag:
        return system_tag_inventory(vo)
    others = [other for other in _system_tags(session, vo.resourceUuid, vo.resourceType)
              if other.uuid != vo.uuid]
    for other in others:
        if other.tag == tag:
            raise OperationError.of(
                SysErrors.OPERATION_ERROR,
                f"{vo.resourceType} {vo.resourceUuid} already has system tag {tag!r} "
                f"(uuid {other.uuid})")
    if not pattern.multi:
        _refuse_second_single_tag(others, vo.resourceUuid, vo.resourceType, tag, pattern)
    vo.tag = tag
    vo.lastOpDate = utcnow()
    session.flush()
    return system_tag_inventory(vo)


def find_tag(session: Session, uuid: str) -> SystemTagVO | UserTagVO | None:
    """The system or user tag with this uuid."""
    return session.get(SystemTagVO, uuid) or session.get(UserTagVO, uuid)


def tags_of(session: Session, resource_uuid: str, kind: TagKind | None = None) -> list[dict]:
    """Inventories of a resource's tags: system tags first, each kind oldest first."""
    kinds = [kind] if kind else ["system", "user"]
    result = []
    for name in kinds:
        table = _table(name)
        rows = session.scalars(select(table).where(table.resourceUuid == resource_uuid)
                               .order_by(table.createDate, table.uuid))
        result.extend(inventory(vo) for vo in rows)
    return result


def tags_of_pattern(session: Session, pattern: PatternedSystemTag,
                    resource_uuid: str) -> list[SystemTagVO]:
    """The resource's system tags that match ``pattern``, oldest first."""
    rows = session.scalars(
        select(SystemTagVO)
        .where(SystemTagVO.resourceUuid == resource_uuid,
               SystemTagVO.resourceType == pattern.resource_type,
               SystemTagVO.tag.like(pattern.sql_like, escape=LIKE_ESCAPE))
        .order_by(SystemTagVO.createDate, SystemTagVO.uuid))
    # LIKE only narrows: "%" also spans "::", and MariaDB compares without case.
    return [vo for vo in rows if pattern.matches(vo.tag)]


def delete_tags_of_pattern(session: Session, pattern: PatternedSystemTag,
                           resource_uuid: str) -> int:
    """Delete the resource's system tags of ``pattern``, inherent ones included."""
    rows = tags_of_pattern(session, pattern, resource_uuid)
    for vo in rows:
        session.delete(vo)
    session.flush()
    return len(rows)


def delete_tags_of(session: Session, resource_uuids: Iterable[str]) -> int:
    """Delete every tag, of both kinds, of these resources; return how many."""
    uuids = list(dict.fromkeys(resource_uuids))
    deleted = 0
    for start in range(0, len(uuids), _IN_CHUNK):
        chunk = uuids[start:start + _IN_CHUNK]
        for table in TAG_TABLES.values():
            result = session.execute(delete(table).where(table.resourceUuid.in_(chunk)),
                                     execution_options={"synchronize_session": False})
            deleted += result.rowcount
    return deleted


def _system_tags(session: Session, resource_uuid: str, resource_type: str) -> Sequence[SystemTagVO]:
    return session.scalars(select(SystemTagVO).where(
        SystemTagVO.resourceUuid == resource_uuid,
        SystemTagVO.resourceType == resource_type)).all()


def _refuse_second_single_tag(existing: Iterable[SystemTagVO], resource_uuid: str,
                              resource_type: str, tag: str, pattern: PatternedSystemTag) -> None:
    for vo in existing:
        if pattern.matches(vo.tag):
            raise OperationError.of(
                SysErrors.OPERATION_ERROR,
                f"{resource_type} {resource_uuid} already has system tag {vo.tag!r} "
                f"(uuid {vo.uuid}) of pattern {pattern.pattern!r}, and a resource has at most "
                f"one tag of it: update or delete that tag instead of adding {tag!r}")


def _table(kind: str) -> type[SystemTagVO] | type[UserTagVO]:
    try:
        return TAG_TABLES[kind]
    except KeyError:
        raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                f"tag kind {kind!r} is neither 'system' nor 'user'") from None
