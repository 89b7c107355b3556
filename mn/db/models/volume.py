"""VolumeVO: root and data disks (ZStack's VolumeAO).

Capacity accounting hangs on this row: a volume whose
``primaryStorageUuid`` is set holds ``size`` bytes of that primary storage
(and, on LocalStorage, of its host) from the transaction that reserved them
to the one that expunges the volume. A data volume created without a
primary storage is ``NotInstantiated`` and holds nothing until attached.

``vmInstanceUuid`` has no foreign key, as in ZStack: the VM service keeps it
right (root volumes go with their VM, data volumes are detached).
``primaryStorageUuid`` is CASCADE as in ZStack, a backstop only: the
cascade deletes volumes (giving their capacity back) before their storage.
"""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mn.db.models.base import Base, ResourceMixin
from mn.db.types import Timestamp

#: VolumeType values.
ROOT, DATA = "Root", "Data"
#: VolumeStatus values (ZStack's).
CREATING, READY, NOT_INSTANTIATED, DELETED = "Creating", "Ready", "NotInstantiated", "Deleted"
#: VolumeState values.
ENABLED, DISABLED = "Enabled", "Disabled"


class VolumeVO(ResourceMixin, Base):
    """A volume, with ZStack's columns (VolumeAO)."""

    __tablename__ = "VolumeVO"

    name: Mapped[str] = mapped_column(String(255), index=True)
    primaryStorageUuid: Mapped[Optional[str]] = mapped_column(
        String(32), ForeignKey("PrimaryStorageVO.uuid", ondelete="CASCADE"), index=True)
    vmInstanceUuid: Mapped[Optional[str]] = mapped_column(String(32), index=True)
    diskOfferingUuid: Mapped[Optional[str]] = mapped_column(
        String(32), ForeignKey("DiskOfferingVO.uuid", ondelete="SET NULL"), index=True)
    rootImageUuid: Mapped[Optional[str]] = mapped_column(String(32), index=True)
    installPath: Mapped[Optional[str]] = mapped_column(String(1024))
    type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    actualSize: Mapped[Optional[int]] = mapped_column(BigInteger)
    deviceId: Mapped[Optional[int]] = mapped_column(Integer)
    format: Mapped[Optional[str]] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32), default=ENABLED)
    lastVmInstanceUuid: Mapped[Optional[str]] = mapped_column(String(32))
    lastDetachDate: Mapped[Optional[datetime]] = mapped_column(Timestamp)
    lastAttachDate: Mapped[Optional[datetime]] = mapped_column(Timestamp)
    isShareable: Mapped[bool] = mapped_column(Boolean, default=False)
    volumeQos: Mapped[Optional[str]] = mapped_column(String(128))
    protocol: Mapped[Optional[str]] = mapped_column(String(32))
