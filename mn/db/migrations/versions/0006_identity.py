"""AccountVO, SessionVO, AccessKeyVO, AccountResourceRefVO.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# A copy of mn.db.types.Timestamp as it was: a migration must not change
# meaning when the models change later.
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")


# AccountResourceRefVO.id as it was: ZStack's bigint unsigned, INTEGER on
# SQLite (the only type SQLite numbers by itself).
REF_ID = (sa.BigInteger()
          .with_variant(mysql.BIGINT(unsigned=True), "mysql", "mariadb")
          .with_variant(sa.Integer(), "sqlite"))


def upgrade() -> None:
    op.create_table(
        "AccountVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.String(2048), nullable=True),
        sa.Column("password", sa.String(255), nullable=False),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("createDate", TIMESTAMP, nullable=False),
        sa.Column("lastOpDate", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_AccountVO")),
        sa.UniqueConstraint("name", name=op.f("uq_AccountVO_name")),
    )

    op.create_table(
        "SessionVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("accountUuid", sa.String(32), nullable=False),
        sa.Column("userUuid", sa.String(32), nullable=True),
        sa.Column("expiredDate", TIMESTAMP, nullable=False),
        sa.Column("createDate", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_SessionVO")),
        sa.ForeignKeyConstraint(["accountUuid"], ["AccountVO.uuid"], ondelete="CASCADE",
                                name=op.f("fk_SessionVO_accountUuid_AccountVO")),
    )
    op.create_index(op.f("ix_SessionVO_accountUuid"), "SessionVO", ["accountUuid"])

    op.create_table(
        "AccessKeyVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("description", sa.String(2048), nullable=True),
        sa.Column("accountUuid", sa.String(32), nullable=False),
        sa.Column("userUuid", sa.String(32), nullable=False),
        sa.Column("AccessKeyID", sa.String(128), nullable=False),
        sa.Column("AccessKeySecret", sa.String(128), nullable=False),
        sa.Column("state", sa.String(64), nullable=False),
        sa.Column("createDate", TIMESTAMP, nullable=False),
        sa.Column("lastOpDate", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_AccessKeyVO")),
        sa.UniqueConstraint("AccessKeyID", name=op.f("uq_AccessKeyVO_AccessKeyID")),
        sa.ForeignKeyConstraint(["accountUuid"], ["AccountVO.uuid"], ondelete="CASCADE",
                                name=op.f("fk_AccessKeyVO_accountUuid_AccountVO")),
    )
    op.create_index(op.f("ix_AccessKeyVO_accountUuid"), "AccessKeyVO", ["accountUuid"])

    op.create_table(
        "AccountResourceRefVO",
        sa.Column("id", REF_ID, autoincrement=True, nullable=False),
        sa.Column("accountUuid", sa.String(32), nullable=False),
        sa.Column("ownerAccountUuid", sa.String(32), nullable=False),
        sa.Column("resourceUuid", sa.String(32), nullable=False),
        sa.Column("resourceType", sa.String(255), nullable=False),
        sa.Column("concreteResourceType", sa.String(512), nullable=False),
        sa.Column("permission", sa.Integer(), nullable=False),
        sa.Column("isShared", sa.Boolean(), nullable=False),
        sa.Column("createDate", TIMESTAMP, nullable=False),
        sa.Column("lastOpDate", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_AccountResourceRefVO")),
        sa.UniqueConstraint("resourceUuid", name=op.f("uq_AccountResourceRefVO_resourceUuid")),
    )
    op.create_index(op.f("ix_AccountResourceRefVO_accountUuid"), "AccountResourceRefVO",
                    ["accountUuid"])


def downgrade() -> None:
    op.drop_table("AccountResourceRefVO")
    op.drop_table("AccessKeyVO")
    op.drop_table("SessionVO")
    op.drop_table("AccountVO")
