"""L2/L3 networks, IP ranges, DNS, UsedIpVO.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# A copy of mn.db.types.Timestamp as it was: a migration must not change
# meaning when the models change later.
TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")

# Row ids as they were: ZStack's bigint unsigned, INTEGER on SQLite (the only
# type SQLite numbers by itself).
ROW_ID = (sa.BigInteger()
          .with_variant(mysql.BIGINT(unsigned=True), "mysql", "mariadb")
          .with_variant(sa.Integer(), "sqlite"))


def _resource_columns() -> list[sa.Column]:
    return [
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.String(2048), nullable=True),
        sa.Column("createDate", TIMESTAMP, nullable=False),
        sa.Column("lastOpDate", TIMESTAMP, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "L2NetworkVO",
        *_resource_columns(),
        sa.Column("zoneUuid", sa.String(32), nullable=False),
        sa.Column("physicalInterface", sa.String(1024), nullable=False),
        sa.Column("type", sa.String(255), nullable=False),
        sa.Column("vSwitchType", sa.String(255), nullable=False),
        sa.Column("virtualNetworkId", sa.Integer(), nullable=False),
        sa.Column("isolated", sa.Boolean(), nullable=False),
        sa.Column("pvlan", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_L2NetworkVO")),
        sa.ForeignKeyConstraint(["zoneUuid"], ["ZoneVO.uuid"], ondelete="RESTRICT",
                                name=op.f("fk_L2NetworkVO_zoneUuid_ZoneVO")),
    )
    op.create_index(op.f("ix_L2NetworkVO_name"), "L2NetworkVO", ["name"])
    op.create_index(op.f("ix_L2NetworkVO_zoneUuid"), "L2NetworkVO", ["zoneUuid"])
    op.create_index(op.f("ix_L2NetworkVO_type"), "L2NetworkVO", ["type"])

    op.create_table(
        "L2VlanNetworkVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("vlan", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_L2VlanNetworkVO")),
        sa.ForeignKeyConstraint(["uuid"], ["L2NetworkVO.uuid"], ondelete="CASCADE",
                                name=op.f("fk_L2VlanNetworkVO_uuid_L2NetworkVO")),
    )

    op.create_table(
        "L2NetworkClusterRefVO",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("clusterUuid", sa.String(32), nullable=False),
        sa.Column("l2NetworkUuid", sa.String(32), nullable=False),
        sa.Column("l2ProviderType", sa.String(255), nullable=True),
        sa.Column("createDate", TIMESTAMP, nullable=False),
        sa.Column("lastOpDate", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_L2NetworkClusterRefVO")),
        sa.ForeignKeyConstraint(["clusterUuid"], ["ClusterVO.uuid"], ondelete="CASCADE",
                                name=op.f("fk_L2NetworkClusterRefVO_clusterUuid_ClusterVO")),
        sa.ForeignKeyConstraint(["l2NetworkUuid"], ["L2NetworkVO.uuid"], ondelete="CASCADE",
                                name=op.f("fk_L2NetworkClusterRefVO_l2NetworkUuid_L2NetworkVO")),
        sa.UniqueConstraint("l2NetworkUuid", "clusterUuid",
                            name=op.f("uq_L2NetworkClusterRefVO_l2NetworkUuid_clusterUuid")),
    )
    op.create_index(op.f("ix_L2NetworkClusterRefVO_clusterUuid"), "L2NetworkClusterRefVO", ["clusterUuid"])
    op.create_index(op.f("ix_L2NetworkClusterRefVO_l2NetworkUuid"), "L2NetworkClusterRefVO",
                    ["l2NetworkUuid"])

    op.create_table(
        "L3NetworkVO",
        *_resource_columns(),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("type", sa.String(255), nullable=False),
        sa.Column("zoneUuid", sa.String(32), nullable=False),
        sa.Column("l2NetworkUuid", sa.String(32), nullable=False),
        sa.Column("system", sa.Boolean(), nullable=False),
        sa.Column("dnsDomain", sa.String(255), nullable=True),
        sa.Column("ipVersion", sa.Integer(), nullable=False),
        sa.Column("enableIPAM", sa.Boolean(), nullable=False),
        sa.Column("isolated", sa.Boolean(), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_L3NetworkVO")),
        sa.ForeignKeyConstraint(["zoneUuid"], ["ZoneVO.uuid"], ondelete="RESTRICT",
                                name=op.f("fk_L3NetworkVO_zoneUuid_ZoneVO")),
        sa.ForeignKeyConstraint(["l2NetworkUuid"], ["L2NetworkVO.uuid"], ondelete="RESTRICT",
                                name=op.f("fk_L3NetworkVO_l2NetworkUuid_L2NetworkVO")),
    )
    op.create_index(op.f("ix_L3NetworkVO_name"), "L3NetworkVO", ["name"])
    op.create_index(op.f("ix_L3NetworkVO_state"), "L3NetworkVO", ["state"])
    op.create_index(op.f("ix_L3NetworkVO_zoneUuid"), "L3NetworkVO", ["zoneUuid"])
    op.create_index(op.f("ix_L3NetworkVO_l2NetworkUuid"), "L3NetworkVO", ["l2NetworkUuid"])

    op.create_table(
        "IpRangeVO",
        *_resource_columns(),
        sa.Column("l3NetworkUuid", sa.String(32), nullable=False),
        sa.Column("startIp", sa.String(64), nullable=False),
        sa.Column("endIp", sa.String(64), nullable=False),
        sa.Column("netmask", sa.String(64), nullable=False),
        sa.Column("gateway", sa.String(64), nullable=False),
        sa.Column("networkCidr", sa.String(64), nullable=False),
        sa.Column("ipVersion", sa.Integer(), nullable=False),
        sa.Column("prefixLen", sa.Integer(), nullable=False),
        sa.Column("addressMode", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_IpRangeVO")),
        sa.ForeignKeyConstraint(["l3NetworkUuid"], ["L3NetworkVO.uuid"], ondelete="CASCADE",
                                name=op.f("fk_IpRangeVO_l3NetworkUuid_L3NetworkVO")),
    )
    for column in ("l3NetworkUuid", "name", "startIp", "endIp", "netmask", "gateway"):
        op.create_index(op.f(f"ix_IpRangeVO_{column}"), "IpRangeVO", [column])

    op.create_table(
        "L3NetworkDnsVO",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("l3NetworkUuid", sa.String(32), nullable=False),
        sa.Column("dns", sa.String(255), nullable=False),
        sa.Column("createDate", TIMESTAMP, nullable=False),
        sa.Column("lastOpDate", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_L3NetworkDnsVO")),
        sa.ForeignKeyConstraint(["l3NetworkUuid"], ["L3NetworkVO.uuid"], ondelete="CASCADE",
                                name=op.f("fk_L3NetworkDnsVO_l3NetworkUuid_L3NetworkVO")),
        sa.UniqueConstraint("l3NetworkUuid", "dns", name=op.f("uq_L3NetworkDnsVO_l3NetworkUuid_dns")),
    )
    op.create_index(op.f("ix_L3NetworkDnsVO_l3NetworkUuid"), "L3NetworkDnsVO", ["l3NetworkUuid"])

    op.create_table(
        "UsedIpVO",
        sa.Column("uuid", sa.String(32), nullable=False),
        sa.Column("ipRangeUuid", sa.String(32), nullable=False),
        sa.Column("l3NetworkUuid", sa.String(32), nullable=False),
        sa.Column("vmNicUuid", sa.String(32), nullable=True),
        sa.Column("ipVersion", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(128), nullable=False),
        sa.Column("gateway", sa.String(128), nullable=True),
        sa.Column("netmask", sa.String(128), nullable=True),
        sa.Column("ipInLong", sa.BigInteger(), nullable=False),
        sa.Column("usedFor", sa.String(128), nullable=True),
        sa.Column("metaData", sa.Text(), nullable=True),
        sa.Column("createDate", TIMESTAMP, nullable=False),
        sa.Column("lastOpDate", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_UsedIpVO")),
        sa.ForeignKeyConstraint(["ipRangeUuid"], ["IpRangeVO.uuid"], ondelete="CASCADE",
                                name=op.f("fk_UsedIpVO_ipRangeUuid_IpRangeVO")),
        sa.ForeignKeyConstraint(["l3NetworkUuid"], ["L3NetworkVO.uuid"], ondelete="CASCADE",
                                name=op.f("fk_UsedIpVO_l3NetworkUuid_L3NetworkVO")),
        sa.UniqueConstraint("l3NetworkUuid", "ip", name=op.f("uq_UsedIpVO_l3NetworkUuid_ip")),
    )
    op.create_index(op.f("ix_UsedIpVO_ipRangeUuid_ipInLong"), "UsedIpVO", ["ipRangeUuid", "ipInLong"])
    op.create_index(op.f("ix_UsedIpVO_vmNicUuid"), "UsedIpVO", ["vmNicUuid"])
    op.create_index(op.f("ix_UsedIpVO_ip"), "UsedIpVO", ["ip"])


def downgrade() -> None:
    op.drop_table("UsedIpVO")
    op.drop_table("L3NetworkDnsVO")
    op.drop_table("IpRangeVO")
    op.drop_table("L3NetworkVO")
    op.drop_table("L2NetworkClusterRefVO")
    op.drop_table("L2VlanNetworkVO")
    op.drop_table("L2NetworkVO")
