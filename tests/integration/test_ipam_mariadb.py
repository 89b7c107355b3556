"""Networks and IP allocation on MariaDB and RabbitMQ.

Two MNs share a ring and build the networks through the bus; then four
allocators, each with its own Database (connection pool and threads, as
separate MNs have), race for the addresses of one L3 network. The unique
constraint, not luck, is what keeps every address single: the allocators
pick from a random start and retry inside a SAVEPOINT when they lose.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import func, inspect, select

from mn.cluster.messages import APICreateClusterMsg
from mn.cluster.service import ClusterService
from mn.db import Database
from mn.db.models.network import IpRangeVO, L2NetworkClusterRefVO, L3NetworkVO, UsedIpVO
from mn.errors import OperationError, SysErrors
from mn.ids import new_uuid
from mn.network import ipam
from mn.network.ipam import allocate_ip, release_ip
from mn.network.ipv4 import to_int
from mn.network.l2.messages import APIAttachL2NetworkToClusterMsg, APICreateL2VlanNetworkMsg, APIDeleteL2NetworkMsg
from mn.network.l2.service import L2NetworkService
from mn.network.l3.messages import (
    APIAddIpRangeByNetworkCidrMsg,
    APIAddIpRangeMsg,
    APICreateL3NetworkMsg,
    APIGetIpAddressCapacityMsg,
)
from mn.network.l3.service import L3NetworkService
from mn.ring import Ring
from mn.zone.messages import APICreateZoneMsg
from mn.zone.service import ZoneService
from tests.support.api_client import ApiError, ZStackClient
from tests.support.cluster import start_cluster
from tests.support.small_node import SmallNode

pytestmark = pytest.mark.integration

ALLOCATORS = 4
THREADS_PER_ALLOCATOR = 8


@pytest.fixture
async def nodes(mariadb_url, amqp_url):
    uuids = [new_uuid(), new_uuid()]
    pair = [SmallNode(mariadb_url, bus_url=amqp_url, ring=Ring(uuids), uuid=u) for u in uuids]
    try:
        for node in pair:
            await node.start(ZoneService, ClusterService, L2NetworkService, L3NetworkService)
        yield pair
    finally:
        for node in pair:
            await node.stop()


@pytest.fixture
async def allocators(mariadb_url, nodes):
    databases = [Database(mariadb_url, threads=THREADS_PER_ALLOCATOR) for _ in range(ALLOCATORS)]
    yield databases
    for db in databases:
        db.close()


async def network(nodes, cidr: str | None = None, ranges: tuple[tuple[str, str], ...] = ()):
    """Zone, VLAN L2 attached to a cluster, and an L3 network, each API sent from alternating MNs."""
    a, b = nodes
    zone = (await a.call(APICreateZoneMsg(name="zone"))).inventory
    cluster = (await b.call(APICreateClusterMsg(zoneUuid=zone.uuid, name="c", hypervisorType="Simulator"))).inventory
    l2 = (await a.call(APICreateL2VlanNetworkMsg(name="v", zoneUuid=zone.uuid, physicalInterface="eth0",
                                                 vlan=100))).inventory
    await b.call(APIAttachL2NetworkToClusterMsg(l2NetworkUuid=l2.uuid, clusterUuid=cluster.uuid))
    l3 = (await b.call(APICreateL3NetworkMsg(name="l3", l2NetworkUuid=l2.uuid))).inventory
    if cidr:
        await a.call(APIAddIpRangeByNetworkCidrMsg(l3NetworkUuid=l3.uuid, name="c", networkCidr=cidr))
    for start, end in ranges:
        await b.call(APIAddIpRangeMsg(l3NetworkUuid=l3.uuid, name="r", startIp=start, endIp=end,
                                      netmask="255.255.255.0", gateway="10.9.0.1"))
    return l2, l3


async def race(allocators: list[Database], l3_uuid: str, count: int) -> tuple[list[str], list[OperationError]]:
    """``count`` allocations spread over the allocators at once: addresses got and failures."""

    async def one(db: Database) -> str | OperationError:
        try:
            return await db.run(lambda s: allocate_ip(s, l3_uuid, vm_nic_uuid=new_uuid()).ip)
        except OperationError as exc:
            return exc

    results = await asyncio.gather(*(one(allocators[i % len(allocators)]) for i in range(count)))
    return [r for r in results if isinstance(r, str)], [r for r in results if isinstance(r, OperationError)]


def duplicates(db: Database, l3_uuid: str) -> list:
    with db.session() as s:
        return s.execute(select(UsedIpVO.ip, func.count()).where(UsedIpVO.l3NetworkUuid == l3_uuid)
                         .group_by(UsedIpVO.ip).having(func.count() > 1)).all()


async def test_500_concurrent_allocations_on_a_slash_24_never_duplicate(nodes, allocators):
    _, l3 = await network(nodes, cidr="10.20.30.0/24")  # 253 addresses: .2 to .254
    started = time.perf_counter()
    got, failed = await race(allocators, l3.uuid, 500)
    elapsed = time.perf_counter() - started
    print(f"\n500 allocations from {ALLOCATORS} allocators x {THREADS_PER_ALLOCATOR} threads on a /24: "
          f"{len(got)} addresses, {len(failed)} failures in {elapsed:.2f}s ({500 / elapsed:.0f}/s)")
    assert len(got) == len(set(got)) == 253
    assert {to_int(ip) - to_int("10.20.30.0") for ip in got} == set(range(2, 255))
    assert len(failed) == 247
    for exc in failed:
        assert exc.error.code == SysErrors.OPERATION_ERROR.value
        assert f"L3 network[uuid:{l3.uuid}] has no free IP address" in exc.error.details, exc.error
    assert duplicates(allocators[0], l3.uuid) == []
    capacity = await nodes[1].call(APIGetIpAddressCapacityMsg(l3NetworkUuids=[l3.uuid]))
    assert (capacity.totalCapacity, capacity.usedIpAddressNumber, capacity.availableCapacity) == (253, 253, 0)


async def test_a_ten_address_network_is_exhausted_exactly(nodes, allocators):
    _, l3 = await network(nodes, ranges=(("10.9.0.11", "10.9.0.15"), ("10.9.0.101", "10.9.0.105")))
    got, failed = await race(allocators, l3.uuid, 20)
    assert sorted(got, key=to_int) == [f"10.9.0.{i}" for i in (11, 12, 13, 14, 15, 101, 102, 103, 104, 105)]
    assert len(failed) == 10 and all("has no free IP address" in f.error.details for f in failed)
    # Released addresses are allocatable again, while others race for them.
    with allocators[0].session() as s:
        released = s.scalars(select(UsedIpVO.uuid).where(UsedIpVO.l3NetworkUuid == l3.uuid).limit(3)).all()
    await asyncio.gather(*(allocators[1].run(release_ip, uuid) for uuid in released))
    again, failed = await race(allocators, l3.uuid, 8)
    assert len(again) == 3 and len(failed) == 5 and duplicates(allocators[0], l3.uuid) == []


async def test_a_lost_race_undoes_only_its_own_insert(nodes, allocators, monkeypatch):
    _, l3 = await network(nodes, ranges=(("10.9.0.11", "10.9.0.20"),))
    taken = await allocators[0].run(lambda s: allocate_ip(s, l3.uuid, ip="10.9.0.11"))
    real_find_free = ipam._find_free
    lost = []

    def find_free_losing_once(session, ranges):
        if not lost:
            lost.append(taken.ip)
            return ranges[0][0], to_int(taken.ip)
        return real_find_free(session, ranges)

    monkeypatch.setattr(ipam, "_find_free", find_free_losing_once)

    def caller_work_then_allocation(session):
        first = allocate_ip(session, l3.uuid, ip="10.9.0.20")
        second = allocate_ip(session, l3.uuid)  # its first insert hits the unique key
        return first.ip, second.ip

    first, second = await allocators[1].run(caller_work_then_allocation)
    assert lost == ["10.9.0.11"] and first == "10.9.0.20" and second not in ("10.9.0.11", "10.9.0.20")
    with allocators[2].session() as s:
        assert sorted(s.scalars(select(UsedIpVO.ip).where(UsedIpVO.l3NetworkUuid == l3.uuid)), key=to_int) == sorted(
            ["10.9.0.11", "10.9.0.20", second], key=to_int)


async def test_an_allocation_rolls_back_with_its_transaction(nodes, allocators):
    _, l3 = await network(nodes, ranges=(("10.9.0.11", "10.9.0.20"),))

    def allocate_then_fail(session):
        allocate_ip(session, l3.uuid)
        raise RuntimeError("a later step fails")

    with pytest.raises(RuntimeError):
        await allocators[0].run(allocate_then_fail)
    with allocators[0].session() as s:
        assert s.scalar(select(func.count()).select_from(UsedIpVO).where(UsedIpVO.l3NetworkUuid == l3.uuid)) == 0


async def test_schema_and_a_cascade_across_two_mns(nodes, allocators):
    a, b = nodes
    inspector = inspect(a.db.engine)
    assert {u["name"]: u["column_names"] for u in inspector.get_unique_constraints("UsedIpVO")} == {
        "uq_UsedIpVO_l3NetworkUuid_ip": ["l3NetworkUuid", "ip"]}
    assert {ix["name"] for ix in inspector.get_indexes("UsedIpVO")} >= {"ix_UsedIpVO_ipRangeUuid_ipInLong"}
    l2, l3 = await network(nodes, cidr="10.40.0.0/28")
    await race(allocators, l3.uuid, 5)
    await b.call(APIDeleteL2NetworkMsg(uuid=l2.uuid))
    with a.db.session() as s:
        for model, column in ((L3NetworkVO, L3NetworkVO.uuid), (IpRangeVO, IpRangeVO.l3NetworkUuid),
                              (UsedIpVO, UsedIpVO.l3NetworkUuid)):
            assert s.scalar(select(func.count()).select_from(model).where(column == l3.uuid)) == 0, model
        assert s.scalar(select(func.count()).select_from(L2NetworkClusterRefVO)
                        .where(L2NetworkClusterRefVO.l2NetworkUuid == l2.uuid)) == 0


# -- through the REST API, as a ZStack client --------------------------------------------------


@pytest.fixture(scope="module")
def rest(tmp_path_factory, mariadb_url, amqp_url):
    [mn] = start_cluster(tmp_path_factory.mktemp("net"), 1, db_url=mariadb_url, bus_url=amqp_url)
    client = ZStackClient(mn.url)
    client.login()
    yield client
    client.close()
    mn.stop()


def test_networks_through_the_rest_api(rest):
    zone = rest.create("/zones", {"name": "rest-zone"})
    cluster = rest.create("/clusters", {"zoneUuid": zone["uuid"], "name": "c", "hypervisorType": "Simulator"})
    l2 = rest.create("/l2-networks/vlan", {"name": "v", "zoneUuid": zone["uuid"], "physicalInterface": "eth0",
                                           "vlan": 42})
    assert (l2["type"], l2["vlan"], l2["attachedClusterUuids"]) == ("L2VlanNetwork", 42, [])
    attached = rest.call("POST", f"/l2-networks/{l2['uuid']}/clusters/{cluster['uuid']}")["inventory"]
    assert attached["attachedClusterUuids"] == [cluster["uuid"]]
    l3 = rest.create("/l3-networks", {"name": "l3", "l2NetworkUuid": l2["uuid"]})
    body = rest.call("POST", f"/l3-networks/{l3['uuid']}/ip-ranges/by-cidr",
                     json={"params": {"name": "c", "networkCidr": "10.77.0.0/24", "gateway": "10.77.0.100"}})
    assert set(body) == {"inventory", "inventories"} and len(body["inventories"]) == 2
    rest.call("POST", f"/l3-networks/{l3['uuid']}/dns", json={"params": {"dns": "8.8.8.8"}})

    [network] = rest.query("/l3-networks", "ipRanges.startIp=10.77.0.1", "l2Network.name=v")["inventories"]
    assert network["uuid"] == l3["uuid"] and network["dns"] == ["8.8.8.8"] and len(network["ipRanges"]) == 2
    assert [v["uuid"] for v in rest.query(f"/l2-networks/vlan/{l2['uuid']}")["inventories"]] == [l2["uuid"]]
    free = rest.call("GET", f"/l3-networks/{l3['uuid']}/ip/free", params={"limit": 2})["inventories"]
    assert [f["ip"] for f in free] == ["10.77.0.1", "10.77.0.2"]
    range_uuid = body["inventories"][1]["uuid"]
    free = rest.call("GET", f"/l3-networks/ip-ranges/{range_uuid}/ip/free", params={"limit": 1})["inventories"]
    assert free == [{"ipRangeUuid": range_uuid, "ip": "10.77.0.101", "netmask": "255.255.255.0",
                     "gateway": "10.77.0.100"}]
    availability = rest.call("GET", f"/l3-networks/{l3['uuid']}/ip/10.77.0.100/availability")
    assert availability == {"available": False, "reason": "it is gateway"}
    capacity = rest.call("GET", "/ip-capacity", params={"l3NetworkUuids": [l3["uuid"]]})
    assert (capacity["totalCapacity"], capacity["resourceType"]) == (253, "L3NetworkVO")

    # Wrong input: clear 4xx, nothing changed.
    for method, path, params, status, code in (
            ("POST", f"/l3-networks/{l3['uuid']}/ip-ranges",
             {"name": "r", "startIp": "10.77.0.50", "endIp": "10.77.0.60", "netmask": "255.255.255.0",
              "gateway": "10.77.0.100"}, 400, "SYS.1007"),
            ("POST", "/l2-networks/vlan", {"name": "v", "zoneUuid": zone["uuid"], "physicalInterface": "eth0",
                                           "vlan": 4095}, 400, "SYS.1007"),
            ("POST", f"/l3-networks/{new_uuid()}/dns", {"dns": "1.1.1.1"}, 404, "SYS.1003"),
            ("POST", f"/l3-networks/{l3['uuid']}/dns", {"dns": "8.8.8.8"}, 409, "SYS.1006")):
        with pytest.raises(ApiError) as info:
            rest.call(method, path, json={"params": params})
        assert (info.value.status, info.value.code) == (status, code), info.value
    with pytest.raises(ApiError) as info:
        rest.call("POST", f"/l2-networks/{l2['uuid']}/clusters/{cluster['uuid']}")
    assert (info.value.status, info.value.code) == (409, "SYS.1006")
    assert len(rest.query("/l3-networks/ip-ranges", f"l3NetworkUuid={l3['uuid']}")["inventories"]) == 2

    rest.call("DELETE", f"/l2-networks/{l2['uuid']}")
    assert rest.query("/l3-networks", f"uuid={l3['uuid']}", count=True)["total"] == 0
