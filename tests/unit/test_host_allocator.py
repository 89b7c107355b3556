"""The host allocator: which hosts are candidates, strategies, reservation, and
the reasons given when no host fits.

The network, storage and VM tables belong to other services; these tests
stand in for them with minimal tables of the same names and columns, in a
database attached as schema ``others`` (so the real tables, when their
services are installed, are left alone) that the allocator is pointed at.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, event, insert

from mn.cluster.messages import APIChangeClusterStateMsg, APICreateClusterMsg
from mn.cluster.service import ClusterService
from mn.db.models.host import HostCapacityVO
from mn.errors import OperationError, SysErrors
from mn.globalconfig import REGISTRY
from mn.host import allocator
from mn.host.allocator import HostAllocationSpec, allocate_host
from mn.host.capacity import release_host_capacity
from mn.host.messages import APIAddSimulatorHostMsg, APIChangeHostStateMsg, ChangeHostConnectionStateMsg
from mn.host.service import HostService
from mn.zone.messages import APIChangeZoneStateMsg, APICreateZoneMsg
from mn.zone.service import ZoneService
from tests.support.small_node import SmallNode

GIB = 1 << 30

OTHERS = MetaData(schema="others")
L3 = Table("L3NetworkVO", OTHERS, Column("uuid", String(32), primary_key=True),
           Column("l2NetworkUuid", String(32)))
L2_REFS = Table("L2NetworkClusterRefVO", OTHERS, Column("id", Integer, primary_key=True),
                Column("clusterUuid", String(32)), Column("l2NetworkUuid", String(32)))
PS_REFS = Table("PrimaryStorageClusterRefVO", OTHERS, Column("id", Integer, primary_key=True),
                Column("clusterUuid", String(32)), Column("primaryStorageUuid", String(32)))
VMS = Table("VmInstanceVO", OTHERS, Column("uuid", String(32), primary_key=True),
            Column("hostUuid", String(32)), Column("state", String(64)), Column("memorySize", BigInteger))


@pytest.fixture
async def node(sqlite_url, tmp_path, monkeypatch):
    node = SmallNode(sqlite_url, registry=REGISTRY)
    await node.start(ZoneService, ClusterService, HostService)
    others = tmp_path / "others.db"

    def attach(dbapi_connection, _record):
        dbapi_connection.execute(f"ATTACH DATABASE '{others}' AS others")

    event.listen(node.db.engine, "connect", attach)
    node.db.engine.dispose()  # connections opened from now on attach it
    OTHERS.create_all(node.db.engine)
    monkeypatch.setattr(allocator, "find_table", lambda name: OTHERS.tables.get(f"others.{name}"))
    monkeypatch.setattr(allocator, "primary_storage_candidates", lambda: None)
    yield node
    await node.stop()


class Cloud:
    """Two zones; zone a has clusters a1 and a2 (Simulator), zone b has b1."""

    def __init__(self, node):
        self.node = node
        self.zones, self.clusters, self.hosts = {}, {}, {}

    async def build(self) -> "Cloud":
        for zone in ("a", "b"):
            self.zones[zone] = (await self.node.call(APICreateZoneMsg(name=zone))).inventory
        for name, zone in (("a1", "a"), ("a2", "a"), ("b1", "b")):
            self.clusters[name] = (await self.node.call(APICreateClusterMsg(
                zoneUuid=self.zones[zone].uuid, name=name, hypervisorType="Simulator"))).inventory
        return self

    async def host(self, name, cluster, cpu=4, memory=8 * GIB) -> str:
        msg = APIAddSimulatorHostMsg(clusterUuid=self.clusters[cluster].uuid, name=name, cpuCapacity=cpu,
                                     memoryCapacity=memory, managementIp=f"{name}.example.com")
        self.hosts[name] = (await self.node.call(msg)).inventory.uuid
        return self.hosts[name]

    def name_of(self, host_uuid) -> str:
        return {u: n for n, u in self.hosts.items()}[host_uuid]

    def rows(self, table, *rows) -> None:
        with self.node.db.session() as s:
            s.execute(insert(table), [dict(r) for r in rows])

    async def allocate(self, **spec) -> str:
        spec.setdefault("cpu_num", 1)
        spec.setdefault("memory_size", 64 << 20)
        return self.name_of(await allocate_host(self.node, HostAllocationSpec(**spec)))


@pytest.fixture
async def cloud(node):
    return await Cloud(node).build()


async def failure(call) -> OperationError:
    with pytest.raises(OperationError) as excinfo:
        await call
    return excinfo.value


def available(node, host_uuid) -> tuple[int, int]:
    with node.db.session() as s:
        cap = s.get(HostCapacityVO, host_uuid)
        return cap.availableCpu, cap.availableMemory


async def test_allocating_reserves_the_chosen_hosts_capacity(node, cloud):
    host = await cloud.host("h1", "a1", cpu=4, memory=8 * GIB)
    assert await cloud.allocate(cpu_num=3, memory_size=2 * GIB) == "h1"
    assert available(node, host) == (37, 6 * GIB)
    await node.db.run(lambda s: release_host_capacity(s, host, 3, 2 * GIB))
    assert available(node, host) == (40, 8 * GIB)


async def test_only_usable_hosts_in_the_requested_scope_are_candidates(node, cloud):
    for name, cluster in (("a1-1", "a1"), ("a1-2", "a1"), ("a2-1", "a2"), ("b1-1", "b1")):
        await cloud.host(name, cluster)
    h = cloud.hosts
    assert await cloud.allocate(zone_uuid=cloud.zones["b"].uuid) == "b1-1"
    assert await cloud.allocate(cluster_uuid=cloud.clusters["a2"].uuid) == "a2-1"
    assert await cloud.allocate(host_uuid=h["a1-2"]) == "a1-2"
    assert await cloud.allocate(zone_uuid=cloud.zones["a"].uuid,
                                avoid_host_uuids=[h["a1-1"], h["a2-1"]]) == "a1-2"
    assert await cloud.allocate(hypervisor_type="Simulator", host_uuid=h["b1-1"]) == "b1-1"
    err = await failure(cloud.allocate(hypervisor_type="KVM"))
    assert err.error.code == SysErrors.OPERATION_ERROR.value

    # Disabled, Maintenance or Disconnected hosts, Disabled clusters and zones are skipped.
    await node.call(APIChangeHostStateMsg(uuid=h["a1-1"], stateEvent="disable"))
    await node.call(APIChangeHostStateMsg(uuid=h["a1-2"], stateEvent="maintain"))
    await node.call(ChangeHostConnectionStateMsg(uuid=h["b1-1"], connectionStateEvent="disconnected"))
    assert {await cloud.allocate() for _ in range(10)} == {"a2-1"}
    await node.call(APIChangeClusterStateMsg(uuid=cloud.clusters["a2"].uuid, stateEvent="disable"))
    await node.call(APIChangeHostStateMsg(uuid=h["a2-1"], stateEvent="enable"))  # the cluster still is not
    err = await failure(cloud.allocate())
    assert "0 are Enabled and Connected, in an Enabled cluster of an Enabled zone" in err.error.details
    await node.call(APIChangeClusterStateMsg(uuid=cloud.clusters["a2"].uuid, stateEvent="enable"))
    await node.call(APIChangeZoneStateMsg(uuid=cloud.zones["a"].uuid, stateEvent="disable"))
    await node.call(APIChangeHostStateMsg(uuid=h["a2-1"], stateEvent="enable"))
    assert (await failure(cloud.allocate())).error.code == SysErrors.OPERATION_ERROR.value


async def test_every_l3_networks_l2_must_be_attached_to_the_cluster(node, cloud):
    await cloud.host("a1-1", "a1")
    await cloud.host("a2-1", "a2")
    cloud.rows(L3, {"uuid": "l3-x", "l2NetworkUuid": "l2-x"}, {"uuid": "l3-y", "l2NetworkUuid": "l2-y"})
    cloud.rows(L2_REFS, {"clusterUuid": cloud.clusters["a1"].uuid, "l2NetworkUuid": "l2-x"},
               {"clusterUuid": cloud.clusters["a2"].uuid, "l2NetworkUuid": "l2-x"},
               {"clusterUuid": cloud.clusters["a2"].uuid, "l2NetworkUuid": "l2-y"})
    assert {await cloud.allocate(l3_network_uuids=["l3-x"]) for _ in range(20)} == {"a1-1", "a2-1"}
    assert {await cloud.allocate(l3_network_uuids=["l3-x", "l3-y"]) for _ in range(5)} == {"a2-1"}
    err = await failure(cloud.allocate(l3_network_uuids=["l3-y"], cluster_uuid=cloud.clusters["a1"].uuid))
    assert "0 are in a cluster attached to the L2 networks of L3 networks l3-y" in err.error.details
    assert (await failure(cloud.allocate(l3_network_uuids=["l3-unknown"]))).error.code == "SYS.1006"


async def test_without_the_network_service_no_l3_network_can_be_reached(node, cloud, monkeypatch):
    await cloud.host("a1-1", "a1")
    monkeypatch.setattr(allocator, "find_table", lambda name: None)
    err = await failure(cloud.allocate(l3_network_uuids=["l3-x"]))
    assert "0 are in a cluster attached to the L2 networks" in err.error.details
    assert await cloud.allocate() == "a1-1"  # no network asked, none needed


async def test_a_disk_needs_primary_storage_attached_that_can_hold_it(node, cloud, monkeypatch):
    await cloud.host("a1-1", "a1")
    await cloud.host("a1-2", "a1")
    await cloud.host("a2-1", "a2")
    cloud.rows(PS_REFS, {"clusterUuid": cloud.clusters["a1"].uuid, "primaryStorageUuid": "local"},
               {"clusterUuid": cloud.clusters["a2"].uuid, "primaryStorageUuid": "shared"})
    assert {await cloud.allocate(required_disk_size=GIB, primary_storage_uuid="shared")
            for _ in range(5)} == {"a2-1"}
    # The storage service has the last word, host by host (local storage).
    asked = []

    def candidates(session, cluster_uuid, size, host_uuid=None):
        asked.append((cluster_uuid, size, host_uuid))
        return ["local"] if host_uuid == cloud.hosts["a1-2"] else []

    monkeypatch.setattr(allocator, "primary_storage_candidates", lambda: candidates)
    assert await cloud.allocate(required_disk_size=10 * GIB) == "a1-2"
    assert (cloud.clusters["a1"].uuid, 10 * GIB, cloud.hosts["a1-2"]) in asked
    err = await failure(cloud.allocate(required_disk_size=GIB, avoid_host_uuids=[cloud.hosts["a1-2"]]))
    assert f"2 had no Enabled and Connected primary storage with {GIB} bytes free" in err.error.details
    # No disk asked: storage is not looked at.
    asked.clear()
    await cloud.allocate()
    assert asked == []


async def test_least_used_prefers_the_most_free_memory(node, cloud):
    small = await cloud.host("small", "a1", memory=4 * GIB)
    await cloud.host("big", "a1", memory=16 * GIB)
    strategy = "LeastUsedHostAllocatorStrategy"
    assert [await cloud.allocate(memory_size=5 * GIB, strategy=strategy) for _ in range(3)] == ["big"] * 3
    # big has 1 GiB left, small 4 GiB.
    assert await cloud.allocate(memory_size=GIB, strategy=strategy) == "small"
    assert available(node, small)[1] == 3 * GIB


async def test_least_vm_preferred_counts_the_vms_on_each_host(node, cloud):
    busy = await cloud.host("busy", "a1")
    await cloud.host("idle", "a1")
    cloud.rows(VMS, {"uuid": "vm1", "hostUuid": busy, "state": "Running", "memorySize": GIB},
               {"uuid": "vm2", "hostUuid": busy, "state": "Stopped", "memorySize": GIB})
    strategy = "LeastVmPreferredHostAllocatorStrategy"
    assert {await cloud.allocate(strategy=strategy) for _ in range(5)} == {"idle"}


async def test_bad_specs_are_refused(node, cloud):
    for spec, message in (({"strategy": "Fastest"}, "unknown host allocator strategy Fastest"),
                          ({"cpu_num": -1}, "must not be negative"),
                          ({"l3_network_uuids": "l3-x"}, "must be lists of uuids")):
        err = await failure(cloud.allocate(**spec))
        assert err.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value and message in err.error.details


async def test_no_host_fits_explains_why(node, cloud):
    await cloud.host("a1-1", "a1", cpu=1, memory=2 * GIB)
    await cloud.host("a1-2", "a1", cpu=1, memory=2 * GIB)
    err = await failure(cloud.allocate(cpu_num=2, memory_size=3 * GIB, zone_uuid=cloud.zones["a"].uuid))
    assert err.error.code == SysErrors.OPERATION_ERROR.value
    assert err.error.details.startswith(
        f"no host has enough capacity for a VM of 2 CPUs and {3 * GIB} bytes of memory")
    assert f"2 hosts in zone {cloud.zones['a'].uuid}" in err.error.details
    assert "2 are Enabled and Connected" in err.error.details
    assert "0 are with 2 CPUs" in err.error.details and "memory overcommit ratio 1.0" in err.error.details
    assert available(node, cloud.hosts["a1-1"]) == (10, 2 * GIB)


async def test_a_host_disabled_after_the_candidates_were_read_is_skipped(node, cloud, monkeypatch):
    stale = await cloud.host("stale", "a1")
    fresh = await cloud.host("fresh", "a1")
    await node.call(APIChangeHostStateMsg(uuid=stale, stateEvent="disable"))
    # As if the candidates had been read just before the host was disabled.
    monkeypatch.setattr(allocator, "_candidates", lambda session, spec, stages: [
        (stale, cloud.clusters["a1"].uuid), (fresh, cloud.clusters["a1"].uuid)])
    assert await cloud.allocate() == "fresh"
    assert available(node, stale) == (40, 8 * GIB)
    await node.call(APIChangeHostStateMsg(uuid=fresh, stateEvent="disable"))
    err = await failure(cloud.allocate())
    assert "2 were filled by concurrent allocations or became unusable meanwhile" in err.error.details


async def test_concurrent_allocations_fill_hosts_exactly(node, cloud):
    hosts = [await cloud.host(f"h{i}", "a1", cpu=1, memory=64 * GIB) for i in range(3)]
    results = await asyncio.gather(*(allocate_host(node, HostAllocationSpec(cpu_num=1, memory_size=GIB))
                                     for _ in range(40)), return_exceptions=True)
    placed = [r for r in results if isinstance(r, str)]
    assert len(placed) == 30  # 3 hosts x 1 CPU x ratio 10
    assert all(isinstance(r, OperationError) for r in results if not isinstance(r, str))
    for host in hosts:
        assert placed.count(host) == 10 and available(node, host) == (0, 54 * GIB)


@pytest.mark.parametrize("table, columns", [
    ("L3NetworkVO", {"uuid", "l2NetworkUuid"}),
    ("L2NetworkClusterRefVO", {"clusterUuid", "l2NetworkUuid"}),
    ("PrimaryStorageClusterRefVO", {"clusterUuid", "primaryStorageUuid"}),
    ("VmInstanceVO", {"hostUuid", "state"}),
])
def test_the_other_services_tables_have_what_the_allocator_reads(table, columns):
    real = allocator.find_table(table)
    if real is None:
        pytest.skip(f"{table} belongs to a service that is not installed")
    assert columns <= set(real.columns.keys())
