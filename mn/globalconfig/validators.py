"""Value checks to declare with a global config entry.

Each check is a callable taking the already converted value and raising
ValueError with a short reason when the value is not allowed. They are the
counterparts of ZStack's ``@GlobalConfigValidation`` attributes. They are
small frozen dataclasses rather than closures so that two identical
declarations compare equal (see ``GlobalConfig``'s duplicate rule).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any


@dataclasses.dataclass(frozen=True)
class number_range:
    """``low <= value <= high`` (ZStack's ``inNumberRange``)."""

    low: float
    high: float

    def __call__(self, value: Any) -> None:
        if not self.low <= value <= self.high:
            raise ValueError(f"must be in the range [{self.low}, {self.high}], got {value}")


@dataclasses.dataclass(frozen=True)
class at_least:
    """``value >= low`` (ZStack's ``numberGreaterThan``, which is inclusive too)."""

    low: float

    def __call__(self, value: Any) -> None:
        if value < self.low:
            raise ValueError(f"must not be less than {self.low}, got {value}")


@dataclasses.dataclass(frozen=True)
class at_most:
    """``value <= high`` (ZStack's ``numberLessThan``, which is inclusive too)."""

    high: float

    def __call__(self, value: Any) -> None:
        if value > self.high:
            raise ValueError(f"must not be greater than {self.high}, got {value}")


class valid_values:
    """``value`` is one of ``values`` (ZStack's ``validValues``)."""

    def __init__(self, *values: Any):
        if not values:
            raise ValueError("valid_values needs at least one value")
        self.values = tuple(values)

    def __call__(self, value: Any) -> None:
        if value not in self.values:
            raise ValueError(f"must be one of {', '.join(map(str, self.values))}, got {value}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, valid_values) and other.values == self.values

    def __hash__(self) -> int:
        return hash(self.values)

    def __repr__(self) -> str:
        return f"valid_values{self.values!r}"


@dataclasses.dataclass(frozen=True)
class not_empty:
    """A string with something besides blanks (ZStack's ``notEmpty``)."""

    def __call__(self, value: Any) -> None:
        if not str(value).strip():
            raise ValueError("must not be empty")


@dataclasses.dataclass(frozen=True)
class matches:
    """The whole text of a string value matches ``pattern`` (ZStack's
    ``validatorRegularExpression``)."""

    pattern: str

    def __post_init__(self) -> None:
        re.compile(self.pattern)  # a bad pattern fails at declaration, not at update

    def __call__(self, value: Any) -> None:
        if re.fullmatch(self.pattern, str(value)) is None:
            raise ValueError(f"must match {self.pattern}, got {value}")
