"""GarbageCollectorVO: deferred cleanups.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# A copy of mn.db.types.Timestamp as it was: a migration must not change
# meaning when the models change later.
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "GarbageCollectorVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("runnerClass", sa.String(512), nullable=False),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("managementNodeUuid", sa.String(32), nullable=True),
        sa.Column("nextRunDate", TIMESTAMP, nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("lastError", sa.Text(), nullable=True),
        sa.Column("createDate", TIMESTAMP, nullable=False),
        sa.Column("lastOpDate", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_GarbageCollectorVO")),
        sa.ForeignKeyConstraint(
            ["managementNodeUuid"], ["ManagementNodeVO.uuid"], ondelete="SET NULL",
            name=op.f("fk_GarbageCollectorVO_managementNodeUuid_ManagementNodeVO")),
    )
    op.create_index(op.f("ix_GarbageCollectorVO_status_nextRunDate"), "GarbageCollectorVO",
                    ["status", "nextRunDate"])


def downgrade() -> None:
    op.drop_index(op.f("ix_GarbageCollectorVO_status_nextRunDate"), table_name="GarbageCollectorVO")
    op.drop_table("GarbageCollectorVO")
