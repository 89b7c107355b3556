"""Declarative base and the columns every ZStack resource has."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mn.db.types import Timestamp, created_or_now, utcnow
from mn.ids import new_uuid

#: Deterministic constraint names, so migrations can refer to them by name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base class of every table of the management node."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ResourceMixin:
    """uuid, name, description, createDate and lastOpDate of a ZStack resource.

    Names are camelCase, as in ZStack's schema, so tables and API fields match.
    """

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[Optional[str]] = mapped_column(String(2048))
    createDate: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    lastOpDate: Mapped[datetime] = mapped_column(Timestamp, default=created_or_now, onupdate=utcnow)


def model_of_table(table: str) -> type | None:
    """The mapped class whose table is ``table`` (ZStack's resource type), or None."""
    for mapper in Base.registry.mappers:
        if getattr(mapper.class_, "__tablename__", None) == table:
            return mapper.class_
    return None
