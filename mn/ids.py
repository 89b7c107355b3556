"""Resource identifiers in ZStack's format."""

import re
import uuid

#: ZStack uuids are version-4 uuids written as 32 lower-case hex digits.
UUID_PATTERN = re.compile(r"^[0-9a-f]{32}$")


def new_uuid() -> str:
    """Return a fresh resource uuid: uuid4 hex without dashes."""
    return uuid.uuid4().hex


def is_uuid(value: object) -> bool:
    return isinstance(value, str) and bool(UUID_PATTERN.match(value))
