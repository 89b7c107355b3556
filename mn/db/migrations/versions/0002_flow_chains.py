"""FlowChainVO: durable records of running flow chains.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# A copy of mn.db.types.Timestamp as it was: a migration must not change
# meaning when the models change later.
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")


# A copy of mn.db.models.flow_chain.JsonText as it was.
JSON_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "FlowChainVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("chainName", sa.String(255), nullable=False),
        sa.Column("resourceUuid", sa.String(32), nullable=True),
        sa.Column("resourceType", sa.String(255), nullable=True),
        sa.Column("managementNodeUuid", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("currentStep", sa.String(1024), nullable=True),
        sa.Column("completedSteps", JSON_TEXT, nullable=False),
        sa.Column("data", JSON_TEXT, nullable=False),
        sa.Column("errorCode", JSON_TEXT, nullable=True),
        sa.Column("createDate", TIMESTAMP, nullable=False),
        sa.Column("lastOpDate", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_FlowChainVO")),
    )
    op.create_index(op.f("ix_FlowChainVO_managementNodeUuid"), "FlowChainVO", ["managementNodeUuid"])


def downgrade() -> None:
    op.drop_index(op.f("ix_FlowChainVO_managementNodeUuid"), table_name="FlowChainVO")
    op.drop_table("FlowChainVO")
