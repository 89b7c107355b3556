"""Column types and time helpers shared by every model."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import DateTime
from sqlalchemy.dialects import mysql

#: A naive UTC datetime. MySQL's plain DATETIME drops the fraction, so it is
#: DATETIME(3) there: heartbeats and ordering need milliseconds.
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")


def utcnow() -> datetime:
    """Now as a naive UTC datetime, cut to milliseconds.

    Cutting to what DATETIME(3) stores keeps an object's in-memory value equal
    to the value read back from the database.
    """
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def created_or_now(context) -> datetime:
    """Default of ``lastOpDate``: the row's own ``createDate`` when it is being
    inserted with one, so a new row's two dates are equal (two clock reads
    could differ by a millisecond tick); otherwise now."""
    created = context.get_current_parameters().get("createDate") if context is not None else None
    return created or utcnow()
