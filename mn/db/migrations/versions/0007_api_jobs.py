"""ApiJobVO: asynchronous API jobs.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# A copy of mn.db.types.Timestamp as it was: a migration must not change
# meaning when the models change later.
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "ApiJobVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("apiName", sa.String(255), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("managementNodeUuid", sa.String(32), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("webHook", sa.String(2048), nullable=True),
        sa.Column("createDate", TIMESTAMP, nullable=False),
        sa.Column("lastOpDate", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_ApiJobVO")),
    )
    op.create_index("ix_ApiJobVO_managementNodeUuid_state", "ApiJobVO", ["managementNodeUuid", "state"])
    op.create_index("ix_ApiJobVO_state_lastOpDate", "ApiJobVO", ["state", "lastOpDate"])


def downgrade() -> None:
    op.drop_table("ApiJobVO")
