"""L2 and L3 networks, their IP ranges and DNS, and the IP addresses in use.

Tables and columns follow ZStack's schema. Where ZStack relies on Java-side
checks we add constraints, so management nodes racing each other cannot
create duplicates: an address is used once per L3 network
(``UNIQUE (l3NetworkUuid, ip)``, what IP allocation relies on), an L2
network is attached to a cluster once, and a DNS server is on an L3 network
once. IPv4 only: ZStack's ``ipInBinary`` (IPv6) column is not kept.

Foreign keys are RESTRICT unless ZStack cascades: deleting an L2 network
deletes its cluster attachments and VLAN row; deleting an L3 network its
ranges, DNS servers and used addresses; deleting a range its used
addresses. The cascade framework still deletes leaves first, so these
database cascades only catch what has no service of its own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from mn.db.models.base import Base, ResourceMixin
from mn.db.types import Timestamp, created_or_now, utcnow
from mn.ids import new_uuid

#: ``type`` of L2 networks without VLAN tagging (ZStack's L2_NO_VLAN_NETWORK_TYPE).
L2_NO_VLAN_NETWORK_TYPE = "L2NoVlanNetwork"
#: ``type`` of 802.1Q VLAN L2 networks (ZStack's L2_VLAN_NETWORK_TYPE).
L2_VLAN_NETWORK_TYPE = "L2VlanNetwork"
#: The only L3 network type this management node creates (ZStack's L3_BASIC_NETWORK_TYPE).
L3_BASIC_NETWORK_TYPE = "L3BasicNetwork"
#: ``ipVersion`` of IPv4 ranges, addresses and networks.
IPV4 = 4

#: ZStack's ``bigint unsigned AUTO_INCREMENT`` ids; SQLite numbers only an
#: ``INTEGER PRIMARY KEY`` by itself.
ROW_ID_TYPE = (BigInteger()
               .with_variant(mysql.BIGINT(unsigned=True), "mysql", "mariadb")
               .with_variant(Integer(), "sqlite"))


class L2NetworkVO(ResourceMixin, Base):
    """An L2 network in a zone (ZStack's L2NetworkAO).

    ``type`` is also the ORM discriminator: a row of type
    :data:`L2_VLAN_NETWORK_TYPE` loads as :class:`L2VlanNetworkVO`. A new L2
    type needs its own mapped subclass.
    """

    __tablename__ = "L2NetworkVO"

    name: Mapped[str] = mapped_column(String(255), index=True)
    zoneUuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("ZoneVO.uuid", ondelete="RESTRICT"), index=True)
    physicalInterface: Mapped[str] = mapped_column(String(1024))
    type: Mapped[str] = mapped_column(String(255), index=True)
    vSwitchType: Mapped[str] = mapped_column(String(255), default="LinuxBridge")
    #: The VLAN id of VLAN networks, 0 for the others (ZStack's VIRTUAL_NETWORK_ID_DEFAULT_VALUE).
    virtualNetworkId: Mapped[int] = mapped_column(Integer, default=0)
    isolated: Mapped[bool] = mapped_column(Boolean, default=False)
    pvlan: Mapped[Optional[str]] = mapped_column(String(255))

    __mapper_args__ = {"polymorphic_on": "type", "polymorphic_identity": L2_NO_VLAN_NETWORK_TYPE}


class L2VlanNetworkVO(L2NetworkVO):
    """The VLAN id of an L2VlanNetwork, in its own table joined by uuid (ZStack's L2VlanNetworkVO)."""

    __tablename__ = "L2VlanNetworkVO"

    uuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("L2NetworkVO.uuid", ondelete="CASCADE"), primary_key=True)
    vlan: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"polymorphic_identity": L2_VLAN_NETWORK_TYPE}


class L2NetworkClusterRefVO(Base):
    """An L2 network attached to a cluster: the cluster's hosts can reach it."""

    __tablename__ = "L2NetworkClusterRefVO"
    __table_args__ = (UniqueConstraint("l2NetworkUuid", "clusterUuid"),)

    id: Mapped[int] = mapped_column(ROW_ID_TYPE, primary_key=True, autoincrement=True)
    clusterUuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("ClusterVO.uuid", ondelete="CASCADE"), index=True)
    l2NetworkUuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("L2NetworkVO.uuid", ondelete="CASCADE"), index=True)
    l2ProviderType: Mapped[Optional[str]] = mapped_column(String(255))
    createDate: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    lastOpDate: Mapped[datetime] = mapped_column(Timestamp, default=created_or_now, onupdate=utcnow)


