"""ImageVO and ImageBackupStorageRefVO: images and their copies on backup storage."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from mn.db.models.base import Base, ResourceMixin
from mn.db.types import Timestamp, created_or_now, utcnow

#: ``ImageBackupStorageRefVO.id``: ZStack's auto-increment bigint, INTEGER on
#: SQLite (the only type SQLite numbers by itself).
REF_ID_TYPE = (BigInteger()
               .with_variant(mysql.BIGINT(unsigned=True), "mysql", "mariadb")
               .with_variant(Integer(), "sqlite"))


class ImageVO(ResourceMixin, Base):
    """An image (ZStack's ImageAO): a template of root or data volumes, or an ISO.

    ``status`` follows ZStack's ImageStatus (Downloading, Ready, Deleted...):
    it says where the bits are; ``state`` (Enabled/Disabled) says whether new
    VMs and volumes may use it. ``size`` is the virtual size of the disk the
    image holds (a root volume made from it has this size); ``actualSize``
    is what its file takes on backup storage (what each copy reserves there).
    """

    __tablename__ = "ImageVO"

    name: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    state: Mapped[str] = mapped_column(String(32), index=True)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    actualSize: Mapped[int] = mapped_column(BigInteger, default=0)
    md5Sum: Mapped[Optional[str]] = mapped_column(String(255))
    platform: Mapped[Optional[str]] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(255))
    format: Mapped[Optional[str]] = mapped_column(String(64))
    url: Mapped[Optional[str]] = mapped_column(String(1024))
    system: Mapped[bool] = mapped_column(Boolean, default=False)
    mediaType: Mapped[str] = mapped_column(String(64))
    guestOsType: Mapped[Optional[str]] = mapped_column(String(255))
    architecture: Mapped[Optional[str]] = mapped_column(String(32))
    virtio: Mapped[Optional[bool]] = mapped_column(Boolean, default=True)


class ImageBackupStorageRefVO(Base):
    """One copy of an image on one backup storage (ZStack's ImageBackupStorageRefVO).

    Both foreign keys cascade, as in ZStack: a copy goes with its image and
    with its backup storage. An image has at most one copy per backup
    storage (a constraint ZStack leaves to its code).
    """

    __tablename__ = "ImageBackupStorageRefVO"
    __table_args__ = (UniqueConstraint("imageUuid", "backupStorageUuid"),)

    id: Mapped[int] = mapped_column(REF_ID_TYPE, primary_key=True, autoincrement=True)
    imageUuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("ImageVO.uuid", ondelete="CASCADE"), index=True)
    backupStorageUuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("BackupStorageVO.uuid", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(32))
    installPath: Mapped[Optional[str]] = mapped_column(String(1024))
    exportMd5Sum: Mapped[Optional[str]] = mapped_column(String(255))
    exportUrl: Mapped[Optional[str]] = mapped_column(String(2048))
    createDate: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    lastOpDate: Mapped[datetime] = mapped_column(Timestamp, default=created_or_now, onupdate=utcnow)
