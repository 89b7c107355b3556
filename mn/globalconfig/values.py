"""How a typed global config value is written as text and read back.

GlobalConfigVO keeps every value as text (as ZStack does); each entry
declares the Python type its text stands for. The API passes text too, so
conversion from text is the normal path: ``"42"`` for an int, ``"true"`` or
``"false"`` (any case, as ZStack's Boolean check) for a bool.
"""

from __future__ import annotations

import math
import re
from typing import Any

#: The types an entry may declare.
SUPPORTED_TYPES: tuple[type, ...] = (str, int, float, bool)

_INTEGER = re.compile(r"[+-]?[0-9]+")
# float() also takes "1_000", "nan" and "inf": none is a sensible setting.
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def convert(value_type: type, value: Any) -> Any:
    """``value`` (text or already typed) as ``value_type``; ValueError if it is not one."""
    if value_type is bool:
        return _to_bool(value)
    if value_type is int:
        return _to_int(value)
    if value_type is float:
        return _to_float(value)
    if value_type is str:
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not a string")
        return value
    raise TypeError(f"unsupported global config type {value_type!r}")


def to_text(value_type: type, value: Any) -> str:
    """The text stored in GlobalConfigVO for a value already of ``value_type``."""
    if value_type is bool:
        return "true" if value else "false"
    if value_type is float:
        return repr(float(value))  # shortest text that reads back to the same float
    return str(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"{value!r} is not a boolean: use true or false")


def _to_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    raise ValueError(f"{value!r} is not an integer")


def _to_float(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        number = float(value.strip())
    else:
        raise ValueError(f"{value!r} is not a number")
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number
