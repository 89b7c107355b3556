"""Primary and backup storage, capacities, cluster/zone refs, LocalStorageHostRefVO.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# A copy of mn.db.types.Timestamp as it was: a migration must not change
# meaning when the models change later.
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")
# Auto-increment ids of attachment refs (INTEGER on SQLite, which only numbers those).
REF_ID = (sa.BigInteger()
          .with_variant(mysql.BIGINT(unsigned=True), "mysql", "mariadb")
          .with_variant(sa.Integer(), "sqlite"))


def _dates() -> list[sa.Column]:
    return [sa.Column("createDate", TIMESTAMP, nullable=False),
            sa.Column("lastOpDate", TIMESTAMP, nullable=False)]


def _capacities() -> list[sa.Column]:
    return [sa.Column(name, sa.BigInteger(), nullable=False)
            for name in ("totalCapacity", "availableCapacity", "totalPhysicalCapacity",
                         "availablePhysicalCapacity")]


def _indexes(table: str, *columns: str) -> None:
    for column in columns:
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column])


def upgrade() -> None:
    op.create_table(
        "PrimaryStorageVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.String(2048), nullable=True),
        sa.Column("createDate", TIMESTAMP, nullable=False),
        sa.Column("lastOpDate", TIMESTAMP, nullable=False),
        sa.Column("zoneUuid", sa.String(32), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("type", sa.String(255), nullable=False),
        sa.Column("mountPath", sa.String(2048), nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_PrimaryStorageVO")),
        sa.ForeignKeyConstraint(["zoneUuid"], ["ZoneVO.uuid"], ondelete="RESTRICT",
                                name=op.f("fk_PrimaryStorageVO_zoneUuid_ZoneVO")),
    )
    _indexes("PrimaryStorageVO", "name", "zoneUuid", "type", "state", "status")

    op.create_table(
        "PrimaryStorageCapacityVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        *_capacities(),
        sa.Column("systemUsedCapacity", sa.BigInteger(), nullable=True),
        *_dates(),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_PrimaryStorageCapacityVO")),
        sa.ForeignKeyConstraint(["uuid"], ["PrimaryStorageVO.uuid"], ondelete="CASCADE",
                                name=op.f("fk_PrimaryStorageCapacityVO_uuid_PrimaryStorageVO")),
    )
    _indexes("PrimaryStorageCapacityVO", "totalCapacity", "availableCapacity", "totalPhysicalCapacity",
             "availablePhysicalCapacity")

    op.create_table(
        "PrimaryStorageClusterRefVO",
        sa.Column("id", REF_ID, nullable=False, autoincrement=True),
        sa.Column("clusterUuid", sa.String(32), nullable=False),
        sa.Column("primaryStorageUuid", sa.String(32), nullable=False),
        *_dates(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_PrimaryStorageClusterRefVO")),
        sa.ForeignKeyConstraint(["clusterUuid"], ["ClusterVO.uuid"], ondelete="CASCADE",
                                name=op.f("fk_PrimaryStorageClusterRefVO_clusterUuid_ClusterVO")),
        sa.ForeignKeyConstraint(["primaryStorageUuid"], ["PrimaryStorageVO.uuid"], ondelete="CASCADE",
                                name=op.f("fk_PrimaryStorageClusterRefVO_primaryStorageUuid_PrimaryStorageVO")),
        sa.UniqueConstraint("clusterUuid", "primaryStorageUuid",
                            name=op.f("uq_PrimaryStorageClusterRefVO_clusterUuid_primaryStorageUuid")),
    )
    _indexes("PrimaryStorageClusterRefVO", "clusterUuid", "primaryStorageUuid")

    op.create_table(
        "LocalStorageHostRefVO",
        sa.Column("hostUuid", sa.String(32), nullable=False),
        sa.Column("primaryStorageUuid", sa.String(32), nullable=False),
        *_capacities(),
        sa.Column("systemUsedCapacity", sa.BigInteger(), nullable=False),
        *_dates(),
        sa.PrimaryKeyConstraint("hostUuid", "primaryStorageUuid", name=op.f("pk_LocalStorageHostRefVO")),
        sa.ForeignKeyConstraint(["hostUuid"], ["HostVO.uuid"], ondelete="CASCADE",
                                name=op.f("fk_LocalStorageHostRefVO_hostUuid_HostVO")),
        sa.ForeignKeyConstraint(["primaryStorageUuid"], ["PrimaryStorageVO.uuid"], ondelete="CASCADE",
                                name=op.f("fk_LocalStorageHostRefVO_primaryStorageUuid_PrimaryStorageVO")),
    )
    _indexes("LocalStorageHostRefVO", "primaryStorageUuid", "totalCapacity", "availableCapacity",
             "totalPhysicalCapacity", "availablePhysicalCapacity")

    op.create_table(
        "LocalStorageResourceRefVO",
        sa.Column("resourceUuid", sa.String(32), nullable=False),
        sa.Column("primaryStorageUuid", sa.String(32), nullable=False),
        sa.Column("hostUuid", sa.String(32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("resourceType", sa.String(255), nullable=False),
        *_dates(),
        sa.PrimaryKeyConstraint("resourceUuid", "primaryStorageUuid", "hostUuid",
                                name=op.f("pk_LocalStorageResourceRefVO")),
        sa.ForeignKeyConstraint(["primaryStorageUuid"], ["PrimaryStorageVO.uuid"], ondelete="CASCADE",
                                name=op.f("fk_LocalStorageResourceRefVO_primaryStorageUuid_PrimaryStorageVO")),
    )
    _indexes("LocalStorageResourceRefVO", "primaryStorageUuid", "hostUuid")

    op.create_table(
        "BackupStorageVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.String(2048), nullable=True),
        sa.Column("createDate", TIMESTAMP, nullable=False),
        sa.Column("lastOpDate", TIMESTAMP, nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("totalCapacity", sa.BigInteger(), nullable=False),
        sa.Column("availableCapacity", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(255), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_BackupStorageVO")),
    )
    _indexes("BackupStorageVO", "name", "type", "state", "status")

    op.create_table(
        "BackupStorageZoneRefVO",
        sa.Column("id", REF_ID, nullable=False, autoincrement=True),
        sa.Column("backupStorageUuid", sa.String(32), nullable=False),
        sa.Column("zoneUuid", sa.String(32), nullable=False),
        *_dates(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_BackupStorageZoneRefVO")),
        sa.ForeignKeyConstraint(["backupStorageUuid"], ["BackupStorageVO.uuid"], ondelete="CASCADE",
                                name=op.f("fk_BackupStorageZoneRefVO_backupStorageUuid_BackupStorageVO")),
        sa.ForeignKeyConstraint(["zoneUuid"], ["ZoneVO.uuid"], ondelete="CASCADE",
                                name=op.f("fk_BackupStorageZoneRefVO_zoneUuid_ZoneVO")),
        sa.UniqueConstraint("backupStorageUuid", "zoneUuid",
                            name=op.f("uq_BackupStorageZoneRefVO_backupStorageUuid_zoneUuid")),
    )
    _indexes("BackupStorageZoneRefVO", "backupStorageUuid", "zoneUuid")


def downgrade() -> None:
    for table in ("BackupStorageZoneRefVO", "BackupStorageVO", "LocalStorageResourceRefVO",
                  "LocalStorageHostRefVO", "PrimaryStorageClusterRefVO", "PrimaryStorageCapacityVO",
                  "PrimaryStorageVO"):
        op.drop_table(table)
