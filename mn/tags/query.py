"""``__systemTag__`` and ``__userTag__`` conditions of ZStack's query API.

``GET /v1/vm-instances?q=__userTag__=web`` lists the VMs that carry the
user tag ``web``. :func:`tag_condition` turns one such condition into a SQL
expression over the queried table's uuid column::

    select(VmInstanceVO).where(
        tag_condition(VmInstanceVO.uuid, "user", "=", "web"))

As in ZStack, a negative operator selects the resources that have *no*
tag satisfying the positive one: ``__userTag__!=web`` is every resource
without the tag ``web``, including resources with no tags at all.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import ColumnElement, exists

from mn.errors import OperationError, SysErrors
from mn.tags.store import TAG_TABLES

#: Query API field of each kind of tag.
TAG_FIELDS = {"__systemTag__": "system", "__userTag__": "user"}

# operator -> (positive operator, whether the condition is negated)
_OPERATORS = {
    "=": ("=", False),
    "!=": ("=", True),
    "?=": ("in", False),
    "!?=": ("in", True),
    "~=": ("like", False),
    "!~=": ("like", True),
}

#: The operators :func:`tag_condition` understands.
TAG_OPERATORS = tuple(_OPERATORS)


def tag_kind_of_field(field: str) -> str | None:
    """``"system"`` or ``"user"`` for a tag field of the query API, else None."""
    return TAG_FIELDS.get(field)


def tag_condition(resource_uuid_column: ColumnElement, kind: str, op: str,
                  value: str | Iterable[str]) -> ColumnElement[bool]:
    """A WHERE clause keeping the rows whose resource has (or lacks) a matching tag.

    ``kind``: "system" or "user". ``op``: one of :data:`TAG_OPERATORS`:
    ``=`` / ``!=`` an exact tag, ``?=`` / ``!?=`` any of several tags (a
    list, or a string of comma-separated tags as the REST API sends them),
    ``~=`` / ``!~=`` a SQL LIKE pattern (``%`` and ``_`` are wildcards).
    The clause is a correlated EXISTS (or NOT EXISTS) over the tag table,
    which its ``resourceUuid`` index answers.
    """
    table = TAG_TABLES.get(kind)
    if table is None:
        raise _invalid(f"tag kind {kind!r} is neither 'system' nor 'user'")
    if op not in _OPERATORS:
        raise _invalid(f"operator {op!r} is not supported on tags; use one of "
                       f"{', '.join(TAG_OPERATORS)}")
    positive, negated = _OPERATORS[op]
    if positive == "in":
        values = value.split(",") if isinstance(value, str) else list(value)
        if not values or not all(isinstance(v, str) for v in values):
            raise _invalid(f"operator {op!r} on tags needs one or more tags, got {value!r}")
        match = table.tag.in_(values)
    else:
        if not isinstance(value, str):
            raise _invalid(f"operator {op!r} on tags needs one tag, got {value!r}")
        match = table.tag == value if positive == "=" else table.tag.like(value)
    found = exists().where(table.resourceUuid == resource_uuid_column, match)
    return ~found if negated else found


def _invalid(details: str) -> OperationError:
    return OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR, details)
