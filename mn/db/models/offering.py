"""InstanceOfferingVO and DiskOfferingVO: the sizes VMs and data volumes are made in."""

from __future__ import annotations

from typing import Optional

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mn.db.models.base import Base, ResourceMixin


class InstanceOfferingVO(ResourceMixin, Base):
    """An instance offering (ZStack's InstanceOfferingAO): CPUs and memory of a VM,
    and the host allocator strategy that places it.

    ``memorySize`` and ``reservedMemorySize`` are in bytes; ``duration`` is
    ZStack's InstanceOfferingDuration (always Permanent here).
    """

    __tablename__ = "InstanceOfferingVO"

    name: Mapped[str] = mapped_column(String(255), index=True)
    cpuNum: Mapped[int] = mapped_column(Integer)
    cpuSpeed: Mapped[int] = mapped_column(Integer, default=0)
    memorySize: Mapped[int] = mapped_column(BigInteger)
    reservedMemorySize: Mapped[int] = mapped_column(BigInteger, default=0)
    allocatorStrategy: Mapped[Optional[str]] = mapped_column(String(64))
    sortKey: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(32), index=True)
    type: Mapped[str] = mapped_column(String(255))
    duration: Mapped[str] = mapped_column(String(32), default="Permanent")


class DiskOfferingVO(ResourceMixin, Base):
    """A disk offering (ZStack's DiskOfferingAO): the size of a data volume, in bytes,
    and the primary storage allocator strategy that places it."""

    __tablename__ = "DiskOfferingVO"

    name: Mapped[str] = mapped_column(String(255), index=True)
    diskSize: Mapped[int] = mapped_column(BigInteger)
    sortKey: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(32), index=True)
    type: Mapped[str] = mapped_column(String(255))
    allocatorStrategy: Mapped[Optional[str]] = mapped_column(String(255))
