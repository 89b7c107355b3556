"""ZoneVO and ClusterVO.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# A copy of mn.db.types.Timestamp as it was: a migration must not change
# meaning when the models change later.
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "ZoneVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.String(2048), nullable=True),
        sa.Column("createDate", TIMESTAMP, nullable=False),
        sa.Column("lastOpDate", TIMESTAMP, nullable=False),
        sa.Column("type", sa.String(255), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("isDefault", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_ZoneVO")),
    )
    op.create_index(op.f("ix_ZoneVO_name"), "ZoneVO", ["name"])

    op.create_table(
        "ClusterVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.String(2048), nullable=True),
        sa.Column("createDate", TIMESTAMP, nullable=False),
        sa.Column("lastOpDate", TIMESTAMP, nullable=False),
        sa.Column("zoneUuid", sa.String(32), nullable=False),
        sa.Column("type", sa.String(255), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("hypervisorType", sa.String(64), nullable=False),
        sa.Column("managementNodeId", sa.String(128), nullable=True),
        sa.Column("architecture", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_ClusterVO")),
        sa.ForeignKeyConstraint(["zoneUuid"], ["ZoneVO.uuid"], ondelete="RESTRICT",
                                name=op.f("fk_ClusterVO_zoneUuid_ZoneVO")),
    )
    op.create_index(op.f("ix_ClusterVO_name"), "ClusterVO", ["name"])
    op.create_index(op.f("ix_ClusterVO_zoneUuid"), "ClusterVO", ["zoneUuid"])


def downgrade() -> None:
    op.drop_table("ClusterVO")
    op.drop_table("ZoneVO")
