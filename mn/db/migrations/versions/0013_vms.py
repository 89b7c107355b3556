"""VmInstanceVO, VmNicVO, VolumeVO (and VmInstanceSequenceNumberVO).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# A copy of mn.db.types.Timestamp as it was: a migration must not change
# meaning when the models change later.
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")

# VmInstanceSequenceNumberVO.id as it was: ZStack's bigint unsigned, INTEGER on
# SQLite (the only type SQLite numbers by itself).
SEQUENCE_ID = (sa.BigInteger()
               .with_variant(mysql.BIGINT(unsigned=True), "mysql", "mariadb")
               .with_variant(sa.Integer(), "sqlite"))


def _resource_columns() -> list[sa.Column]:
    return [
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.String(2048), nullable=True),
        sa.Column("createDate", TIMESTAMP, nullable=False),
        sa.Column("lastOpDate", TIMESTAMP, nullable=False),
    ]


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.uuid"], ondelete=ondelete,
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def _indexes(table: str, *columns: str) -> None:
    for column in columns:
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column])


def upgrade() -> None:
    op.create_table(
        "VolumeVO",
        *_resource_columns(),
        sa.Column("primaryStorageUuid", sa.String(32), nullable=True),
        sa.Column("vmInstanceUuid", sa.String(32), nullable=True),
        sa.Column("diskOfferingUuid", sa.String(32), nullable=True),
        sa.Column("rootImageUuid", sa.String(32), nullable=True),
        sa.Column("installPath", sa.String(1024), nullable=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("actualSize", sa.BigInteger(), nullable=True),
        sa.Column("deviceId", sa.Integer(), nullable=True),
        sa.Column("format", sa.String(64), nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("lastVmInstanceUuid", sa.String(32), nullable=True),
        sa.Column("lastDetachDate", TIMESTAMP, nullable=True),
        sa.Column("lastAttachDate", TIMESTAMP, nullable=True),
        sa.Column("isShareable", sa.Boolean(), nullable=False),
        sa.Column("volumeQos", sa.String(128), nullable=True),
        sa.Column("protocol", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_VolumeVO")),
        _fk("VolumeVO", "primaryStorageUuid", "PrimaryStorageVO", "CASCADE"),
        _fk("VolumeVO", "diskOfferingUuid", "DiskOfferingVO", "SET NULL"),
    )
    _indexes("VolumeVO", "name", "primaryStorageUuid", "vmInstanceUuid", "diskOfferingUuid", "rootImageUuid",
             "status")

    op.create_table(
        "VmInstanceVO",
        *_resource_columns(),
        sa.Column("zoneUuid", sa.String(32), nullable=True),
        sa.Column("clusterUuid", sa.String(32), nullable=True),
        sa.Column("imageUuid", sa.String(32), nullable=True),
        sa.Column("hostUuid", sa.String(32), nullable=True),
        sa.Column("internalId", sa.BigInteger(), nullable=True),
        sa.Column("lastHostUuid", sa.String(32), nullable=True),
        sa.Column("instanceOfferingUuid", sa.String(32), nullable=True),
        sa.Column("rootVolumeUuid", sa.String(32), nullable=True),
        sa.Column("defaultL3NetworkUuid", sa.String(32), nullable=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("hypervisorType", sa.String(64), nullable=True),
        sa.Column("cpuNum", sa.Integer(), nullable=False),
        sa.Column("cpuSpeed", sa.BigInteger(), nullable=False),
        sa.Column("memorySize", sa.BigInteger(), nullable=False),
        sa.Column("reservedMemorySize", sa.BigInteger(), nullable=False),
        sa.Column("platform", sa.String(255), nullable=True),
        sa.Column("architecture", sa.String(32), nullable=True),
        sa.Column("allocatorStrategy", sa.String(64), nullable=True),
        sa.Column("guestOsType", sa.String(255), nullable=True),
        sa.Column("state", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_VmInstanceVO")),
        _fk("VmInstanceVO", "zoneUuid", "ZoneVO", "SET NULL"),
        _fk("VmInstanceVO", "clusterUuid", "ClusterVO", "SET NULL"),
        _fk("VmInstanceVO", "imageUuid", "ImageVO", "SET NULL"),
        _fk("VmInstanceVO", "hostUuid", "HostVO", "SET NULL"),
        _fk("VmInstanceVO", "lastHostUuid", "HostVO", "SET NULL"),
        _fk("VmInstanceVO", "instanceOfferingUuid", "InstanceOfferingVO", "SET NULL"),
        _fk("VmInstanceVO", "rootVolumeUuid", "VolumeVO", "SET NULL"),
    )
    _indexes("VmInstanceVO", "name", "zoneUuid", "clusterUuid", "imageUuid", "hostUuid", "lastHostUuid",
             "instanceOfferingUuid", "rootVolumeUuid", "state")

    op.create_table(
        "VmNicVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("vmInstanceUuid", sa.String(32), nullable=True),
        sa.Column("usedIpUuid", sa.String(32), nullable=True),
        sa.Column("l3NetworkUuid", sa.String(32), nullable=True),
        sa.Column("ip", sa.String(128), nullable=True),
        sa.Column("netmask", sa.String(128), nullable=True),
        sa.Column("gateway", sa.String(128), nullable=True),
        sa.Column("ipVersion", sa.Integer(), nullable=True),
        sa.Column("mac", sa.String(17), nullable=False),
        sa.Column("hypervisorType", sa.String(64), nullable=True),
        sa.Column("metaData", sa.String(255), nullable=True),
        sa.Column("deviceId", sa.Integer(), nullable=False),
        sa.Column("internalName", sa.String(128), nullable=True),
        sa.Column("driverType", sa.String(64), nullable=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("createDate", TIMESTAMP, nullable=False),
        sa.Column("lastOpDate", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_VmNicVO")),
        _fk("VmNicVO", "vmInstanceUuid", "VmInstanceVO", "CASCADE"),
        _fk("VmNicVO", "usedIpUuid", "UsedIpVO", "SET NULL"),
        _fk("VmNicVO", "l3NetworkUuid", "L3NetworkVO", "SET NULL"),
    )
    _indexes("VmNicVO", "vmInstanceUuid", "usedIpUuid", "l3NetworkUuid", "ip", "mac")

    op.create_table(
        "VmInstanceSequenceNumberVO",
        sa.Column("id", SEQUENCE_ID, autoincrement=True, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_VmInstanceSequenceNumberVO")),
    )


def downgrade() -> None:
    op.drop_table("VmInstanceSequenceNumberVO")
    op.drop_table("VmNicVO")
    op.drop_table("VmInstanceVO")
    op.drop_table("VolumeVO")