class L3NetworkVO(ResourceMixin, Base):
    """An L3 network on an L2 network (ZStack's L3NetworkAO); ``zoneUuid`` is its L2's."""

    __tablename__ = "L3NetworkVO"

    name: Mapped[str] = mapped_column(String(255), index=True)
    state: Mapped[str] = mapped_column(String(32), default="Enabled", index=True)
    type: Mapped[str] = mapped_column(String(255), default=L3_BASIC_NETWORK_TYPE)
    zoneUuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("ZoneVO.uuid", ondelete="RESTRICT"), index=True)
    l2NetworkUuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("L2NetworkVO.uuid", ondelete="RESTRICT"), index=True)
    system: Mapped[bool] = mapped_column(Boolean, default=False)
    dnsDomain: Mapped[Optional[str]] = mapped_column(String(255))
    ipVersion: Mapped[int] = mapped_column(Integer, default=IPV4)
    enableIPAM: Mapped[bool] = mapped_column(Boolean, default=True)
    isolated: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Public, Private or System (ZStack's L3NetworkCategory).
    category: Mapped[str] = mapped_column(String(32), default="Private")


class IpRangeVO(ResourceMixin, Base):
    """Addresses ``startIp``..``endIp`` (inclusive) of an L3 network, with their
    subnet's netmask and gateway; the gateway is never inside the range."""

    __tablename__ = "IpRangeVO"

    l3NetworkUuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("L3NetworkVO.uuid", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    startIp: Mapped[str] = mapped_column(String(64), index=True)
    endIp: Mapped[str] = mapped_column(String(64), index=True)
    netmask: Mapped[str] = mapped_column(String(64), index=True)
    gateway: Mapped[str] = mapped_column(String(64), index=True)
    networkCidr: Mapped[str] = mapped_column(String(64))
    ipVersion: Mapped[int] = mapped_column(Integer, default=IPV4)
    prefixLen: Mapped[int] = mapped_column(Integer)
    addressMode: Mapped[Optional[str]] = mapped_column(String(64))


class L3NetworkDnsVO(Base):
    """A DNS server of an L3 network; ``id`` keeps the order they were added in."""

    __tablename__ = "L3NetworkDnsVO"
    __table_args__ = (UniqueConstraint("l3NetworkUuid", "dns"),)

    id: Mapped[int] = mapped_column(ROW_ID_TYPE, primary_key=True, autoincrement=True)
    l3NetworkUuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("L3NetworkVO.uuid", ondelete="CASCADE"), index=True)
    dns: Mapped[str] = mapped_column(String(255))
    createDate: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    lastOpDate: Mapped[datetime] = mapped_column(Timestamp, default=created_or_now, onupdate=utcnow)


class UsedIpVO(Base):
    """An address of an L3 network in use (by a VM nic when ``vmNicUuid`` is set).

    ``UNIQUE (l3NetworkUuid, ip)`` is what makes allocation safe across
    management nodes: two allocators picking one address cannot both insert
    it. ``(ipRangeUuid, ipInLong)`` lets the allocator find the next free
    address of a range with an index range scan.

    ``vmNicUuid`` has no foreign key here: VmNicVO comes later in the chain
    of migrations (ZStack: ``ON DELETE CASCADE`` to VmNicVO).
    """

    __tablename__ = "UsedIpVO"
    __table_args__ = (
        UniqueConstraint("l3NetworkUuid", "ip"),
        Index(None, "ipRangeUuid", "ipInLong"),
    )

    uuid: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_uuid)
    ipRangeUuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("IpRangeVO.uuid", ondelete="CASCADE"))
    l3NetworkUuid: Mapped[str] = mapped_column(
        String(32), ForeignKey("L3NetworkVO.uuid", ondelete="CASCADE"))
    vmNicUuid: Mapped[Optional[str]] = mapped_column(String(32), index=True)
    ipVersion: Mapped[int] = mapped_column(Integer, default=IPV4)
    ip: Mapped[str] = mapped_column(String(128), index=True)
    gateway: Mapped[Optional[str]] = mapped_column(String(128))
    netmask: Mapped[Optional[str]] = mapped_column(String(128))
    ipInLong: Mapped[int] = mapped_column(BigInteger)
    usedFor: Mapped[Optional[str]] = mapped_column(String(128))
    metaData: Mapped[Optional[str]] = mapped_column(Text)
    createDate: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    lastOpDate: Mapped[datetime] = mapped_column(Timestamp, default=created_or_now, onupdate=utcnow)
