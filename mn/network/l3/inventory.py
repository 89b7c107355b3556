"""L3 network inventories: L3 networks, their IP ranges and DNS servers, used IP addresses."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, field_validator
from sqlalchemy.orm import Session

from mn.api.inventory import Inventory, Relation
from mn.api.query import build_inventories, inventory_schema
from mn.db.models.network import IpRangeVO, L3NetworkDnsVO, L3NetworkVO, UsedIpVO


class _UnstoredFields:
    """Mixin of inventories with ZStack fields this node keeps no column for:
    they show their defaults and are not queryable."""

    UNSTORED: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def column_fields(cls) -> list[str]:
        return [name for name in super().column_fields() if name not in cls.UNSTORED]


class L3NetworkDnsInventory(Inventory):
    """ZStack's L3NetworkDnsInventory: one DNS server of an L3 network."""

    VO = L3NetworkDnsVO

    l3NetworkUuid: str
    dns: str
    createDate: datetime
    lastOpDate: datetime


class IpRangeInventory(_UnstoredFields, Inventory):
    """ZStack's IpRangeInventory. Every range here is a Normal range (``ipRangeType``)."""

    READABLE_BY_ALL = True  # ZStack's globalReadableResources

    VO = IpRangeVO
    RELATIONS = {
        "l3Network": Relation("L3NetworkInventory", "l3NetworkUuid", "uuid", many=False, expanded=True),
    }
    UNSTORED: ClassVar[tuple[str, ...]] = ("ipRangeType",)

    uuid: str
    l3NetworkUuid: str
    name: str
    description: str | None = None
    startIp: str
    endIp: str
    netmask: str
    gateway: str
    networkCidr: str
    ipVersion: int
    addressMode: str | None = None
    prefixLen: int
    ipRangeType: str = "Normal"
    createDate: datetime
    lastOpDate: datetime


class UsedIpInventory(Inventory):
    """ZStack's UsedIpInventory: an address in use (by the VM nic ``vmNicUuid`` if set)."""

    READABLE_BY_ALL = True  # ZStack's globalReadableResources

    VO = UsedIpVO
    RELATIONS = {
        "l3Network": Relation("L3NetworkInventory", "l3NetworkUuid", "uuid", many=False, expanded=True),
    }

    uuid: str
    ipRangeUuid: str
    l3NetworkUuid: str
    ipVersion: int
    ip: str
    netmask: str | None = None
    gateway: str | None = None
    usedFor: str | None = None
    metaData: str | None = None
    ipInLong: int
    vmNicUuid: str | None = None
    createDate: datetime
    lastOpDate: datetime


class L3NetworkInventory(_UnstoredFields, Inventory):
    """ZStack's L3NetworkInventory.

    ``dns`` lists the DNS servers in the order they were added (queries:
    ``dns.dns``); ``ipRanges`` the IP ranges (``ipRanges.startIp``).
    ``networkServices``, ``hostRoute`` and ``reservedIpRanges`` are always
    empty: this node has no network service providers, host routes or
    reserved ranges. ``zone``, ``l2Network`` and ``usedIp`` are ZStack's
    expanded queries.
    """

    VO = L3NetworkVO
    RELATIONS = {
        "zone": Relation("ZoneInventory", "zoneUuid", "uuid", many=False, expanded=True),
        "l2Network": Relation("L2NetworkInventory", "l2NetworkUuid", "uuid", many=False, expanded=True),
        "usedIp": Relation("UsedIpInventory", "uuid", "l3NetworkUuid", many=True, expanded=True),
        "dns": Relation("L3NetworkDnsInventory", "uuid", "l3NetworkUuid", many=True),
        "ipRanges": Relation("IpRangeInventory", "uuid", "l3NetworkUuid", many=True),
    }
    UNSTORED: ClassVar[tuple[str, ...]] = ("networkServices", "hostRoute", "reservedIpRanges")

    uuid: str
    name: str
    description: str | None = None
    type: str
    zoneUuid: str
    l2NetworkUuid: str
    state: str
    dnsDomain: str | None = None
    system: bool
    category: str
    ipVersion: int
    enableIPAM: bool
    isolated: bool
    createDate: datetime
    lastOpDate: datetime
    dns: list[str] = []
    ipRanges: list[IpRangeInventory] = []
    networkServices: list[dict[str, Any]] = []
    hostRoute: list[dict[str, Any]] = []
    reservedIpRanges: list[dict[str, Any]] = []

    @field_validator("dns", mode="before")
    @classmethod
    def _dns_addresses(cls, value: Any) -> Any:
        # The query engine loads the DNS rows as inventories; ZStack shows their addresses.
        return [row["dns"] if isinstance(row, dict) else row for row in value or []]


class FreeIpInventory(BaseModel):
    """ZStack's FreeIpInventory: a free address of a range (not a table: GetFreeIp computes it)."""

    ipRangeUuid: str
    ip: str
    netmask: str
    gateway: str


def l3_inventory(session: Session, vo: L3NetworkVO) -> L3NetworkInventory:
    """The inventory of ``vo`` as queries show it, with its DNS servers and ranges."""
    [data] = build_inventories(session, inventory_schema(L3NetworkInventory), [vo])
    return L3NetworkInventory.model_validate(data)


def ip_range_inventory(vo: IpRangeVO) -> IpRangeInventory:
    return IpRangeInventory.from_vo(vo)
