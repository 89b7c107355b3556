"""KVMHostVO: how the MN logs in to a KVM host.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "KVMHostVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("password", sa.String(255), nullable=True),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("osDistribution", sa.String(64), nullable=True),
        sa.Column("osRelease", sa.String(64), nullable=True),
        sa.Column("osVersion", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_KVMHostVO")),
        sa.ForeignKeyConstraint(["uuid"], ["HostVO.uuid"], ondelete="CASCADE",
                                name=op.f("fk_KVMHostVO_uuid_HostVO")),
    )


def downgrade() -> None:
    op.drop_table("KVMHostVO")
