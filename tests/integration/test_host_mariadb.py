"""Hosts on MariaDB and RabbitMQ, served by three MNs sharing a ring.

The allocator is hammered from all three MNs at once: hosts are filled to
exactly their overcommitted capacity and never beyond. Host APIs sent from
one MN run on the host's owner; cluster state changes and deletions reach
hosts owned by the other MNs.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest
from sqlalchemy import func, inspect, select

from mn.cluster.messages import APIChangeClusterStateMsg, APICreateClusterMsg, APIDeleteClusterMsg
from mn.cluster.service import ClusterService
from mn.db.models.host import HostCapacityVO, HostVO, SimulatorHostVO
from mn.errors import OperationError, SysErrors
from mn.globalconfig import REGISTRY
from mn.host.allocator import HostAllocationSpec, allocate_host
from mn.host.capacity import release_host_capacity
from mn.host.config import CPU_OVERPROVISIONING_RATIO
from mn.host.messages import APIAddSimulatorHostMsg, APIChangeHostStateMsg
from mn.host.service import HostService
from mn.ids import new_uuid
from mn.ring import Ring
from mn.zone.messages import APICreateZoneMsg
from mn.zone.service import ZoneService
from tests.support.small_node import SmallNode

pytestmark = pytest.mark.integration

GIB = 1 << 30


@pytest.fixture
async def nodes(mariadb_url, amqp_url):
    uuids = [new_uuid() for _ in range(3)]
    # One MN serves the process-wide registry (the ratios); the others have their own.
    trio = [SmallNode(mariadb_url, bus_url=amqp_url, ring=Ring(uuids), uuid=u,
                      registry=REGISTRY if i == 0 else None) for i, u in enumerate(uuids)]
    try:
        for node in trio:
            await node.start(ZoneService, ClusterService, HostService)
        yield trio
    finally:
        for node in trio:
            await node.stop()


async def simulator_cluster(node, name="sim"):
    zone = (await node.call(APICreateZoneMsg(name=f"zone-{name}"))).inventory
    return (await node.call(APICreateClusterMsg(zoneUuid=zone.uuid, name=name,
                                                hypervisorType="Simulator"))).inventory


async def add_hosts(nodes, cluster_uuid, count, prefix, cpu=4, memory=64 * GIB) -> list[str]:
    hosts = []
    for i, node in zip(range(count), itertools.cycle(nodes)):
        msg = APIAddSimulatorHostMsg(clusterUuid=cluster_uuid, name=f"{prefix}{i}", cpuCapacity=cpu,
                                     memoryCapacity=memory, managementIp=f"{prefix}{i}.example.com")
        hosts.append((await node.call(msg)).inventory.uuid)
    return hosts


def capacities(node, host_uuids) -> dict[str, tuple[int, int]]:
    with node.db.session() as s:
        rows = s.execute(select(HostCapacityVO.uuid, HostCapacityVO.availableCpu, HostCapacityVO.availableMemory)
                         .where(HostCapacityVO.uuid.in_(host_uuids))).all()
        return {uuid: (cpu, memory) for uuid, cpu, memory in rows}


async def test_200_concurrent_allocations_on_three_mns_never_overcommit(nodes):
    cluster = await simulator_cluster(nodes[0])
    hosts = await add_hosts(nodes, cluster.uuid, 3, "fill", cpu=4, memory=64 * GIB)
    ratio = CPU_OVERPROVISIONING_RATIO.value
    capacity = 4 * ratio  # virtual CPUs per host

    for strategy in ("DefaultHostAllocatorStrategy", "LeastUsedHostAllocatorStrategy"):
        spec = HostAllocationSpec(cpu_num=1, memory_size=GIB, cluster_uuid=cluster.uuid, strategy=strategy)
        results = await asyncio.gather(*(allocate_host(nodes[i % 3], spec) for i in range(200)),
                                       return_exceptions=True)
        placed = [r for r in results if isinstance(r, str)]
        refused = [r for r in results if not isinstance(r, str)]
        # Capacity only shrinks, so an allocation fails only when every host is full.
        assert len(placed) == 3 * capacity, strategy
        assert all(isinstance(r, OperationError) and r.error.code == SysErrors.OPERATION_ERROR.value
                   for r in refused), refused[:1]
        assert {h: placed.count(h) for h in hosts} == {h: capacity for h in hosts}
        assert capacities(nodes[1], hosts) == {h: (0, (64 - capacity) * GIB) for h in hosts}

        await asyncio.gather(*(nodes[i % 3].db.run(
            lambda s, h=host: release_host_capacity(s, h, 1, GIB)) for i, host in enumerate(placed)))
        assert capacities(nodes[2], hosts) == {h: (capacity, 64 * GIB) for h in hosts}


async def test_one_management_ip_one_host_across_mns(nodes):
    cluster = await simulator_cluster(nodes[0], "dup")
    msgs = [APIAddSimulatorHostMsg(clusterUuid=cluster.uuid, name=f"same{i}", cpuCapacity=1,
                                   memoryCapacity=GIB, managementIp="10.9.9.9") for i in range(6)]
    results = await asyncio.gather(*(nodes[i % 3].call(m) for i, m in enumerate(msgs)), return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    errors = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(e, OperationError) and e.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
               and "10.9.9.9" in e.error.details for e in errors)
    with nodes[0].db.session() as s:
        assert s.scalar(select(func.count()).select_from(HostVO).where(HostVO.managementIp == "10.9.9.9")) == 1
        assert s.scalar(select(func.count()).select_from(HostCapacityVO)) == \
            s.scalar(select(func.count()).select_from(HostVO))


async def test_states_maintenance_and_cascade_across_mns(nodes):
    cluster = await simulator_cluster(nodes[0], "multi")
    hosts = await add_hosts(nodes, cluster.uuid, 6, "multi")
    owners = {nodes[0].ring.owner(h) for h in hosts}
    assert len(owners) >= 2, "six hosts should land on several MNs"

    ran_on = []

    class EmptyHost:
        def __init__(self, node):
            self.node = node

        async def before_maintenance(self, host_uuid):
            ran_on.append((host_uuid, self.node.uuid))

    for node in nodes:
        node.services["host"].add_maintenance_extension(EmptyHost(node))
    target = hosts[0]
    owner = nodes[0].ring.owner(target)
    sender = next(n for n in nodes if n.uuid != owner)
    event = await sender.call(APIChangeHostStateMsg(uuid=target, stateEvent="maintain"))
    assert event.inventory.state == "Maintenance" and ran_on == [(target, owner)]

    await nodes[1].call(APIChangeClusterStateMsg(uuid=cluster.uuid, stateEvent="disable"))
    with nodes[2].db.session() as s:
        states = dict(s.execute(select(HostVO.uuid, HostVO.state).where(HostVO.uuid.in_(hosts))).all())
    assert states == {h: "Maintenance" if h == target else "Disabled" for h in hosts}

    await nodes[2].call(APIDeleteClusterMsg(uuid=cluster.uuid))
    with nodes[0].db.session() as s:
        for model in (HostVO, HostCapacityVO, SimulatorHostVO):
            assert s.scalar(select(func.count()).select_from(model).where(model.uuid.in_(hosts))) == 0


async def test_mariadb_schema(nodes):
    inspector = inspect(nodes[0].db.engine)
    fks = {(fk["constrained_columns"][0], fk["referred_table"]): fk["options"].get("ondelete")
           for fk in inspector.get_foreign_keys("HostVO")}
    assert set(fks) == {("zoneUuid", "ZoneVO"), ("clusterUuid", "ClusterVO")}
    assert all(action in (None, "RESTRICT") for action in fks.values())
    [capacity_fk] = inspector.get_foreign_keys("HostCapacityVO")
    assert (capacity_fk["referred_table"], capacity_fk["options"].get("ondelete")) == ("HostVO", "CASCADE")
    assert {u["name"] for u in inspector.get_unique_constraints("HostVO")} == {"uq_HostVO_managementIp"}
    assert {ix["name"] for ix in inspector.get_indexes("HostVO")} >= {
        "ix_HostVO_zoneUuid", "ix_HostVO_clusterUuid", "ix_HostVO_name", "ix_HostVO_state", "ix_HostVO_status"}
