"""The L3 network APIs, as ZStack's ``org.zstack.header.network.l3`` defines them (IPv4 only)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, field_validator, model_validator

from mn.api.message import (
    APICreateMessage,
    APIDeleteMessage,
    APIEvent,
    APIMessage,
    APIQueryMessage,
    APIQueryReply,
    APIReply,
    Ref,
    Rest,
    UuidParam,
    query_rest,
)
from mn.network.l3.inventory import FreeIpInventory, IpRangeInventory, L3NetworkInventory, UsedIpInventory

#: ZStack's L3NetworkConstant.SERVICE_ID.
SERVICE_ID = "network.l3"
_PACKAGE = "org.zstack.header.network.l3"

Name = Annotated[str, Field(max_length=255)]
Description = Annotated[str, Field(max_length=2048)]
L3NetworkUuid = Annotated[str, Ref("L3NetworkVO")]
IpRangeUuid = Annotated[str, Ref("IpRangeVO")]
Category = Literal["Public", "Private", "System"]
#: Only Normal ranges: ZStack's AddressPool ranges are not supported.
IpRangeType = Literal["Normal"]
#: A DNS domain name: dot-separated labels of letters, digits and inner
#: hyphens, the last starting with a letter (ZStack checks it with Apache's DomainValidator).
_DOMAIN = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$")


def _domain(value: str) -> str:
    if not _DOMAIN.match(value):
        raise ValueError(f"{value} is not a valid domain name")
    return value


DnsDomain = Annotated[str, Field(max_length=253), AfterValidator(_domain)]


def _check_system_and_category(system: bool | None, category: str | None) -> None:
    # ZStack's L3NetworkCategory.validCombination.
    if system is not None and category is not None and system != (category == "System"):
        raise ValueError("not valid combination of system and category, only {true=[System], "
                         "false=[Public, Private]} are valid")


# -- L3 networks -------------------------------------------------------------------


class APICreateL3NetworkEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APICreateL3NetworkEvent"
    inventory: L3NetworkInventory | None = None


class APICreateL3NetworkMsg(APICreateMessage):
    """Create an L3 network on an L2 network (in the L2's zone); it starts Enabled.

    ``l2NetworkUuid`` is checked by the service, not as a :class:`Ref`:
    ZStack lets any account build L3 networks on the admin's L2 networks.
    """

    RESOURCE_TYPE = "L3NetworkVO"

    FULL_NAME = f"{_PACKAGE}.APICreateL3NetworkMsg"
    SERVICE = SERVICE_ID
    REST = Rest("POST", "/l3-networks")
    RESPONSE = APICreateL3NetworkEvent

    name: Name
    description: Description | None = None
    type: Literal["L3BasicNetwork"] = "L3BasicNetwork"
    l2NetworkUuid: UuidParam
    category: Category = "Private"
    ipVersion: int | None = None
    system: bool = False
    dnsDomain: DnsDomain | None = None
    enableIPAM: bool = True

    @field_validator("ipVersion")
    @classmethod
    def _ipv4_only(cls, value: int | None) -> int | None:
        if value not in (None, 4):
            raise ValueError("only ipVersion 4 is supported by this management node")
        return value

    @model_validator(mode="after")
    def _valid_combination(self) -> "APICreateL3NetworkMsg":
        _check_system_and_category(self.system, self.category)
        return self


class APIQueryL3NetworkReply(APIQueryReply):
    FULL_NAME = f"{_PACKAGE}.APIQueryL3NetworkReply"


class APIQueryL3NetworkMsg(APIQueryMessage):
    FULL_NAME = f"{_PACKAGE}.APIQueryL3NetworkMsg"
    SERVICE = SERVICE_ID
    REST = query_rest("/l3-networks")
    RESPONSE = APIQueryL3NetworkReply
    INVENTORY = L3NetworkInventory


class APIUpdateL3NetworkEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIUpdateL3NetworkEvent"
    inventory: L3NetworkInventory | None = None


class APIUpdateL3NetworkMsg(APIMessage):
    """Change name, description, DNS domain, or category and system together."""

    FULL_NAME = f"{_PACKAGE}.APIUpdateL3NetworkMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/l3-networks/{uuid}/actions", is_action=True)
    RESPONSE = APIUpdateL3NetworkEvent

    uuid: L3NetworkUuid
    name: Name | None = None
    description: Description | None = None
    dnsDomain: DnsDomain | None = None
    category: Category | None = None
    system: bool | None = None

    @model_validator(mode="after")
    def _valid_combination(self) -> "APIUpdateL3NetworkMsg":
        _check_system_and_category(self.system, self.category)
        return self


class APIChangeL3NetworkStateEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIChangeL3NetworkStateEvent"
    inventory: L3NetworkInventory | None = None


class APIChangeL3NetworkStateMsg(APIMessage):
    """Enable or disable an L3 network (new VMs cannot use a disabled one)."""

    FULL_NAME = f"{_PACKAGE}.APIChangeL3NetworkStateMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/l3-networks/{uuid}/actions", is_action=True)
    RESPONSE = APIChangeL3NetworkStateEvent

    uuid: L3NetworkUuid
    stateEvent: Literal["enable", "disable"]


class APIDeleteL3NetworkEvent(APIEvent):
    """No inventory: success is the whole answer."""

    FULL_NAME = f"{_PACKAGE}.APIDeleteL3NetworkEvent"


class APIDeleteL3NetworkMsg(APIDeleteMessage):
    """Delete an L3 network with its ranges, DNS servers and used addresses.

    ``uuid`` is not a :class:`Ref`: deleting an L3 network that does not
    exist succeeds, as ZStack's ``successIfResourceNotExisting``.
    """

    FULL_NAME = f"{_PACKAGE}.APIDeleteL3NetworkMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("DELETE", "/l3-networks/{uuid}", all_to=None)
    RESPONSE = APIDeleteL3NetworkEvent

    uuid: UuidParam


# -- IP ranges ---------------------------------------------------------------------


class APIAddIpRangeEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIAddIpRangeEvent"
    inventory: IpRangeInventory | None = None


class APIAddIpRangeMsg(APICreateMessage):
    """Add the range ``startIp``..``endIp`` of the subnet ``startIp``/``netmask``
    whose gateway is ``gateway`` (outside the range)."""

    RESOURCE_TYPE = "IpRangeVO"

    FULL_NAME = f"{_PACKAGE}.APIAddIpRangeMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "l3NetworkUuid"
    REST = Rest("POST", "/l3-networks/{l3NetworkUuid}/ip-ranges")
    RESPONSE = APIAddIpRangeEvent

    l3NetworkUuid: L3NetworkUuid
    name: Name
    description: Description | None = None
    startIp: str
    endIp: str
    netmask: str
    gateway: str | None = None
    ipRangeType: IpRangeType | None = None


class APIAddIpRangeByNetworkCidrEvent(APIEvent):
    """The first range and all of them: a gateway inside the subnet splits it in two."""

    FULL_NAME = f"{_PACKAGE}.APIAddIpRangeByNetworkCidrEvent"
    inventory: IpRangeInventory | None = None
    inventories: list[IpRangeInventory] = []


class APIAddIpRangeByNetworkCidrMsg(APICreateMessage):
    """Add the usable addresses of ``networkCidr`` but the gateway (by default
    the first of them) as one range, or two around a gateway in the middle."""

    RESOURCE_TYPE = "IpRangeVO"

    FULL_NAME = f"{_PACKAGE}.APIAddIpRangeByNetworkCidrMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "l3NetworkUuid"
    REST = Rest("POST", "/l3-networks/{l3NetworkUuid}/ip-ranges/by-cidr", all_to=None,
                fields=("inventory", "inventories"))
    RESPONSE = APIAddIpRangeByNetworkCidrEvent

    name: Name
    description: Description | None = None
    l3NetworkUuid: L3NetworkUuid
    networkCidr: str
    gateway: Annotated[str, Field(max_length=64)] | None = None
    ipRangeType: IpRangeType | None = None


class APIUpdateIpRangeEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIUpdateIpRangeEvent"
    inventory: IpRangeInventory | None = None


class APIUpdateIpRangeMsg(APIMessage):
    """Change the name or description of an IP range."""

    FULL_NAME = f"{_PACKAGE}.APIUpdateIpRangeMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("PUT", "/l3-networks/ip-ranges/{uuid}/actions", is_action=True)
    RESPONSE = APIUpdateIpRangeEvent

    uuid: IpRangeUuid
    name: Name | None = None
    description: Description | None = None


class APIDeleteIpRangeEvent(APIEvent):
    """No inventory: success is the whole answer."""

    FULL_NAME = f"{_PACKAGE}.APIDeleteIpRangeEvent"


class APIDeleteIpRangeMsg(APIDeleteMessage):
    """Delete an IP range and the addresses in use in it.

    ``uuid`` is not a :class:`Ref`: deleting a range that does not exist
    succeeds, as ZStack's ``successIfResourceNotExisting``.
    """

    FULL_NAME = f"{_PACKAGE}.APIDeleteIpRangeMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "uuid"
    REST = Rest("DELETE", "/l3-networks/ip-ranges/{uuid}", all_to=None)
    RESPONSE = APIDeleteIpRangeEvent

    uuid: UuidParam


class APIQueryIpRangeReply(APIQueryReply):
    FULL_NAME = f"{_PACKAGE}.APIQueryIpRangeReply"


class APIQueryIpRangeMsg(APIQueryMessage):
    FULL_NAME = f"{_PACKAGE}.APIQueryIpRangeMsg"
    SERVICE = SERVICE_ID
    REST = query_rest("/l3-networks/ip-ranges")
    RESPONSE = APIQueryIpRangeReply
    INVENTORY = IpRangeInventory


class APIQueryIpAddressReply(APIQueryReply):
    FULL_NAME = f"{_PACKAGE}.APIQueryIpAddressReply"


class APIQueryIpAddressMsg(APIQueryMessage):
    """The addresses in use (UsedIpInventory)."""

    FULL_NAME = f"{_PACKAGE}.APIQueryIpAddressMsg"
    SERVICE = SERVICE_ID
    REST = query_rest("/l3-networks/ip-address")
    RESPONSE = APIQueryIpAddressReply
    INVENTORY = UsedIpInventory


# -- DNS -----------------------------------------------------------------------------


class APIAddDnsToL3NetworkEvent(APIEvent):
    FULL_NAME = f"{_PACKAGE}.APIAddDnsToL3NetworkEvent"
    inventory: L3NetworkInventory | None = None


class APIAddDnsToL3NetworkMsg(APIMessage):
    """Add a DNS server (an IP address) to an L3 network."""

    FULL_NAME = f"{_PACKAGE}.APIAddDnsToL3NetworkMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "l3NetworkUuid"
    REST = Rest("POST", "/l3-networks/{l3NetworkUuid}/dns")
    RESPONSE = APIAddDnsToL3NetworkEvent

    l3NetworkUuid: L3NetworkUuid
    dns: Annotated[str, Field(max_length=255)]


class APIRemoveDnsFromL3NetworkEvent(APIEvent):
    """Without inventory when the DNS server was not on the network (as ZStack)."""

    FULL_NAME = f"{_PACKAGE}.APIRemoveDnsFromL3NetworkEvent"
    inventory: L3NetworkInventory | None = None


class APIRemoveDnsFromL3NetworkMsg(APIMessage):
    FULL_NAME = f"{_PACKAGE}.APIRemoveDnsFromL3NetworkMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "l3NetworkUuid"
    REST = Rest("DELETE", "/l3-networks/{l3NetworkUuid}/dns/{dns}")
    RESPONSE = APIRemoveDnsFromL3NetworkEvent

    l3NetworkUuid: L3NetworkUuid
    dns: Annotated[str, Field(max_length=255)]


# -- addresses -------------------------------------------------------------------------


class APIGetFreeIpReply(APIReply):
    FULL_NAME = f"{_PACKAGE}.APIGetFreeIpReply"
    inventories: list[FreeIpInventory] = []


class APIGetFreeIpMsg(APIMessage):
    """Free addresses of an L3 network or of one of its ranges, ascending from ``start``.

    ``limit`` below 0 means all of them, up to :data:`MAX_FREE_IPS`.
    """

    FULL_NAME = f"{_PACKAGE}.APIGetFreeIpMsg"
    SERVICE = SERVICE_ID
    SYNC = True
    REST = Rest("GET", "/l3-networks/{l3NetworkUuid}/ip/free",
                optional_paths=("/l3-networks/ip/free", "/l3-networks/ip-ranges/{ipRangeUuid}/ip/free"),
                all_to="inventories")
    RESPONSE = APIGetFreeIpReply

    l3NetworkUuid: L3NetworkUuid | None = None
    ipRangeUuid: IpRangeUuid | None = None
    start: str | None = None
    ipRangeType: IpRangeType | None = None
    ipVersion: Literal[4] | None = None
    limit: int = 100

    @model_validator(mode="after")
    def _one_of_network_or_range(self) -> "APIGetFreeIpMsg":
        if self.l3NetworkUuid is None and self.ipRangeUuid is None:
            raise ValueError("ipRangeUuid and l3NetworkUuid cannot both be null; you must set either one.")
        return self


#: Most addresses GetFreeIp lists when asked for all (``limit`` < 0).
MAX_FREE_IPS = 10000


class APICheckIpAvailabilityReply(APIReply):
    FULL_NAME = f"{_PACKAGE}.APICheckIpAvailabilityReply"
    available: bool = False
    reason: str | None = None


class APICheckIpAvailabilityMsg(APIMessage):
    """Whether ``ip`` could be allocated on the L3 network now, and why not."""

    FULL_NAME = f"{_PACKAGE}.APICheckIpAvailabilityMsg"
    SERVICE = SERVICE_ID
    SYNC = True
    REST = Rest("GET", "/l3-networks/{l3NetworkUuid}/ip/{ip}/availability", all_to=None,
                fields=("available", "reason"))
    RESPONSE = APICheckIpAvailabilityReply

    l3NetworkUuid: L3NetworkUuid
    ip: Annotated[str, Field(max_length=255)]
    arpCheck: bool = False
    ipRangeCheck: bool = True


class IpCapacityData(BaseModel):
    """ZStack's IpCapacityData: the capacity of one zone, L3 network or range."""

    resourceUuid: str
    totalCapacity: int = 0
    availableCapacity: int = 0
    usedIpAddressNumber: int = 0
    ipv4TotalCapacity: int = 0
    ipv4AvailableCapacity: int = 0
    ipv4UsedIpAddressNumber: int = 0
    ipv6TotalCapacity: int = 0
    ipv6AvailableCapacity: int = 0
    ipv6UsedIpAddressNumber: int = 0


_CAPACITY_FIELDS = ("totalCapacity", "availableCapacity", "usedIpAddressNumber", "ipv4TotalCapacity",
                    "ipv4AvailableCapacity", "ipv4UsedIpAddressNumber", "ipv6TotalCapacity",
                    "ipv6AvailableCapacity", "ipv6UsedIpAddressNumber")


class APIGetIpAddressCapacityReply(APIReply):
    """Totals over the named resources, and each one's in ``capacityData``."""

    FULL_NAME = f"{_PACKAGE}.APIGetIpAddressCapacityReply"
    totalCapacity: int = 0
    availableCapacity: int = 0
    usedIpAddressNumber: int = 0
    ipv4TotalCapacity: int = 0
    ipv4AvailableCapacity: int = 0
    ipv4UsedIpAddressNumber: int = 0
    ipv6TotalCapacity: int = 0
    ipv6AvailableCapacity: int = 0
    ipv6UsedIpAddressNumber: int = 0
    capacityData: list[IpCapacityData] = []
    #: IpRangeVO, L3NetworkVO or ZoneVO: what ``capacityData`` is about.
    resourceType: str | None = None


class APIGetIpAddressCapacityMsg(APIMessage):
    """Addresses in all, free and in use, of ranges, L3 networks or zones
    (the first of these lists given), or of every zone with ``all``."""

    FULL_NAME = f"{_PACKAGE}.APIGetIpAddressCapacityMsg"
    SERVICE = SERVICE_ID
    SYNC = True
    REST = Rest("GET", "/ip-capacity", all_to=None, fields=(*_CAPACITY_FIELDS, "capacityData", "resourceType"))
    RESPONSE = APIGetIpAddressCapacityReply

    zoneUuids: Annotated[list[str], Ref("ZoneVO")] | None = None
    l3NetworkUuids: Annotated[list[str], Ref("L3NetworkVO")] | None = None
    ipRangeUuids: Annotated[list[str], Ref("IpRangeVO")] | None = None
    all: bool = False

    @model_validator(mode="after")
    def _something_to_count(self) -> "APIGetIpAddressCapacityMsg":
        if not (self.zoneUuids or self.l3NetworkUuids or self.ipRangeUuids or self.all):
            raise ValueError("ipRangeUuids, L3NetworkUuids, zoneUuids must have at least one be none-empty list, "
                             "or all is set to true")
        return self
