"""ManagementNodeVO: cluster membership and heartbeats.

Revision ID: 0001
Revises:
Create Date: 2024-01-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# A copy of mn.db.types.Timestamp as it was: a migration must not change
# meaning when the models change later.
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "ManagementNodeVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("hostName", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("joinDate", TIMESTAMP, nullable=False),
        sa.Column("heartBeat", TIMESTAMP, nullable=False),
        sa.Column("version", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_ManagementNodeVO")),
    )


def downgrade() -> None:
    op.drop_table("ManagementNodeVO")
