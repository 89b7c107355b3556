"""Primary and backup storage: the tables behind ZStack's storage services.

* ``PrimaryStorageVO`` (ZStack's PrimaryStorageAO) where volumes live, with
  one ``PrimaryStorageCapacityVO`` row holding its capacity, attached to
  clusters through ``PrimaryStorageClusterRefVO``;
* ``LocalStorageHostRefVO``: the share of one host in a LocalStorage primary
  storage (each host brings its own disk; the storage's capacity is the sum),
  and ``LocalStorageResourceRefVO``: which host of a LocalStorage holds which
  volume;
* ``BackupStorageVO`` (ZStack's BackupStorageAO) where images live, attached
  to zones through ``BackupStorageZoneRefVO``.

Foreign keys follow ZStack: a primary storage needs its zone (RESTRICT: the
cascade deletes it first); capacity rows, attachment refs and host refs go
with their storage, cluster, zone or host (CASCADE). Capacity is changed only
through :mod:`mn.storage.primary.capacity` and
:mod:`mn.storage.backup.capacity`, with conditional UPDATEs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint, select
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from mn.db.models.base import Base, ResourceMixin
from mn.db.types import Timestamp, created_or_now, utcnow

#: ZStack's ``bigint unsigned AUTO_INCREMENT`` ids of attachment refs;
#: SQLite only numbers an ``INTEGER PRIMARY KEY`` by itself.
REF_ID_TYPE = (BigInteger()
               .with_variant(mysql.BIGINT(unsigned=True), "mysql", "mariadb")
               .with_variant(Integer(), "sqlite"))

#: ZStack's PrimaryStorageState / BackupStorageState values.
STATE_ENABLED = "Enabled"
STATE_DISABLED = "Disabled"
STATE_MAINTENANCE = "Maintenance"
STATE_DELETING = "Deleting"

#: ZStack's PrimaryStorageStatus / BackupStorageStatus values.
STATUS_CONNECTING = "Connecting"
STATUS_CONNECTED = "Connected"
STATUS_DISCONNECTED = "Disconnected"

#: Primary storage types this MN knows (ZStack's type names).
SIMULATOR_PRIMARY_STORAGE_TYPE = "SimulatorPrimaryStorage"
LOCAL_STORAGE_TYPE = "LocalStorage"
#: Backup storage type of the simulator (ZStack's SimulatorBackupStorageConstant).
SIMULATOR_BACKUP_STORAGE_TYPE = "SimulatorBackupStorage"


class PrimaryStorageClusterRefVO(Base):
    """A primary storage attached to a cluster (ZStack's PrimaryStorageClusterRefVO).

    The unique constraint keeps one attachment per pair even when two MNs
    attach at once.
    """

    __tablename__ = "PrimaryStorageClusterRefVO"
    __table_args__ = (UniqueConstraint("clusterUuid", "primaryStorageUuid"),)

    id: Mapped[int] = mapped_column(REF_ID_TYPE, primary_key=True, autoincrement=True)
    clusterUuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("ClusterVO.uuid", ondelete="CASCADE"), index=True)
    primaryStorageUuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("PrimaryStorageVO.uuid", ondelete="CASCADE"), index=True)
    createDate: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    lastOpDate: Mapped[datetime] = mapped_column(Timestamp, default=created_or_now, onupdate=utcnow)


class PrimaryStorageVO(ResourceMixin, Base):
    """A primary storage, with ZStack's columns (PrimaryStorageAO).

    ``type`` is SimulatorPrimaryStorage or LocalStorage; ``mountPath`` is
    where hosts see it. The capacity fields of ZStack's inventory
    (``totalCapacity``...) are column properties reading
    PrimaryStorageCapacityVO (added below), so they load with the row and
    queries can filter and sort on them; ``attachedClusterUuids`` lists the
    clusters it is attached to, oldest attachment first.
    """

    __tablename__ = "PrimaryStorageVO"

    name: Mapped[str] = mapped_column(String(255), index=True)
    zoneUuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("ZoneVO.uuid", ondelete="RESTRICT"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    type: Mapped[str] = mapped_column(String(255), index=True)
    mountPath: Mapped[Optional[str]] = mapped_column(String(2048))
    state: Mapped[str] = mapped_column(String(32), index=True, default=STATE_ENABLED)
    status: Mapped[str] = mapped_column(String(32), index=True, default=STATUS_CONNECTING)

    clusterRefs: Mapped[list[PrimaryStorageClusterRefVO]] = relationship(
        PrimaryStorageClusterRefVO, viewonly=True, lazy="selectin",
        order_by=PrimaryStorageClusterRefVO.id)

    @property
    def attachedClusterUuids(self) -> list[str]:
        return [ref.clusterUuid for ref in self.clusterRefs]


class PrimaryStorageCapacityVO(Base):
    """Capacity of one primary storage in bytes (ZStack's PrimaryStorageCapacityVO).

    ``availableCapacity`` is what new volumes may still take; reservations
    lower it with a conditional UPDATE so it never goes below zero. The
    physical columns are what the storage reports of its disks.
    ``systemUsedCapacity`` is what the system (not volumes) takes on the
    storage's disks; NULL where the type does not measure it (the simulator).
    """

    __tablename__ = "PrimaryStorageCapacityVO"

    uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("PrimaryStorageVO.uuid", ondelete="CASCADE"), primary_key=True)
    totalCapacity: Mapped[int] = mapped_column(BigInteger, index=True, default=0)
    availableCapacity: Mapped[int] = mapped_column(BigInteger, index=True, default=0)
    totalPhysicalCapacity: Mapped[int] = mapped_column(BigInteger, index=True, default=0)
    availablePhysicalCapacity: Mapped[int] = mapped_column(BigInteger, index=True, default=0)
    systemUsedCapacity: Mapped[Optional[int]] = mapped_column(BigInteger)
    createDate: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    lastOpDate: Mapped[datetime] = mapped_column(Timestamp, default=created_or_now, onupdate=utcnow)


#: PrimaryStorageInventory's capacity fields: columns of PrimaryStorageCapacityVO
#: (ZStack's @Queryable join), readable as attributes of PrimaryStorageVO.
CAPACITY_FIELDS = ("totalCapacity", "availableCapacity", "totalPhysicalCapacity",
                   "availablePhysicalCapacity", "systemUsedCapacity")

for _field in CAPACITY_FIELDS:
    # A correlated scalar subquery: one primary-key probe per storage row.
    setattr(PrimaryStorageVO, _field, column_property(
        select(getattr(PrimaryStorageCapacityVO, _field))
        .where(PrimaryStorageCapacityVO.uuid == PrimaryStorageVO.uuid)
        .correlate_except(PrimaryStorageCapacityVO).scalar_subquery()))


class LocalStorageHostRefVO(Base):
    """One host's disk in a LocalStorage primary storage (ZStack's LocalStorageHostRefVO).

    A host of a cluster the storage is attached to has one row; the
    storage's PrimaryStorageCapacityVO is the sum of its rows. A volume on
    local storage lives on one host, so reserving takes from both this row
    and the storage's capacity (see :mod:`mn.storage.primary.capacity`).
    """

    __tablename__ = "LocalStorageHostRefVO"

    hostUuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("HostVO.uuid", ondelete="CASCADE"), primary_key=True)
    primaryStorageUuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("PrimaryStorageVO.uuid", ondelete="CASCADE"), primary_key=True,
        index=True)
    totalCapacity: Mapped[int] = mapped_column(BigInteger, index=True, default=0)
    availableCapacity: Mapped[int] = mapped_column(BigInteger, index=True, default=0)
    totalPhysicalCapacity: Mapped[int] = mapped_column(BigInteger, index=True, default=0)
    availablePhysicalCapacity: Mapped[int] = mapped_column(BigInteger, index=True, default=0)
    systemUsedCapacity: Mapped[int] = mapped_column(BigInteger, default=0)
    createDate: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    lastOpDate: Mapped[datetime] = mapped_column(Timestamp, default=created_or_now, onupdate=utcnow)


class LocalStorageResourceRefVO(Base):
    """Which host of a LocalStorage holds a resource (ZStack's LocalStorageResourceRefVO).

    ``resourceType`` is the resource's table (VolumeVO...); ``size`` what it
    takes there. ``hostUuid`` has no foreign key, as in ZStack: the rows of a
    deleted host are removed by the storage code, which frees what they held.
    """

    __tablename__ = "LocalStorageResourceRefVO"

    resourceUuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    primaryStorageUuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("PrimaryStorageVO.uuid", ondelete="CASCADE"), primary_key=True,
        index=True)
    hostUuid: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    resourceType: Mapped[str] = mapped_column(String(255))
    createDate: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    lastOpDate: Mapped[datetime] = mapped_column(Timestamp, default=created_or_now, onupdate=utcnow)


class BackupStorageZoneRefVO(Base):
    """A backup storage attached to a zone (ZStack's BackupStorageZoneRefVO).

    A backup storage belongs to no zone; it serves the zones it is attached
    to. The unique constraint keeps one attachment per pair.
    """

    __tablename__ = "BackupStorageZoneRefVO"
    __table_args__ = (UniqueConstraint("backupStorageUuid", "zoneUuid"),)

    id: Mapped[int] = mapped_column(REF_ID_TYPE, primary_key=True, autoincrement=True)
    backupStorageUuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("BackupStorageVO.uuid", ondelete="CASCADE"), index=True)
    zoneUuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("ZoneVO.uuid", ondelete="CASCADE"), index=True)
    createDate: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    lastOpDate: Mapped[datetime] = mapped_column(Timestamp, default=created_or_now, onupdate=utcnow)


class BackupStorageVO(ResourceMixin, Base):
    """A backup storage, with ZStack's columns (BackupStorageAO).

    Capacity lives in the row itself, as in ZStack; ``attachedZoneUuids``
    lists the zones it is attached to, oldest attachment first.
    """

    __tablename__ = "BackupStorageVO"

    name: Mapped[str] = mapped_column(String(255), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    totalCapacity: Mapped[int] = mapped_column(BigInteger, default=0)
    availableCapacity: Mapped[int] = mapped_column(BigInteger, default=0)
    type: Mapped[str] = mapped_column(String(255), index=True)
    state: Mapped[str] = mapped_column(String(32), index=True, default=STATE_ENABLED)
    status: Mapped[str] = mapped_column(String(32), index=True, default=STATUS_CONNECTING)

    zoneRefs: Mapped[list[BackupStorageZoneRefVO]] = relationship(
        BackupStorageZoneRefVO, viewonly=True, lazy="selectin", order_by=BackupStorageZoneRefVO.id)

    @property
    def attachedZoneUuids(self) -> list[str]:
        return [ref.zoneUuid for ref in self.zoneRefs]
