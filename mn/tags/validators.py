"""Token validators for :class:`~mn.tags.pattern.PatternedSystemTag`.

Each takes a token's value and raises ``ValueError`` with a reason the user
can act on; the manager puts the reason in its "invalid system tag" error.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from mn.ids import is_uuid

# RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
_HOSTNAME_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def uuid(value: str) -> None:
    """A ZStack resource uuid: 32 lower-case hex digits."""
    if not is_uuid(value):
        raise ValueError("not a resource uuid (32 lower-case hex digits)")


def ipv4(value: str) -> None:
    """A dotted-quad IPv4 address."""
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError("not an IPv4 address") from None


def ip(value: str) -> None:
    """An IPv4 or IPv6 address (declare an IPv6 token ``spanning``: it has "::")."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError("not an IP address") from None


def hostname(value: str) -> None:
    """An RFC 1123 host name, at most 253 characters."""
    labels = value.split(".")
    if len(value) > 253 or not all(_HOSTNAME_LABEL.fullmatch(label) for label in labels):
        raise ValueError("not a host name (letters, digits, '-' and '.', labels of 1-63 "
                         "characters that neither start nor end with '-')")


def integer(minimum: int | None = None, maximum: int | None = None) -> Callable[[str], None]:
    """A validator of decimal integers in ``[minimum, maximum]`` (bounds optional)."""

    def check(value: str) -> None:
        if not re.fullmatch(r"-?[0-9]+", value):
            raise ValueError("not an integer")
        number = int(value)
        if minimum is not None and number < minimum:
            raise ValueError(f"less than {minimum}")
        if maximum is not None and number > maximum:
            raise ValueError(f"greater than {maximum}")

    return check


def one_of(*choices: str) -> Callable[[str], None]:
    """A validator that accepts exactly one of ``choices`` (case-sensitive)."""
    allowed = tuple(choices)

    def check(value: str) -> None:
        if value not in allowed:
            raise ValueError(f"not one of {', '.join(allowed)}")

    return check
