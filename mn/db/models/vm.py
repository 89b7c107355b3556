"""VmInstanceVO, VmNicVO and VmInstanceSequenceNumberVO: virtual machines and their nics.

Columns follow ZStack's VmInstanceAO and VmNicVO. Foreign keys follow
ZStack's too: a VM's zone, cluster and hosts are ``SET NULL`` (a deleted
host leaves its stopped VMs behind, as ZStack does), and a nic goes with its
VM (``CASCADE``). ZStack's image and instance offering links are RESTRICT
on its soft-deleted EO tables; our images and offerings are deleted for
real, so those links are ``SET NULL`` (ZStack's
``instanceOffering.setNullWhenDeleting``) rather than blocking the delete.

Capacity accounting hangs on these rows: a VM whose ``hostUuid`` is set
holds ``cpuNum``/``memorySize`` on that host (Running, Paused, Starting...);
a Stopped or Destroyed VM has ``hostUuid`` NULL and holds nothing there.
A nic with ``usedIpUuid`` set holds that address.
"""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from mn.db.models.base import Base, ResourceMixin
from mn.db.types import Timestamp, created_or_now, utcnow
from mn.ids import new_uuid

#: ZStack's ``bigint unsigned AUTO_INCREMENT``; SQLite only numbers an
#: ``INTEGER PRIMARY KEY`` by itself.
SEQUENCE_ID_TYPE = (BigInteger()
                    .with_variant(mysql.BIGINT(unsigned=True), "mysql", "mariadb")
                    .with_variant(Integer(), "sqlite"))

#: ``type`` of the VMs users create (ZStack's VmInstanceConstant.USER_VM_TYPE).
USER_VM_TYPE = "UserVm"
#: ``state`` of a nic that carries traffic (ZStack's VmNicState.enable).
NIC_STATE_ENABLE = "enable"


class VmInstanceVO(ResourceMixin, Base):
    """A virtual machine, with ZStack's columns (VmInstanceAO)."""

    __tablename__ = "VmInstanceVO"

    name: Mapped[str] = mapped_column(String(255), index=True)
    zoneUuid: Mapped[Optional[str]] = mapped_column(
        String(32), ForeignKey("ZoneVO.uuid", ondelete="SET NULL"), index=True)
    clusterUuid: Mapped[Optional[str]] = mapped_column(
        String(32), ForeignKey("ClusterVO.uuid", ondelete="SET NULL"), index=True)
    imageUuid: Mapped[Optional[str]] = mapped_column(
        String(32), ForeignKey("ImageVO.uuid", ondelete="SET NULL"), index=True)
    #: Indexed with state and createDate (ix_VmInstanceVO_hostUuid_state_createDate, below).
    hostUuid: Mapped[Optional[str]] = mapped_column(
        String(32), ForeignKey("HostVO.uuid", ondelete="SET NULL"))
    #: A number unique to the VM, from VmInstanceSequenceNumberVO (nic names: vnic<id>.<n>).
    internalId: Mapped[Optional[int]] = mapped_column(BigInteger)
    lastHostUuid: Mapped[Optional[str]] = mapped_column(
        String(32), ForeignKey("HostVO.uuid", ondelete="SET NULL"), index=True)
    instanceOfferingUuid: Mapped[Optional[str]] = mapped_column(
        String(32), ForeignKey("InstanceOfferingVO.uuid", ondelete="SET NULL"), index=True)
    rootVolumeUuid: Mapped[Optional[str]] = mapped_column(
        String(32), ForeignKey("VolumeVO.uuid", ondelete="SET NULL"), index=True)
    defaultL3NetworkUuid: Mapped[Optional[str]] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(64), default=USER_VM_TYPE)
    hypervisorType: Mapped[Optional[str]] = mapped_column(String(64))
    cpuNum: Mapped[int] = mapped_column(Integer)
    cpuSpeed: Mapped[int] = mapped_column(BigInteger, default=0)
    memorySize: Mapped[int] = mapped_column(BigInteger)
    reservedMemorySize: Mapped[int] = mapped_column(BigInteger, default=0)
    platform: Mapped[Optional[str]] = mapped_column(String(255))
    architecture: Mapped[Optional[str]] = mapped_column(String(32))
    allocatorStrategy: Mapped[Optional[str]] = mapped_column(String(64))
    guestOsType: Mapped[Optional[str]] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(64), index=True)


class VmNicVO(Base):
    """A VM's network interface on one L3 network (ZStack's VmNicVO).

    ``ip``, ``netmask`` and ``gateway`` copy the nic's UsedIpVO so queries
    such as ``vmNics.ip=10.0.0.5`` need no join; ``usedIpUuid`` is NULL on
    the nics of a destroyed VM, whose addresses were given back.
    """

    __tablename__ = "VmNicVO"

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_uuid)
    vmInstanceUuid: Mapped[Optional[str]] = mapped_column(
        String(32), ForeignKey("VmInstanceVO.uuid", ondelete="CASCADE"), index=True)
    usedIpUuid: Mapped[Optional[str]] = mapped_column(
        String(32), ForeignKey("UsedIpVO.uuid", ondelete="SET NULL"), index=True)
    #: Indexed with vmInstanceUuid (ix_VmNicVO_l3NetworkUuid_vmInstanceUuid, below).
    l3NetworkUuid: Mapped[Optional[str]] = mapped_column(
        String(32), ForeignKey("L3NetworkVO.uuid", ondelete="SET NULL"))
    ip: Mapped[Optional[str]] = mapped_column(String(128), index=True)
    netmask: Mapped[Optional[str]] = mapped_column(String(128))
    gateway: Mapped[Optional[str]] = mapped_column(String(128))
    ipVersion: Mapped[Optional[int]] = mapped_column(Integer)
    mac: Mapped[str] = mapped_column(String(17), index=True)
    hypervisorType: Mapped[Optional[str]] = mapped_column(String(64))
    metaData: Mapped[Optional[str]] = mapped_column(String(255))
    deviceId: Mapped[int] = mapped_column(Integer)
    internalName: Mapped[Optional[str]] = mapped_column(String(128))
    driverType: Mapped[Optional[str]] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(64), default="VNIC")
    state: Mapped[str] = mapped_column(String(32), default=NIC_STATE_ENABLE)
    createDate: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    lastOpDate: Mapped[datetime] = mapped_column(Timestamp, default=created_or_now, onupdate=utcnow)


# Query indexes (migration 0015), for lists of 100,000 VMs: "the VMs of a host
# in a state" counted from the index alone and paged newest first without a
# sort (the primary key ending each entry is the query's tie-breaker); the
# newest VMs first; and the VMs of an L3 network (``vmNics.l3Network...``)
# found without reading the nics. The composite indexes also serve the
# foreign keys of their first column.
Index("ix_VmInstanceVO_hostUuid_state_createDate", VmInstanceVO.hostUuid, VmInstanceVO.state,
      VmInstanceVO.createDate.desc())
Index("ix_VmInstanceVO_createDate", VmInstanceVO.createDate.desc())
Index("ix_VmNicVO_l3NetworkUuid_vmInstanceUuid", VmNicVO.l3NetworkUuid, VmNicVO.vmInstanceUuid)


class VmInstanceSequenceNumberVO(Base):
    """ZStack's source of VM internal ids: one auto-numbered row per VM created."""

    __tablename__ = "VmInstanceSequenceNumberVO"

    id: Mapped[int] = mapped_column(SEQUENCE_ID_TYPE, primary_key=True, autoincrement=True)
