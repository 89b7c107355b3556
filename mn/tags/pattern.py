"""System tag patterns: ``hostname::{hostname}``, ``staticIp::{l3NetworkUuid}::{ip}``.

A pattern is literal text with tokens in braces. Services declare the
patterns they own as module-level constants and register them with the
node's :class:`~mn.tags.manager.TagManager`; the manager then accepts a
system tag on a resource only if it matches a pattern registered for the
resource's type, and code reads a tag's values back through its pattern::

    HOSTNAME = PatternedSystemTag("hostname::{hostname}", "VmInstanceVO",
                                  validators={"hostname": validators.hostname})
    HOSTNAME.instantiate(hostname="web-1")      # "hostname::web-1"
    HOSTNAME.tokens("hostname::web-1")          # {"hostname": "web-1"}

Pure: nothing here touches the database.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

from mn.errors import OperationError, SysErrors

#: What separates the parts of a tag. A token's value may not contain it
#: unless the token is declared ``spanning``.
SEPARATOR = "::"

#: A token validator gets the token's value and raises ``ValueError`` with
#: the reason (or returns ``False``) when the value is not acceptable.
TokenValidator = Callable[[str], object]

_TOKEN = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# A value of an ordinary token: one or more characters, none starting "::".
_PART_VALUE = r"(?:(?!::).)+"
_SPANNING_VALUE = r".+"
# Escape character of the LIKE patterns built here. Not a backslash: MySQL
# and SQLite disagree on what a backslash in a string literal means.
LIKE_ESCAPE = "/"


class PatternedSystemTag:
    """A kind of system tag of one resource type, declared by a pattern.

    ``pattern``: literal text with ``{token}`` placeholders. A token's value
    is a non-empty run of characters without ``"::"``; tokens listed in
    ``spanning`` may contain ``"::"`` too (an IPv6 address, a URL) and take
    as much of the tag as the rest of the pattern leaves them.
    ``resource_type``: the table name of the resources it applies to
    (``"VmInstanceVO"``).
    ``validators``: token name -> :data:`TokenValidator`, run when a tag is
    created or instantiated, so a bad value is refused with its reason.
    ``inherent``: tags of this pattern are created by the system, not by
    users; they are stored with ``inherent = True`` and the API refuses to
    delete them.
    ``multi``: a resource may carry several different tags of this pattern
    (e.g. one ``staticIp`` per L3 network). Without it a resource has at most
    one, and creating a second, different one is refused.
    """

    def __init__(
        self,
        pattern: str,
        resource_type: str,
        *,
        validators: Mapping[str, TokenValidator] | None = None,
        spanning: Iterable[str] = (),
        inherent: bool = False,
        multi: bool = False,
        description: str = "",
    ) -> None:
        if not pattern:
            raise ValueError("a system tag pattern must not be empty")
        if not resource_type:
            raise ValueError(f"system tag pattern {pattern!r} needs a resource type")
        self.pattern = pattern
        self.resource_type = resource_type
        self.inherent = inherent
        self.multi = multi
        self.description = description
        self.token_names: tuple[str, ...] = _token_names(pattern)
        self.spanning = frozenset(spanning)
        self.validators: dict[str, TokenValidator] = dict(validators or {})
        for what, names in (("validators", self.validators), ("spanning", self.spanning)):
            unknown = sorted(set(names) - set(self.token_names))
            if unknown:
                raise ValueError(f"{what} of system tag pattern {pattern!r} name unknown "
                                 f"tokens {unknown}; its tokens are {list(self.token_names)}")
        self._regex = _compile(pattern, self.spanning)
        self.sql_like = _like_pattern(pattern)
        """A LIKE pattern (escape :data:`LIKE_ESCAPE`) that every matching tag
        matches: a cheap pre-filter in SQL, to be confirmed by :meth:`matches`."""

    def matches(self, tag: str) -> bool:
        """Whether ``tag`` has the shape of this pattern (validators not run)."""
        return isinstance(tag, str) and self._regex.fullmatch(tag) is not None

    def tokens(self, tag: str) -> dict[str, str]:
        """The token values of ``tag``; OperationError if it does not match."""
        found = self._regex.fullmatch(tag) if isinstance(tag, str) else None
        if found is None:
            raise OperationError.of(
                SysErrors.INVALID_ARGUMENT_ERROR,
                f"system tag {tag!r} does not match pattern {self.pattern!r}")
        return found.groupdict()

    def invalid_reason(self, tag: str) -> str | None:
        """Why ``tag`` is not a valid tag of this pattern, or None if it is.

        A tag is valid if it matches and every token validator accepts its
        value.
        """
        if not self.matches(tag):
            return f"it does not match pattern {self.pattern!r}"
        for name, value in self.tokens(tag).items():
            validator = self.validators.get(name)
            if validator is None:
                continue
            try:
                accepted = validator(value)
            except ValueError as exc:
                return f"token {name}={value!r} of pattern {self.pattern!r} is invalid: {exc}"
            if accepted is False:
                return f"token {name}={value!r} of pattern {self.pattern!r} is invalid"
        return None

    def instantiate(self, /, **tokens: object) -> str:
        """The tag with ``tokens`` put in; OperationError if the result is invalid.

        Every token must be given (TypeError otherwise, as for a function
        call); values are converted with ``str``.
        """
        missing = [name for name in self.token_names if name not in tokens]
        extra = sorted(set(tokens) - set(self.token_names))
        if missing or extra:
            raise TypeError(f"system tag pattern {self.pattern!r} takes tokens "
                            f"{list(self.token_names)}; missing {missing}, unexpected {extra}")
        tag = _TOKEN.sub(lambda m: str(tokens[m.group(1)]), self.pattern)
        reason = self.invalid_reason(tag)
        if reason is not None:
            raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                    f"cannot make system tag {tag!r}: {reason}")
        return tag

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.pattern!r}, {self.resource_type!r})"


class SystemTag(PatternedSystemTag):
    """A fixed system tag, e.g. ``SystemTag("ha::NeverStop", "VmInstanceVO")``.

    A pattern without tokens: the only tag it matches is itself.
    """

    def __init__(self, tag: str, resource_type: str, *, inherent: bool = False,
                 description: str = "") -> None:
        if _TOKEN.search(tag):
            raise ValueError(f"fixed system tag {tag!r} has tokens: use PatternedSystemTag")
        super().__init__(tag, resource_type, inherent=inherent, description=description)

    @property
    def tag(self) -> str:
        return self.pattern


def _token_names(pattern: str) -> tuple[str, ...]:
    names = _TOKEN.findall(pattern)
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ValueError(f"system tag pattern {pattern!r} repeats tokens {duplicated}")
    literal = _TOKEN.sub("", pattern)
    if "{" in literal or "}" in literal:
        raise ValueError(f"system tag pattern {pattern!r} has a brace outside a "
                         "{token}; token names are letters, digits and _")
    for left, right in zip(_TOKEN.finditer(pattern), list(_TOKEN.finditer(pattern))[1:]):
        if left.end() == right.start():
            # "{a}{b}": no literal between, so where one ends is anybody's guess.
            raise ValueError(f"system tag pattern {pattern!r} has adjacent tokens "
                             f"{{{left.group(1)}}}{{{right.group(1)}}}")
    return tuple(names)


def _compile(pattern: str, spanning: frozenset[str]) -> re.Pattern[str]:
    parts, position = [], 0
    for token in _TOKEN.finditer(pattern):
        parts.append(re.escape(pattern[position:token.start()]))
        name = token.group(1)
        value = _SPANNING_VALUE if name in spanning else _PART_VALUE
        parts.append(f"(?P<{name}>{value})")
        position = token.end()
    parts.append(re.escape(pattern[position:]))
    return re.compile("".join(parts), re.DOTALL)


def _like_pattern(pattern: str) -> str:
    escaped = "".join(f"{LIKE_ESCAPE}{c}" if c in f"%_{LIKE_ESCAPE}" else c for c in pattern)
    # Escaping never touches braces, so tokens are still where they were.
    return _TOKEN.sub("%", escaped)
