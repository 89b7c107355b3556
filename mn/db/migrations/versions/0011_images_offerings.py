"""ImageVO, ImageBackupStorageRefVO, InstanceOfferingVO, DiskOfferingVO.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# A copy of mn.db.types.Timestamp as it was: a migration must not change
# meaning when the models change later.
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")

# ImageBackupStorageRefVO.id as it was: ZStack's bigint, INTEGER on SQLite
# (the only type SQLite numbers by itself).
REF_ID = (sa.BigInteger()
          .with_variant(mysql.BIGINT(unsigned=True), "mysql", "mariadb")
          .with_variant(sa.Integer(), "sqlite"))


def _resource_columns() -> list[sa.Column]:
    """uuid, name, description, createDate and lastOpDate (ResourceMixin as it was)."""
    return [
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.String(2048), nullable=True),
        sa.Column("createDate", TIMESTAMP, nullable=False),
        sa.Column("lastOpDate", TIMESTAMP, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "ImageVO",
        *_resource_columns(),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("actualSize", sa.BigInteger(), nullable=False),
        sa.Column("md5Sum", sa.String(255), nullable=True),
        sa.Column("platform", sa.String(32), nullable=True),
        sa.Column("type", sa.String(255), nullable=False),
        sa.Column("format", sa.String(64), nullable=True),
        sa.Column("url", sa.String(1024), nullable=True),
        sa.Column("system", sa.Boolean(), nullable=False),
        sa.Column("mediaType", sa.String(64), nullable=False),
        sa.Column("guestOsType", sa.String(255), nullable=True),
        sa.Column("architecture", sa.String(32), nullable=True),
        sa.Column("virtio", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_ImageVO")),
    )
    op.create_index(op.f("ix_ImageVO_name"), "ImageVO", ["name"])
    op.create_index(op.f("ix_ImageVO_status"), "ImageVO", ["status"])
    op.create_index(op.f("ix_ImageVO_state"), "ImageVO", ["state"])

    op.create_table(
        "ImageBackupStorageRefVO",
        sa.Column("id", REF_ID, autoincrement=True, nullable=False),
        sa.Column("imageUuid", sa.String(32), nullable=False),
        sa.Column("backupStorageUuid", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("installPath", sa.String(1024), nullable=True),
        sa.Column("exportMd5Sum", sa.String(255), nullable=True),
        sa.Column("exportUrl", sa.String(2048), nullable=True),
        sa.Column("createDate", TIMESTAMP, nullable=False),
        sa.Column("lastOpDate", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ImageBackupStorageRefVO")),
        sa.UniqueConstraint("imageUuid", "backupStorageUuid",
                            name=op.f("uq_ImageBackupStorageRefVO_imageUuid_backupStorageUuid")),
        sa.ForeignKeyConstraint(["imageUuid"], ["ImageVO.uuid"], ondelete="CASCADE",
                                name=op.f("fk_ImageBackupStorageRefVO_imageUuid_ImageVO")),
        sa.ForeignKeyConstraint(["backupStorageUuid"], ["BackupStorageVO.uuid"], ondelete="CASCADE",
                                name=op.f("fk_ImageBackupStorageRefVO_backupStorageUuid_BackupStorageVO")),
    )
    op.create_index(op.f("ix_ImageBackupStorageRefVO_imageUuid"), "ImageBackupStorageRefVO", ["imageUuid"])
    op.create_index(op.f("ix_ImageBackupStorageRefVO_backupStorageUuid"), "ImageBackupStorageRefVO",
                    ["backupStorageUuid"])

    op.create_table(
        "InstanceOfferingVO",
        *_resource_columns(),
        sa.Column("cpuNum", sa.Integer(), nullable=False),
        sa.Column("cpuSpeed", sa.Integer(), nullable=False),
        sa.Column("memorySize", sa.BigInteger(), nullable=False),
        sa.Column("reservedMemorySize", sa.BigInteger(), nullable=False),
        sa.Column("allocatorStrategy", sa.String(64), nullable=True),
        sa.Column("sortKey", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("type", sa.String(255), nullable=False),
        sa.Column("duration", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_InstanceOfferingVO")),
    )
    op.create_index(op.f("ix_InstanceOfferingVO_name"), "InstanceOfferingVO", ["name"])
    op.create_index(op.f("ix_InstanceOfferingVO_state"), "InstanceOfferingVO", ["state"])

    op.create_table(
        "DiskOfferingVO",
        *_resource_columns(),
        sa.Column("diskSize", sa.BigInteger(), nullable=False),
        sa.Column("sortKey", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("type", sa.String(255), nullable=False),
        sa.Column("allocatorStrategy", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_DiskOfferingVO")),
    )
    op.create_index(op.f("ix_DiskOfferingVO_name"), "DiskOfferingVO", ["name"])
    op.create_index(op.f("ix_DiskOfferingVO_state"), "DiskOfferingVO", ["state"])


def downgrade() -> None:
    op.drop_table("DiskOfferingVO")
    op.drop_table("InstanceOfferingVO")
    op.drop_table("ImageBackupStorageRefVO")
    op.drop_table("ImageVO")
