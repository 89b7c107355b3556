"""GlobalConfigVO.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# A copy of mn.db.types.Timestamp as it was: a migration must not change
# meaning when the models change later.
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")


# GlobalConfigVO.id as it was: ZStack's bigint unsigned, INTEGER on SQLite
# (the only type SQLite numbers by itself).
ID = (sa.BigInteger()
      .with_variant(mysql.BIGINT(unsigned=True), "mysql", "mariadb")
      .with_variant(sa.Integer(), "sqlite"))


def upgrade() -> None:
    op.create_table(
        "GlobalConfigVO",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.String(1024), nullable=True),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("defaultValue", sa.Text(), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_GlobalConfigVO")),
        sa.UniqueConstraint("category", "name", name=op.f("uq_GlobalConfigVO_category_name")),
    )


def downgrade() -> None:
    op.drop_table("GlobalConfigVO")
