"""SystemTagVO and UserTagVO.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# A copy of mn.db.types.Timestamp as it was: a migration must not change
# meaning when the models change later.
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")

# InnoDB indexes at most 3072 bytes: ``tag`` (2048 utf8mb4 characters) gets a
# prefix index there; SQLite ignores the length and indexes it whole.
TAG_INDEX_PREFIX = 128


def _tag_columns() -> list[sa.Column]:
    return [
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("resourceUuid", sa.String(32), nullable=False),
        sa.Column("resourceType", sa.String(64), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("tag", sa.String(2048), nullable=False),
        sa.Column("createDate", TIMESTAMP, nullable=False),
        sa.Column("lastOpDate", TIMESTAMP, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "SystemTagVO",
        *_tag_columns(),
        sa.Column("inherent", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_SystemTagVO")),
    )
    op.create_index(op.f("ix_SystemTagVO_resourceUuid"), "SystemTagVO", ["resourceUuid"])
    op.create_index(op.f("ix_SystemTagVO_tag"), "SystemTagVO", ["tag"],
                    mysql_length=TAG_INDEX_PREFIX)

    op.create_table(
        "UserTagVO",
        *_tag_columns(),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_UserTagVO")),
    )
    op.create_index(op.f("ix_UserTagVO_resourceUuid"), "UserTagVO", ["resourceUuid"])
    op.create_index(op.f("ix_UserTagVO_tag"), "UserTagVO", ["tag"],
                    mysql_length=TAG_INDEX_PREFIX)


def downgrade() -> None:
    op.drop_table("UserTagVO")
    op.drop_table("SystemTagVO")
