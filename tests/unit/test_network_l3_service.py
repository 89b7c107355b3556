"""The L3 network service over SQLite and the memory bus: L3 networks, IP
ranges (range and CIDR forms) and their rules, DNS, the address APIs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from mn.api.message import QueryCondition
from mn.api.query import QueryEngine
from mn.db.models.network import IpRangeVO, L3NetworkDnsVO, L3NetworkVO, UsedIpVO
from mn.db.models.tag import UserTagVO
from mn.errors import OperationError, SysErrors
from mn.ids import new_uuid
from mn.network.ipam import allocate_ip
from mn.network.l2.messages import APICreateL2NoVlanNetworkMsg
from mn.network.l2.service import L2NetworkService
from mn.network.l3.messages import (
    APIAddDnsToL3NetworkMsg,
    APIAddIpRangeByNetworkCidrMsg,
    APIAddIpRangeMsg,
    APIChangeL3NetworkStateMsg,
    APICheckIpAvailabilityMsg,
    APICreateL3NetworkMsg,
    APIDeleteIpRangeMsg,
    APIDeleteL3NetworkMsg,
    APIGetFreeIpMsg,
    APIGetIpAddressCapacityMsg,
    APIQueryIpAddressMsg,
    APIQueryIpRangeMsg,
    APIQueryL3NetworkMsg,
    APIRemoveDnsFromL3NetworkMsg,
    APIUpdateIpRangeMsg,
    APIUpdateL3NetworkMsg,
)
from mn.network.l3.service import L3NetworkService
from mn.service import load_service_classes
from mn.zone.messages import APICreateZoneMsg
from mn.zone.service import ZoneService
from tests.support.small_node import SmallNode

# Inventories name each other across services (zone -> host ...): load every
# service's modules, as an MN does, so queries can resolve them.
load_service_classes()


@pytest.fixture
async def node(sqlite_url):
    node = SmallNode(sqlite_url)
    await node.start(ZoneService, L2NetworkService, L3NetworkService)
    yield node
    await node.stop()


@pytest.fixture
async def zone(node):
    return (await node.call(APICreateZoneMsg(name="zone"))).inventory


@pytest.fixture
async def l2(node, zone):
    return (await node.call(APICreateL2NoVlanNetworkMsg(name="l2", zoneUuid=zone.uuid,
                                                        physicalInterface="eth0"))).inventory


@pytest.fixture
async def l3(node, l2):
    return (await node.call(APICreateL3NetworkMsg(name="l3", l2NetworkUuid=l2.uuid))).inventory


def rows(node, model, *where) -> int:
    with node.db.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


async def refused(call, code: SysErrors) -> str:
    with pytest.raises(OperationError) as excinfo:
        await call
    assert excinfo.value.error.code == code.value, excinfo.value.error
    return excinfo.value.error.details


def add_range(l3_uuid: str, start: str, end: str, gateway: str | None = "192.168.0.1",
              netmask: str = "255.255.255.0", **kw) -> APIAddIpRangeMsg:
    return APIAddIpRangeMsg(l3NetworkUuid=l3_uuid, name="range", startIp=start, endIp=end, netmask=netmask,
                            gateway=gateway, **kw)


# -- L3 networks ---------------------------------------------------------------------------


async def test_create_takes_zone_and_isolation_from_the_l2_network(node, zone, l2):
    l3 = (await node.intercept_and_call(APICreateL3NetworkMsg(
        name="public", l2NetworkUuid=l2.uuid, category="Public", dnsDomain="corp.example.com",
        userTags=["net"]))).inventory
    assert (l3.zoneUuid, l3.l2NetworkUuid, l3.state, l3.type, l3.category, l3.system, l3.ipVersion,
            l3.enableIPAM, l3.isolated, l3.dnsDomain) == (
        zone.uuid, l2.uuid, "Enabled", "L3BasicNetwork", "Public", False, 4, True, False, "corp.example.com")
    assert (l3.dns, l3.ipRanges, l3.networkServices, l3.hostRoute, l3.reservedIpRanges) == ([], [], [], [], [])
    assert rows(node, UserTagVO, UserTagVO.resourceUuid == l3.uuid, UserTagVO.resourceType == "L3NetworkVO") == 1


async def test_create_on_a_missing_l2_network_is_not_found(node):
    msg = APICreateL3NetworkMsg(name="x", l2NetworkUuid=new_uuid())
    assert "L2 network" in await refused(node.intercept_and_call(msg), SysErrors.RESOURCE_NOT_FOUND)
    assert "L2 network" in await refused(node.call(msg), SysErrors.RESOURCE_NOT_FOUND)
    assert rows(node, L3NetworkVO) == 0


@pytest.mark.parametrize("fields", [
    {"system": True}, {"category": "System"}, {"category": "private"}, {"ipVersion": 6},
    {"type": "L3VpcNetwork"}, {"dnsDomain": "bad domain"}, {"dnsDomain": "-x.com"}, {"l2NetworkUuid": "nope"},
])
def test_bad_create_parameters_fail_at_construction(fields):
    with pytest.raises(ValidationError):
        APICreateL3NetworkMsg(**{"name": "x", "l2NetworkUuid": new_uuid(), **fields})


async def test_update_and_the_system_category_rule(node, l3):
    updated = (await node.call(APIUpdateL3NetworkMsg(uuid=l3.uuid, name="renamed", dnsDomain="a.b"))).inventory
    assert (updated.name, updated.dnsDomain, updated.category) == ("renamed", "a.b", "Private")
    system = (await node.call(APIUpdateL3NetworkMsg(uuid=l3.uuid, category="System", system=True))).inventory
    assert (system.system, system.category) == (True, "System")
    details = await refused(node.call(APIUpdateL3NetworkMsg(uuid=l3.uuid, system=False)),
                            SysErrors.INVALID_ARGUMENT_ERROR)
    assert "system and category both" in details
    details = await refused(node.call(APIUpdateL3NetworkMsg(uuid=l3.uuid, category="Public")),
                            SysErrors.INVALID_ARGUMENT_ERROR)
    assert "not valid combination" in details
    with node.db.session() as s:
        assert (s.get(L3NetworkVO, l3.uuid).system, s.get(L3NetworkVO, l3.uuid).category) == (True, "System")


async def test_enable_and_disable(node, l3):
    disabled = (await node.call(APIChangeL3NetworkStateMsg(uuid=l3.uuid, stateEvent="disable"))).inventory
    assert disabled.state == "Disabled"
    assert (await node.call(APIChangeL3NetworkStateMsg(uuid=l3.uuid, stateEvent="disable"))).inventory.state == (
        "Disabled")
    assert (await node.call(APIChangeL3NetworkStateMsg(uuid=l3.uuid, stateEvent="enable"))).inventory.state == (
        "Enabled")


async def test_delete_takes_ranges_dns_and_used_addresses(node, l3):
    await node.call(APIAddIpRangeByNetworkCidrMsg(l3NetworkUuid=l3.uuid, name="c", networkCidr="10.1.0.0/24"))
    await node.call(APIAddDnsToL3NetworkMsg(l3NetworkUuid=l3.uuid, dns="1.1.1.1"))
    await node.db.run(lambda s: allocate_ip(s, l3.uuid))
    await node.call(APIDeleteL3NetworkMsg(uuid=l3.uuid))
    for model in (L3NetworkVO, IpRangeVO, L3NetworkDnsVO, UsedIpVO):
        assert rows(node, model) == 0, model
    await node.call(APIDeleteL3NetworkMsg(uuid=l3.uuid))  # gone already: succeeds


# -- IP ranges --------------------------------------------------------------------------------


async def test_add_a_range(node, l3):
    r = (await node.intercept_and_call(add_range(l3.uuid, "192.168.0.10", "192.168.0.100", userTags=["r"]))).inventory
    assert (r.l3NetworkUuid, r.startIp, r.endIp, r.netmask, r.gateway, r.networkCidr, r.prefixLen, r.ipVersion,
            r.ipRangeType) == (l3.uuid, "192.168.0.10", "192.168.0.100", "255.255.255.0", "192.168.0.1",
                               "192.168.0.0/24", 24, 4, "Normal")
    second = (await node.call(add_range(l3.uuid, "192.168.0.200", "192.168.0.210"))).inventory
    network = (await node.call(APIUpdateL3NetworkMsg(uuid=l3.uuid))).inventory
    assert {i.uuid for i in network.ipRanges} == {r.uuid, second.uuid}
    assert rows(node, UserTagVO, UserTagVO.resourceUuid == r.uuid, UserTagVO.resourceType == "IpRangeVO") == 1


BAD_RANGES = [
    (("192.168.0.50", "192.168.0.60"), "overlap with ip range"),
    (("192.168.0.5", "192.168.0.10"), "overlap with ip range"),
    (("192.168.1.10", "192.168.1.20", "192.168.1.1"), "multiple CIDR on the same L3 network is not allowed"),
    (("192.168.0.150", "192.168.0.160", "192.168.0.254"), "is different from old gateway 192.168.0.1"),
    (("192.168.0.150", "192.168.0.160", "192.168.0.155"), "can not be part of range"),
    (("192.168.0.160", "192.168.0.150"), "is behind end ip"),
    (("192.168.0.150", "192.168.0.160", None), "must specify gateway"),
]


async def test_bad_ranges_are_refused_and_leave_nothing(node, l3):
    await node.call(add_range(l3.uuid, "192.168.0.10", "192.168.0.100"))
    for args, message in BAD_RANGES:
        msg = add_range(l3.uuid, *args)
        assert message in await refused(node.intercept_and_call(msg), SysErrors.INVALID_ARGUMENT_ERROR)
        assert message in await refused(node.call(msg), SysErrors.INVALID_ARGUMENT_ERROR)
    assert rows(node, IpRangeVO) == 1


async def test_ranges_of_l3_networks_on_one_l2_network_never_overlap(node, l2, l3):
    other = (await node.call(APICreateL3NetworkMsg(name="other", l2NetworkUuid=l2.uuid))).inventory
    await node.call(add_range(l3.uuid, "192.168.0.10", "192.168.0.100"))
    msg = APIAddIpRangeByNetworkCidrMsg(l3NetworkUuid=other.uuid, name="c", networkCidr="192.168.0.0/24")
    assert "overlap" in await refused(node.intercept_and_call(msg), SysErrors.INVALID_ARGUMENT_ERROR)
    # The same addresses on another L2 network (another broadcast domain) are fine.
    zone_uuid = l2.zoneUuid
    l2b = (await node.call(APICreateL2NoVlanNetworkMsg(name="b", zoneUuid=zone_uuid, physicalInterface="eth1"))).inventory
    l3b = (await node.call(APICreateL3NetworkMsg(name="b", l2NetworkUuid=l2b.uuid))).inventory
    await node.intercept_and_call(add_range(l3b.uuid, "192.168.0.10", "192.168.0.100"))


async def test_add_by_cidr_and_split_around_a_middle_gateway(node, l3):
    uuid = new_uuid()
    event = await node.intercept_and_call(APIAddIpRangeByNetworkCidrMsg(
        l3NetworkUuid=l3.uuid, name="c", networkCidr="172.16.0.0/24", gateway="172.16.0.100", resourceUuid=uuid))
    low, high = event.inventories
    assert event.inventory == low and low.uuid == uuid and high.uuid != uuid
    assert [(i.startIp, i.endIp, i.gateway, i.networkCidr) for i in (low, high)] == [
        ("172.16.0.1", "172.16.0.99", "172.16.0.100", "172.16.0.0/24"),
        ("172.16.0.101", "172.16.0.254", "172.16.0.100", "172.16.0.0/24")]
    again = APIAddIpRangeByNetworkCidrMsg(l3NetworkUuid=l3.uuid, name="c", networkCidr="172.16.0.0/24")
    assert "overlap" in await refused(node.intercept_and_call(again), SysErrors.INVALID_ARGUMENT_ERROR)


async def test_bad_cidrs_are_refused(node, l3):
    for cidr, message in (("10.0.0.0/31", "usable ip range"), ("10.0.0.0/8x", "not a valid network cidr"),
                          ("fd00::/64", "not a valid network cidr")):
        msg = APIAddIpRangeByNetworkCidrMsg(l3NetworkUuid=l3.uuid, name="c", networkCidr=cidr)
        assert message in await refused(node.intercept_and_call(msg), SysErrors.INVALID_ARGUMENT_ERROR)
    assert rows(node, IpRangeVO) == 0


async def test_update_and_delete_a_range_with_its_used_addresses(node, l3):
    keep = (await node.call(add_range(l3.uuid, "192.168.0.10", "192.168.0.10"))).inventory
    drop = (await node.call(add_range(l3.uuid, "192.168.0.20", "192.168.0.20"))).inventory
    renamed = (await node.call(APIUpdateIpRangeMsg(uuid=drop.uuid, name="renamed"))).inventory
    assert (renamed.name, renamed.startIp) == ("renamed", "192.168.0.20")
    for _ in range(2):
        await node.db.run(lambda s: allocate_ip(s, l3.uuid))
    await node.call(APIDeleteIpRangeMsg(uuid=drop.uuid))
    with node.db.session() as s:
        assert s.scalars(select(UsedIpVO.ip)).all() == ["192.168.0.10"]
        assert s.scalars(select(IpRangeVO.uuid)).all() == [keep.uuid]
    await node.call(APIDeleteIpRangeMsg(uuid=drop.uuid))  # gone already: succeeds


# -- DNS ----------------------------------------------------------------------------------------


async def test_dns_add_in_order_refuse_duplicates_and_remove(node, l3):
    for dns in ("8.8.8.8", "2001:4860:4860::8888", "1.1.1.1"):
        inventory = (await node.intercept_and_call(APIAddDnsToL3NetworkMsg(l3NetworkUuid=l3.uuid, dns=dns))).inventory
    assert inventory.dns == ["8.8.8.8", "2001:4860:4860::8888", "1.1.1.1"]
    duplicate = APIAddDnsToL3NetworkMsg(l3NetworkUuid=l3.uuid, dns="8.8.8.8")
    assert "there has been a DNS[8.8.8.8]" in await refused(node.intercept_and_call(duplicate),
                                                             SysErrors.OPERATION_ERROR)
    assert "there has been a DNS[8.8.8.8]" in await refused(node.call(duplicate), SysErrors.OPERATION_ERROR)
    bad = APIAddDnsToL3NetworkMsg(l3NetworkUuid=l3.uuid, dns="dns.example.com")
    assert "is not a IP address" in await refused(node.intercept_and_call(bad), SysErrors.INVALID_ARGUMENT_ERROR)
    removed = await node.call(APIRemoveDnsFromL3NetworkMsg(l3NetworkUuid=l3.uuid, dns="8.8.8.8"))
    assert removed.inventory.dns == ["2001:4860:4860::8888", "1.1.1.1"]
    absent = await node.call(APIRemoveDnsFromL3NetworkMsg(l3NetworkUuid=l3.uuid, dns="9.9.9.9"))
    assert absent.success and absent.inventory is None
    assert rows(node, L3NetworkDnsVO) == 2


# -- addresses ------------------------------------------------------------------------------------


async def test_free_ips_of_a_network_or_a_range(node, l3):
    first = (await node.call(add_range(l3.uuid, "192.168.0.10", "192.168.0.12"))).inventory
    second = (await node.call(add_range(l3.uuid, "192.168.0.20", "192.168.0.21"))).inventory
    await node.db.run(lambda s: allocate_ip(s, l3.uuid, ip="192.168.0.11"))

    async def free(**kw):
        return [(i.ip, i.ipRangeUuid) for i in (await node.intercept_and_call(APIGetFreeIpMsg(**kw))).inventories]

    assert await free(l3NetworkUuid=l3.uuid) == [("192.168.0.10", first.uuid), ("192.168.0.12", first.uuid),
                                                 ("192.168.0.20", second.uuid), ("192.168.0.21", second.uuid)]
    assert await free(l3NetworkUuid=l3.uuid, limit=2) == [("192.168.0.10", first.uuid), ("192.168.0.12", first.uuid)]
    assert await free(l3NetworkUuid=l3.uuid, start="192.168.0.12", limit=-1) == [
        ("192.168.0.12", first.uuid), ("192.168.0.20", second.uuid), ("192.168.0.21", second.uuid)]
    assert await free(ipRangeUuid=second.uuid) == [("192.168.0.20", second.uuid), ("192.168.0.21", second.uuid)]
    inventory = (await node.call(APIGetFreeIpMsg(l3NetworkUuid=l3.uuid, limit=1))).inventories[0]
    assert (inventory.netmask, inventory.gateway) == ("255.255.255.0", "192.168.0.1")
    bad_start = APIGetFreeIpMsg(l3NetworkUuid=l3.uuid, start="x")
    assert "could not get free ip with start[ip:x]" in await refused(node.intercept_and_call(bad_start),
                                                                     SysErrors.INVALID_ARGUMENT_ERROR)
    with pytest.raises(ValidationError):
        APIGetFreeIpMsg()


async def test_check_ip_availability_gives_zstacks_reasons(node, l3):
    await node.call(add_range(l3.uuid, "192.168.0.10", "192.168.0.20"))
    await node.db.run(lambda s: allocate_ip(s, l3.uuid, ip="192.168.0.15"))

    async def check(ip, **kw):
        reply = await node.intercept_and_call(APICheckIpAvailabilityMsg(l3NetworkUuid=l3.uuid, ip=ip, **kw))
        return reply.available, reply.reason

    assert await check("192.168.0.16") == (True, "")
    assert await check("192.168.0.15") == (False, "it is used")
    assert await check("192.168.0.1") == (False, "it is gateway")
    assert await check("192.168.0.30") == (False, "it is not in this range")
    assert await check("192.168.0.30", ipRangeCheck=False) == (True, "")
    assert "not a IPv4 address" in await refused(check("nonsense"), SysErrors.INVALID_ARGUMENT_ERROR)


async def test_capacity_of_ranges_networks_and_zones(node, zone, l3):
    first = (await node.call(add_range(l3.uuid, "192.168.0.10", "192.168.0.19"))).inventory
    await node.call(add_range(l3.uuid, "192.168.0.30", "192.168.0.34"))
    # The chosen address first: random allocation may otherwise have taken it.
    await node.db.run(lambda s: allocate_ip(s, l3.uuid, ip="192.168.0.11"))
    for _ in range(3):
        await node.db.run(lambda s: allocate_ip(s, l3.uuid))

    def totals(reply):
        return reply.totalCapacity, reply.usedIpAddressNumber, reply.availableCapacity, reply.ipv4TotalCapacity

    by_l3 = await node.call(APIGetIpAddressCapacityMsg(l3NetworkUuids=[l3.uuid]))
    assert totals(by_l3) == (15, 4, 11, 15) and by_l3.resourceType == "L3NetworkVO"
    assert [(d.resourceUuid, d.totalCapacity, d.usedIpAddressNumber) for d in by_l3.capacityData] == [
        (l3.uuid, 15, 4)]
    by_range = await node.call(APIGetIpAddressCapacityMsg(ipRangeUuids=[first.uuid]))
    assert by_range.totalCapacity == 10 and by_range.resourceType == "IpRangeVO"
    assert by_range.usedIpAddressNumber == rows(node, UsedIpVO, UsedIpVO.ipRangeUuid == first.uuid)
    by_zone = await node.call(APIGetIpAddressCapacityMsg(zoneUuids=[zone.uuid]))
    assert totals(by_zone) == (15, 4, 11, 15) and by_zone.resourceType == "ZoneVO"
    assert totals(await node.call(APIGetIpAddressCapacityMsg(all=True))) == (15, 4, 11, 15)
    with pytest.raises(ValidationError):
        APIGetIpAddressCapacityMsg()


async def test_queries_of_networks_ranges_and_addresses(node, l3):
    engine = QueryEngine(node)
    await node.call(add_range(l3.uuid, "192.168.0.10", "192.168.0.20"))
    await node.call(APIAddDnsToL3NetworkMsg(l3NetworkUuid=l3.uuid, dns="8.8.4.4"))
    used = await node.db.run(lambda s: allocate_ip(s, l3.uuid, ip="192.168.0.12"))

    async def query(api, name, op, value, fields=None):
        msg = api(conditions=[QueryCondition(name=name, op=op, value=value)], fields=fields)
        return (await engine.query(msg, None)).inventories

    [network] = await query(APIQueryL3NetworkMsg, "ipRanges.startIp", "=", "192.168.0.10")
    assert network["dns"] == ["8.8.4.4"] and network["ipRanges"][0]["ipRangeType"] == "Normal"
    assert network["networkServices"] == []
    assert len(await query(APIQueryL3NetworkMsg, "dns.dns", "=", "8.8.4.4")) == 1
    assert len(await query(APIQueryL3NetworkMsg, "usedIp.ip", "=", "192.168.0.12")) == 1
    assert len(await query(APIQueryL3NetworkMsg, "l2Network.physicalInterface", "=", "eth0")) == 1
    assert len(await query(APIQueryL3NetworkMsg, "zone.name", "=", "zone")) == 1
    [ip_range] = await query(APIQueryIpRangeMsg, "l3Network.name", "=", "l3")
    assert ip_range["gateway"] == "192.168.0.1"
    [address] = await query(APIQueryIpAddressMsg, "ip", "=", "192.168.0.12")
    assert (address["uuid"], address["ipInLong"]) == (used.uuid, used.ipInLong)
    [projected] = await query(APIQueryL3NetworkMsg, "uuid", "=", l3.uuid, fields=["uuid", "dns"])
    assert projected == {"uuid": l3.uuid, "dns": ["8.8.4.4"]}
