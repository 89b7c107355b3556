"""HostVO, HostCapacityVO, SimulatorHostVO.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# A copy of mn.db.types.Timestamp as it was: a migration must not change
# meaning when the models change later.
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "HostVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.String(2048), nullable=True),
        sa.Column("createDate", TIMESTAMP, nullable=False),
        sa.Column("lastOpDate", TIMESTAMP, nullable=False),
        sa.Column("zoneUuid", sa.String(32), nullable=False),
        sa.Column("clusterUuid", sa.String(32), nullable=False),
        sa.Column("managementIp", sa.String(255), nullable=False),
        sa.Column("hypervisorType", sa.String(64), nullable=False),
        sa.Column("architecture", sa.String(32), nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_HostVO")),
        sa.ForeignKeyConstraint(["zoneUuid"], ["ZoneVO.uuid"], ondelete="RESTRICT",
                                name=op.f("fk_HostVO_zoneUuid_ZoneVO")),
        sa.ForeignKeyConstraint(["clusterUuid"], ["ClusterVO.uuid"], ondelete="RESTRICT",
                                name=op.f("fk_HostVO_clusterUuid_ClusterVO")),
        sa.UniqueConstraint("managementIp", name=op.f("uq_HostVO_managementIp")),
    )
    for column in ("name", "zoneUuid", "clusterUuid", "state", "status"):
        op.create_index(op.f(f"ix_HostVO_{column}"), "HostVO", [column])

    op.create_table(
        "HostCapacityVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("totalMemory", sa.BigInteger(), nullable=False),
        sa.Column("totalCpu", sa.BigInteger(), nullable=False),
        sa.Column("cpuNum", sa.Integer(), nullable=False),
        sa.Column("cpuSockets", sa.Integer(), nullable=False),
        sa.Column("availableMemory", sa.BigInteger(), nullable=False),
        sa.Column("availableCpu", sa.BigInteger(), nullable=False),
        sa.Column("totalPhysicalMemory", sa.BigInteger(), nullable=False),
        sa.Column("availablePhysicalMemory", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_HostCapacityVO")),
        sa.ForeignKeyConstraint(["uuid"], ["HostVO.uuid"], ondelete="CASCADE",
                                name=op.f("fk_HostCapacityVO_uuid_HostVO")),
    )
    for column in ("totalMemory", "totalCpu", "cpuNum", "availableMemory", "availableCpu",
                   "totalPhysicalMemory", "availablePhysicalMemory"):
        op.create_index(op.f(f"ix_HostCapacityVO_{column}"), "HostCapacityVO", [column])

    op.create_table(
        "SimulatorHostVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("memoryCapacity", sa.BigInteger(), nullable=False),
        sa.Column("cpuCapacity", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_SimulatorHostVO")),
        sa.ForeignKeyConstraint(["uuid"], ["HostVO.uuid"], ondelete="CASCADE",
                                name=op.f("fk_SimulatorHostVO_uuid_HostVO")),
    )


def downgrade() -> None:
    op.drop_table("SimulatorHostVO")
    op.drop_table("HostCapacityVO")
    op.drop_table("HostVO")
