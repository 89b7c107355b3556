"""Which system tag patterns each resource type accepts, and tag validation.

Validation is pure (no database), so an API layer runs it before it opens
the transaction that creates a resource, and a bad tag fails the call
before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable

from mn.db.models.tag import TAG_MAX_LENGTH
from mn.errors import OperationError, SysErrors
from mn.ids import is_uuid
from mn.tags.pattern import PatternedSystemTag


def invalid_argument(details: str) -> OperationError:
    return OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR, details)


def check_tag_text(tag: object, kind: str) -> str:
    """``tag`` if it is a non-blank string of at most TAG_MAX_LENGTH characters."""
    if not isinstance(tag, str):
        raise invalid_argument(f"a {kind} tag must be a string, got {type(tag).__name__}")
    if not tag.strip():
        raise invalid_argument(f"a {kind} tag must not be empty")
    if len(tag) > TAG_MAX_LENGTH:
        raise invalid_argument(f"{kind} tag {tag[:64]!r}... is {len(tag)} characters long; "
                               f"the limit is {TAG_MAX_LENGTH}")
    return tag


def check_resource(resource_uuid: object, resource_type: object) -> None:
    """The uuid has ZStack's format and the type is a plausible table name."""
    if not is_uuid(resource_uuid):
        raise invalid_argument(f"resourceUuid {resource_uuid!r} is not a resource uuid "
                               "(32 lower-case hex digits)")
    if not isinstance(resource_type, str) or not resource_type or len(resource_type) > 64:
        raise invalid_argument(f"resourceType {resource_type!r} is not a resource type name")


class SystemTagRegistry:
    """System tag patterns by resource type.

    A resource type with no pattern accepts no system tag at all (user tags
    go on anything).
    """

    def __init__(self) -> None:
        self._by_type: dict[str, dict[str, PatternedSystemTag]] = {}

    def register(self, *patterns: PatternedSystemTag) -> None:
        """Accept tags of ``patterns`` on their resource types.

        Registering the same object twice is harmless; a different object
        with a pattern already registered for the type is a programming
        error (two owners of one tag) and raises ValueError.
        """
        for pattern in patterns:
            known = self._by_type.setdefault(pattern.resource_type, {})
            current = known.get(pattern.pattern)
            if current is not None and current is not pattern:
                raise ValueError(f"system tag pattern {pattern.pattern!r} is already "
                                 f"registered for {pattern.resource_type}")
            known[pattern.pattern] = pattern

    def patterns_of(self, resource_type: str) -> list[PatternedSystemTag]:
        """The patterns of ``resource_type``, in registration order."""
        return list(self._by_type.get(resource_type, {}).values())

    def resource_types(self) -> list[str]:
        return sorted(self._by_type)

    def pattern_of(self, resource_type: str, tag: object) -> PatternedSystemTag:
        """The pattern that makes ``tag`` valid on ``resource_type``.

        Raises OperationError INVALID_ARGUMENT_ERROR naming the tag and why:
        no pattern of the type matches (the error lists them all), or a
        matching pattern's token validator refused a value.
        """
        tag = check_tag_text(tag, "system")
        patterns = self.patterns_of(resource_type)
        if not patterns:
            raise invalid_argument(
                f"system tag {tag!r} is invalid: resource type {resource_type!r} has no "
                "system tags")
        reasons = []
        for pattern in patterns:
            if not pattern.matches(tag):
                continue
            reason = pattern.invalid_reason(tag)
            if reason is None:
                return pattern
            reasons.append(reason)
        if reasons:
            raise invalid_argument(f"system tag {tag!r} is invalid for {resource_type}: "
                                   + "; ".join(reasons))
        raise invalid_argument(
            f"system tag {tag!r} matches no system tag pattern of {resource_type}; "
            f"the patterns are: {', '.join(p.pattern for p in patterns)}")

    def validate(self, resource_type: str, tags: Iterable[object]) -> list[PatternedSystemTag]:
        """The pattern of each tag, after checking the tags also fit together.

        Identical tags count once. Two different tags of one single-valued
        (not ``multi``) pattern are refused: a resource has only one of them.
        """
        tags = list(tags)
        patterns = [self.pattern_of(resource_type, tag) for tag in tags]
        seen: dict[str, str] = {}
        for tag, pattern in zip(tags, patterns):
            if pattern.multi:
                continue
            other = seen.setdefault(pattern.pattern, tag)
            if other != tag:
                raise invalid_argument(
                    f"system tags {other!r} and {tag!r} are both of pattern "
                    f"{pattern.pattern!r}, of which a resource has at most one")
        return patterns
