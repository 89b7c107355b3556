"""JSON as ZStack writes it: dates like ``May 2, 2014 8:48:15 PM``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel


def format_timestamp(value: datetime) -> str:
    """Gson's default date format, which ZStack's API and SDKs use."""
    hour = value.hour % 12 or 12
    return f"{value:%b} {value.day}, {value.year} {hour}:{value:%M:%S} {'AM' if value.hour < 12 else 'PM'}"


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, BaseModel):
        return value.model_dump()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any) -> str:
    return json.dumps(value, default=_default, separators=(",", ":"))
