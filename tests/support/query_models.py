"""Tables, inventories and Query APIs of the query engine's tests.

A small world shaped like ZStack's: clusters, hosts in clusters, VMs on
hosts, nics of VMs on L3 networks, IPs of nics. The tables live in their own
metadata (``QtBase``), outside ``Base.metadata`` and its migrations; tests
create them with ``QtBase.metadata.create_all`` beside the migrated schema
(the tag tables are needed for ``__userTag__``). Class names start with
``Qt`` because inventories and messages are registered process-wide.

Relations (``shown`` ones are part of the JSON, ``expanded`` ones only
queryable)::

    QtVmInventory.vmNics      -> QtNicInventory      (shown, many)
    QtVmInventory.host        -> QtHostInventory     (expanded)
    QtNicInventory.usedIps    -> QtUsedIpInventory   (shown, many)
    QtNicInventory.l3Network  -> QtL3Inventory       (expanded)
    QtHostInventory.cluster   -> QtClusterInventory  (shown, one)
"""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import BigInteger, Boolean, Float, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mn.api.inventory import Inventory, Relation
from mn.api.message import APIQueryMessage, APIQueryReply, query_rest
from mn.db.models.base import NAMING_CONVENTION, ResourceMixin
from mn.db.types import Timestamp


class QtBase(DeclarativeBase):
    """Keeps the test tables out of Base.metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class QtClusterVO(ResourceMixin, QtBase):
    __tablename__ = "QtClusterVO"
    hypervisorType: Mapped[str] = mapped_column(String(32), default="KVM")


class QtHostVO(ResourceMixin, QtBase):
    __tablename__ = "QtHostVO"
    clusterUuid: Mapped[Optional[str]] = mapped_column(String(32), index=True)
    state: Mapped[str] = mapped_column(String(32), default="Enabled")
    totalCpu: Mapped[int] = mapped_column(Integer, default=8)


class QtL3VO(ResourceMixin, QtBase):
    __tablename__ = "QtL3VO"
    category: Mapped[str] = mapped_column(String(32), default="Private")


class QtVmVO(ResourceMixin, QtBase):
    __tablename__ = "QtVmVO"
    name: Mapped[str] = mapped_column(String(255), index=True)
    state: Mapped[str] = mapped_column(String(32), index=True, default="Running")
    hostUuid: Mapped[Optional[str]] = mapped_column(String(32), index=True)
    cpuNum: Mapped[int] = mapped_column(Integer, default=1)
    memorySize: Mapped[int] = mapped_column(BigInteger, default=1 << 30)
    cpuUsage: Mapped[float] = mapped_column(Float, default=0.0)
    haEnabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # A column the inventory does not show: conditions on it are unknown fields.
    internalNote: Mapped[Optional[str]] = mapped_column(String(64))


class QtNicVO(QtBase):
    __tablename__ = "QtNicVO"
    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    vmInstanceUuid: Mapped[Optional[str]] = mapped_column(String(32), index=True)
    l3NetworkUuid: Mapped[Optional[str]] = mapped_column(String(32), index=True)
    ip: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    deviceId: Mapped[int] = mapped_column(Integer, default=0)
    createDate: Mapped[datetime] = mapped_column(Timestamp)


class QtUsedIpVO(QtBase):
    __tablename__ = "QtUsedIpVO"
    uuid: Mapped[str] = mapped_column(String(32), primary_key=True)
    vmNicUuid: Mapped[Optional[str]] = mapped_column(String(32), index=True)
    ip: Mapped[str] = mapped_column(String(64))


class QtClusterInventory(Inventory):
    VO = QtClusterVO
    uuid: str
    name: str
    description: Optional[str] = None
    hypervisorType: str
    createDate: datetime
    lastOpDate: datetime


class QtHostInventory(Inventory):
    VO = QtHostVO
    RELATIONS = {"cluster": Relation("QtClusterInventory", "clusterUuid", "uuid", many=False)}
    uuid: str
    name: str
    clusterUuid: Optional[str] = None
    state: str
    totalCpu: int
    cluster: Optional[QtClusterInventory] = None


class QtL3Inventory(Inventory):
    VO = QtL3VO
    uuid: str
    name: str
    category: str


class QtUsedIpInventory(Inventory):
    VO = QtUsedIpVO
    uuid: str
    vmNicUuid: Optional[str] = None
    ip: str


class QtNicInventory(Inventory):
    VO = QtNicVO
    RELATIONS = {
        "usedIps": Relation("QtUsedIpInventory", "uuid", "vmNicUuid"),
        "l3Network": Relation("QtL3Inventory", "l3NetworkUuid", "uuid", many=False, expanded=True),
    }
    uuid: str
    vmInstanceUuid: Optional[str] = None
    l3NetworkUuid: Optional[str] = None
    ip: Optional[str] = None
    deviceId: int
    createDate: datetime
    usedIps: list[QtUsedIpInventory] = []


class QtVmInventory(Inventory):
    VO = QtVmVO
    RELATIONS = {
        "vmNics": Relation("QtNicInventory", "uuid", "vmInstanceUuid"),
        "host": Relation("QtHostInventory", "hostUuid", "uuid", many=False, expanded=True),
    }
    uuid: str
    name: str
    description: Optional[str] = None
    state: str
    hostUuid: Optional[str] = None
    cpuNum: int
    memorySize: int
    cpuUsage: float
    haEnabled: bool
    createDate: datetime
    lastOpDate: datetime
    vmNics: list[QtNicInventory] = []


class QtComputedInventory(Inventory):
    """An inventory with a field that is no column: shown, never queryable."""

    VO = QtVmVO
    uuid: str
    name: str
    nameLength: int

    @classmethod
    def from_vo(cls, vo, **related):
        return cls(uuid=vo.uuid, name=vo.name, nameLength=len(vo.name))


class APIQueryQtVmInstanceReply(APIQueryReply):
    FULL_NAME = "org.zstack.test.query.APIQueryQtVmInstanceReply"


class APIQueryQtVmInstanceMsg(APIQueryMessage):
    FULL_NAME = "org.zstack.test.query.APIQueryQtVmInstanceMsg"
    REST = query_rest("/qt-vm-instances")
    RESPONSE = APIQueryQtVmInstanceReply
    INVENTORY = QtVmInventory


class APIQueryQtHostMsg(APIQueryMessage):
    FULL_NAME = "org.zstack.test.query.APIQueryQtHostMsg"
    REST = query_rest("/qt-hosts")
    RESPONSE = APIQueryReply
    INVENTORY = QtHostInventory


class APIQueryQtComputedMsg(APIQueryMessage):
    FULL_NAME = "org.zstack.test.query.APIQueryQtComputedMsg"
    REST = query_rest("/qt-computed")
    RESPONSE = APIQueryReply
    INVENTORY = QtComputedInventory
