"""SystemTagVO and UserTagVO: strings attached to any resource by its uuid.

A tag row names its resource by ``resourceUuid`` and ``resourceType`` (the
resource's table, e.g. ``VmInstanceVO``) rather than by a foreign key, so
one pair of tables serves every resource; tags are deleted with their
resource by ``mn.tags`` (``TagManager.delete_tags_of``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from mn.db.models.base import Base
from mn.db.types import Timestamp, created_or_now, utcnow
from mn.ids import new_uuid

#: Longest tag, as ZStack's ``tag varchar(2048)``.
TAG_MAX_LENGTH = 2048

#: Characters of ``tag`` indexed on MySQL/MariaDB. The whole column is
#: 8192 bytes in utf8mb4 and InnoDB indexes at most 3072, so the index is a
#: prefix one (as ZStack's ``@Index(length = 128)``); SQLite indexes it whole.
TAG_INDEX_PREFIX = 128

#: ``type`` of a system tag row and of its inventory.
SYSTEM_TAG_TYPE = "System"

#: ``type`` of a user tag row and of its inventory.
USER_TAG_TYPE = "User"


class _TagColumns:
    """Columns of ZStack's TagAO, which both tag tables share."""

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_uuid)
    resourceUuid: Mapped[str] = mapped_column(String(32), index=True)
    resourceType: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    tag: Mapped[str] = mapped_column(String(TAG_MAX_LENGTH))
    createDate: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    lastOpDate: Mapped[datetime] = mapped_column(Timestamp, default=created_or_now, onupdate=utcnow)


class SystemTagVO(_TagColumns, Base):
    """A system tag: a string that matches a pattern and changes behaviour.

    ``inherent`` tags are created by the system for its own use (not by a
    user's API call), and the API refuses to delete them.
    """

    __tablename__ = "SystemTagVO"
    __table_args__ = (
        Index("ix_SystemTagVO_tag", "tag", mysql_length=TAG_INDEX_PREFIX),
    )

    inherent: Mapped[bool] = mapped_column(Boolean, default=False)
    type: Mapped[str] = mapped_column(String(32), default=SYSTEM_TAG_TYPE)


class UserTagVO(_TagColumns, Base):
    """A user tag: a free label a user puts on a resource to find it later."""

    __tablename__ = "UserTagVO"
    __table_args__ = (
        Index("ix_UserTagVO_tag", "tag", mysql_length=TAG_INDEX_PREFIX),
    )

    type: Mapped[str] = mapped_column(String(32), default=USER_TAG_TYPE)
