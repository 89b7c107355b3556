"""HostVO, HostCapacityVO and SimulatorHostVO: hosts and what they can run."""

from __future__ import annotations

from typing import Optional

from sqlalchemy import BigInteger, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, column_property, mapped_column

from mn.db.models.base import Base, ResourceMixin

#: ZStack's HostState values.
HOST_ENABLED = "Enabled"
HOST_DISABLED = "Disabled"
HOST_PRE_MAINTENANCE = "PreMaintenance"
HOST_MAINTENANCE = "Maintenance"

#: ZStack's HostStatus values (the connection to the host's agent).
HOST_CONNECTING = "Connecting"
HOST_CONNECTED = "Connected"
HOST_DISCONNECTED = "Disconnected"


class HostVO(ResourceMixin, Base):
    """A host, with ZStack's columns (HostAO).

    ``zoneUuid`` and ``clusterUuid`` are RESTRICT as in ZStack: a host goes
    before its cluster, which the cascade does. ``managementIp`` is unique:
    ZStack refuses a second host with the same address, and the constraint
    keeps that true when two MNs add hosts at once.

    The capacity columns of ZStack's HostInventory (``totalCpuCapacity``...)
    are read from HostCapacityVO by the column properties added below, so
    they load with the host and queries can filter and sort on them.
    """

    __tablename__ = "HostVO"

    name: Mapped[str] = mapped_column(String(255), index=True)
    zoneUuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("ZoneVO.uuid", ondelete="RESTRICT"), index=True)
    clusterUuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("ClusterVO.uuid", ondelete="RESTRICT"), index=True)
    managementIp: Mapped[str] = mapped_column(String(255), unique=True)
    hypervisorType: Mapped[str] = mapped_column(String(64))
    architecture: Mapped[Optional[str]] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(32), index=True)


class HostCapacityVO(Base):
    """CPU and memory of one host (ZStack's HostCapacityVO), one row per host.

    As in ZStack, ``cpuNum`` is the host's CPU count and ``totalCpu`` is
    ``cpuNum`` times the CPU overcommit ratio; ``availableCpu`` drops by the
    CPUs of each VM placed on the host. ``totalMemory`` is the host's memory
    in bytes and ``availableMemory`` drops by a VM's memory divided by the
    memory overcommit ratio (see :mod:`mn.host.capacity`). Available values
    may go below zero when a ratio is lowered under hosts already full.
    """

    __tablename__ = "HostCapacityVO"

    uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("HostVO.uuid", ondelete="CASCADE"), primary_key=True)
    totalMemory: Mapped[int] = mapped_column(BigInteger, index=True)
    totalCpu: Mapped[int] = mapped_column(BigInteger, index=True)
    cpuNum: Mapped[int] = mapped_column(Integer, index=True)
    cpuSockets: Mapped[int] = mapped_column(Integer, default=0)
    availableMemory: Mapped[int] = mapped_column(BigInteger, index=True)
    availableCpu: Mapped[int] = mapped_column(BigInteger, index=True)
    totalPhysicalMemory: Mapped[int] = mapped_column(BigInteger, index=True)
    availablePhysicalMemory: Mapped[int] = mapped_column(BigInteger, index=True)


class SimulatorHostVO(Base):
    """What a Simulator host was added with (ZStack's SimulatorHostVO).

    ZStack maps it as a subclass of HostVO joined on ``uuid``; here it is a
    table of its own with the same shape, so other hypervisors add their
    tables the same way without touching HostVO's mapping.
    """

    __tablename__ = "SimulatorHostVO"

    uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("HostVO.uuid", ondelete="CASCADE"), primary_key=True)
    memoryCapacity: Mapped[int] = mapped_column(BigInteger)
    cpuCapacity: Mapped[int] = mapped_column(BigInteger)


def _capacity(column):
    # A correlated scalar subquery: one primary-key probe per host row.
    return column_property(select(column).where(HostCapacityVO.uuid == HostVO.uuid)
                           .correlate_except(HostCapacityVO).scalar_subquery())


#: HostInventory's field -> HostCapacityVO's column (ZStack's @Queryable join).
CAPACITY_FIELDS = {
    "totalCpuCapacity": HostCapacityVO.totalCpu,
    "availableCpuCapacity": HostCapacityVO.availableCpu,
    "cpuSockets": HostCapacityVO.cpuSockets,
    "totalMemoryCapacity": HostCapacityVO.totalMemory,
    "availableMemoryCapacity": HostCapacityVO.availableMemory,
    "cpuNum": HostCapacityVO.cpuNum,
}

for _field, _column in CAPACITY_FIELDS.items():
    setattr(HostVO, _field, _capacity(_column))


class KVMHostVO(Base):
    """How the MN reaches a KVM host over SSH (ZStack's KVMHostVO).

    The password is kept as given: Ansible needs it to log in again on
    every reconnect, so it cannot be hashed. It is never shown by the API.
    """

    __tablename__ = "KVMHostVO"

    uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("HostVO.uuid", ondelete="CASCADE"), primary_key=True)
    username: Mapped[str] = mapped_column(String(255))
    password: Mapped[Optional[str]] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer, default=22)
    osDistribution: Mapped[Optional[str]] = mapped_column(String(64))
    osRelease: Mapped[Optional[str]] = mapped_column(String(64))
    osVersion: Mapped[Optional[str]] = mapped_column(String(64))
