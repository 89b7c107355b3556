"""AccountVO, SessionVO, AccessKeyVO and AccountResourceRefVO: who may call the API.

Columns follow ZStack's schema. Where ZStack relies on Java-side checks we
add constraints so that management nodes racing each other cannot create
duplicates: account names and AccessKeyIDs are unique, and a resource has
one ownership row (ZStack's ``UNIQUE (resourceUuid, resourceType)``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from mn.db.models.base import Base
from mn.db.types import Timestamp, created_or_now, utcnow
from mn.ids import new_uuid

#: ZStack's ``bigint unsigned AUTO_INCREMENT``; SQLite only numbers an
#: ``INTEGER PRIMARY KEY`` by itself.
REF_ID_TYPE = (BigInteger()
               .with_variant(mysql.BIGINT(unsigned=True), "mysql", "mariadb")
               .with_variant(Integer(), "sqlite"))


class AccountVO(Base):
    """An account: the built-in admin (type SystemAdmin) or a normal one.

    ``password`` is never what the client sends: clients send the SHA-512
    hex digest of the password, and we keep a salted scrypt hash of that
    digest (format in :mod:`mn.identity.password`).
    """

    __tablename__ = "AccountVO"

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[Optional[str]] = mapped_column(String(2048))
    password: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(128))
    createDate: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    lastOpDate: Mapped[datetime] = mapped_column(Timestamp, default=created_or_now, onupdate=utcnow)


class SessionVO(Base):
    """A login session; its uuid is the token of ``Authorization: OAuth <uuid>``.

    An account session has ``userUuid == accountUuid`` (ZStack's rule).
    ``expiredDate`` moves forward while the session is used.
    """

    __tablename__ = "SessionVO"

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_uuid)
    accountUuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("AccountVO.uuid", ondelete="CASCADE"), index=True)
    userUuid: Mapped[Optional[str]] = mapped_column(String(32))
    expiredDate: Mapped[datetime] = mapped_column(Timestamp)
    createDate: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


class AccessKeyVO(Base):
    """An AccessKey: requests signed with its secret act as its account.

    The secret is stored as given because verifying an HMAC needs it (as
    ZStack stores it); it is shown once, in the reply that creates the key.
    """

    __tablename__ = "AccessKeyVO"

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_uuid)
    description: Mapped[Optional[str]] = mapped_column(String(2048))
    accountUuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("AccountVO.uuid", ondelete="CASCADE"), index=True)
    userUuid: Mapped[str] = mapped_column(String(32))
    AccessKeyID: Mapped[str] = mapped_column(String(128), unique=True)
    AccessKeySecret: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(64))
    createDate: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    lastOpDate: Mapped[datetime] = mapped_column(Timestamp, default=created_or_now, onupdate=utcnow)


class AccountResourceRefVO(Base):
    """Which account owns a resource: a normal account sees and changes only
    the resources it owns; the admin sees all.

    Any service writes these rows (through ``IdentityManager.own_in_session``)
    for any resource type, so there is no foreign key to AccountVO: a deleted
    account's rows are handed to the admin by the identity service itself.
    """

    __tablename__ = "AccountResourceRefVO"
    __table_args__ = (UniqueConstraint("resourceUuid"),)

    id: Mapped[int] = mapped_column(REF_ID_TYPE, primary_key=True, autoincrement=True)
    accountUuid: Mapped[str] = mapped_column(String(32), index=True)
    ownerAccountUuid: Mapped[str] = mapped_column(String(32))
    resourceUuid: Mapped[str] = mapped_column(String(32))
    resourceType: Mapped[str] = mapped_column(String(255))
    concreteResourceType: Mapped[str] = mapped_column(String(512))
    permission: Mapped[int] = mapped_column(Integer)
    isShared: Mapped[bool] = mapped_column(Boolean, default=False)
    createDate: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    lastOpDate: Mapped[datetime] = mapped_column(Timestamp, default=created_or_now, onupdate=utcnow)
