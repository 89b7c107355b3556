"""GlobalConfigVO: the stored value of every global config entry."""

from __future__ import annotations

from typing import Optional

from sqlalchemy import BigInteger, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from mn.db.models.base import Base

CATEGORY_LENGTH = 64
NAME_LENGTH = 255
DESCRIPTION_LENGTH = 1024

#: ZStack's ``bigint unsigned AUTO_INCREMENT``; SQLite only numbers an
#: ``INTEGER PRIMARY KEY`` by itself.
ID_TYPE = (BigInteger()
           .with_variant(mysql.BIGINT(unsigned=True), "mysql", "mariadb")
           .with_variant(Integer(), "sqlite"))


class GlobalConfigVO(Base):
    """One global config entry: ZStack's columns, values kept as text.

    ZStack has no unique key on (category, name); we add one so that MNs
    starting together can all insert the missing entries without creating
    duplicates.
    """

    __tablename__ = "GlobalConfigVO"
    __table_args__ = (UniqueConstraint("category", "name"),)

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    description: Mapped[Optional[str]] = mapped_column(String(DESCRIPTION_LENGTH))
    category: Mapped[str] = mapped_column(String(CATEGORY_LENGTH))
    defaultValue: Mapped[Optional[str]] = mapped_column(Text)
    value: Mapped[Optional[str]] = mapped_column(Text)
