"""Reserving and releasing host capacity, with the overcommit ratios of global config."""

from __future__ import annotations

import asyncio

import pytest

from mn.cluster.messages import APICreateClusterMsg
from mn.cluster.service import ClusterService
from mn.db.models.host import HostCapacityVO
from mn.errors import OperationError, SysErrors
from mn.globalconfig import REGISTRY
from mn.host.capacity import (memory_to_reserve, recalculate_available_memory, release_host_capacity,
                              reserve_host_capacity)
from mn.host.config import CPU_OVERPROVISIONING_RATIO, MEMORY_OVERPROVISIONING_RATIO
from mn.host.messages import APIAddSimulatorHostMsg
from mn.host.service import HostService
from mn.zone.messages import APICreateZoneMsg
from mn.zone.service import ZoneService
from tests.support.small_node import SmallNode

GIB = 1 << 30


@pytest.fixture
async def node(sqlite_url):
    node = SmallNode(sqlite_url, registry=REGISTRY)
    await node.start(ZoneService, ClusterService, HostService)
    yield node
    await node.stop()


@pytest.fixture
async def host(node):
    zone = (await node.call(APICreateZoneMsg(name="zone1"))).inventory
    cluster = (await node.call(APICreateClusterMsg(zoneUuid=zone.uuid, name="sim",
                                                   hypervisorType="Simulator"))).inventory
    return (await node.call(APIAddSimulatorHostMsg(clusterUuid=cluster.uuid, managementIp="10.0.0.1", name="h",
                                                   cpuCapacity=2, memoryCapacity=4 * GIB))).inventory


def capacity(node, host_uuid) -> tuple[int, int, int, int]:
    with node.db.session() as s:
        cap = s.get(HostCapacityVO, host_uuid)
        return cap.totalCpu, cap.availableCpu, cap.totalMemory, cap.availableMemory


async def reserve(node, host_uuid, cpu, memory) -> bool:
    return await node.db.run(lambda s: reserve_host_capacity(s, host_uuid, cpu, memory))


async def release(node, host_uuid, cpu, memory) -> None:
    await node.db.run(lambda s: release_host_capacity(s, host_uuid, cpu, memory))


async def test_cpu_is_overcommitted_by_the_ratio_and_memory_is_not_by_default(node, host):
    # 2 CPUs at ratio 10: 20 virtual CPUs; 4 GiB at ratio 1.
    assert capacity(node, host.uuid) == (20, 20, 4 * GIB, 4 * GIB)
    assert await reserve(node, host.uuid, 8, GIB)
    assert await reserve(node, host.uuid, 8, GIB)
    assert not await reserve(node, host.uuid, 8, GIB)  # 24 > 20 CPUs
    assert capacity(node, host.uuid) == (20, 4, 4 * GIB, 2 * GIB)
    assert await reserve(node, host.uuid, 4, 2 * GIB)
    assert not await reserve(node, host.uuid, 0, 1)  # no byte left
    assert capacity(node, host.uuid) == (20, 0, 4 * GIB, 0)
    await release(node, host.uuid, 4, 2 * GIB)
    assert capacity(node, host.uuid) == (20, 4, 4 * GIB, 2 * GIB)


async def test_memory_is_overcommitted_by_its_ratio_read_at_each_reservation(node, host):
    await MEMORY_OVERPROVISIONING_RATIO.update("2")
    # A 3 GiB VM takes 1.5 GiB of the 4: two fit, a third does not.
    assert await reserve(node, host.uuid, 1, 3 * GIB)
    assert await reserve(node, host.uuid, 1, 3 * GIB)
    assert not await reserve(node, host.uuid, 1, 3 * GIB)
    assert capacity(node, host.uuid)[3] == GIB
    await release(node, host.uuid, 1, 3 * GIB)
    assert capacity(node, host.uuid)[3] == GIB + 3 * GIB // 2


async def test_release_never_goes_above_the_totals(node, host):
    await release(node, host.uuid, 5, GIB)
    assert capacity(node, host.uuid) == (20, 20, 4 * GIB, 4 * GIB)
    await release(node, "f" * 32, 1, 1)  # a host that is gone: nothing happens
    assert not await reserve(node, "f" * 32, 1, 1)


async def test_negative_amounts_are_refused(node, host):
    with pytest.raises(OperationError) as info:
        await reserve(node, host.uuid, -1, GIB)
    assert info.value.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    with pytest.raises(OperationError):
        await release(node, host.uuid, 1, -GIB)
    assert capacity(node, host.uuid) == (20, 20, 4 * GIB, 4 * GIB)


async def test_a_new_cpu_ratio_recalculates_totals_and_keeps_what_is_used(node, host):
    assert await reserve(node, host.uuid, 15, GIB)
    await CPU_OVERPROVISIONING_RATIO.update("20")
    # The listener runs after the update; its UPDATE is idempotent.
    for _ in range(100):
        if capacity(node, host.uuid)[0] == 40:
            break
        await asyncio.sleep(0.01)
    assert capacity(node, host.uuid)[:2] == (40, 25)
    assert await reserve(node, host.uuid, 25, 0)
    assert not await reserve(node, host.uuid, 1, 0)
    # Lowered under what is used: nothing more fits, and nothing is lost.
    await CPU_OVERPROVISIONING_RATIO.update("10")
    for _ in range(100):
        if capacity(node, host.uuid)[0] == 20:
            break
        await asyncio.sleep(0.01)
    assert capacity(node, host.uuid)[:2] == (20, -20)
    assert not await reserve(node, host.uuid, 1, 0)
    await release(node, host.uuid, 40, 0)
    assert capacity(node, host.uuid)[:2] == (20, 20)


async def test_concurrent_reservations_never_exceed_the_host(node, host):
    results = await asyncio.gather(*(reserve(node, host.uuid, 1, 100 * 1024 * 1024) for _ in range(60)))
    assert sum(results) == 20  # the CPUs run out first: 20 x 100 MiB < 4 GiB
    total_cpu, available_cpu, _, available_memory = capacity(node, host.uuid)
    assert available_cpu == 0 and available_memory == 4 * GIB - 20 * 100 * 1024 * 1024


def test_memory_to_reserve_is_exact_and_rounds_up():
    assert memory_to_reserve(3 * GIB, 2.0) == 3 * GIB // 2
    assert memory_to_reserve(10, 3.0) == 4
    assert memory_to_reserve(2**62 + 1, 1.0) == 2**62 + 1  # no float rounding
    assert memory_to_reserve(11, 1.1) == 10
    assert memory_to_reserve(0, 1.5) == 0


async def test_the_ratios_have_zstack_names_and_defaults(node):
    entries = {(e.category, e.name): e for e in REGISTRY}
    assert entries[("host", "cpu.overProvisioning.ratio")].default == 10
    assert entries[("mevoco", "overProvisioning.memory")].default == 1.0
    with pytest.raises(OperationError) as info:
        await CPU_OVERPROVISIONING_RATIO.update("0")
    assert info.value.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    assert CPU_OVERPROVISIONING_RATIO.value == 10


async def test_a_forced_reservation_overcommits_a_full_host(node, host):
    assert await reserve(node, host.uuid, 20, 4 * GIB)
    assert not await reserve(node, host.uuid, 2, GIB)
    assert await node.db.run(lambda s: reserve_host_capacity(s, host.uuid, 2, GIB, force=True))
    assert capacity(node, host.uuid) == (20, -2, 4 * GIB, -GIB)


async def test_a_memory_ratio_change_recounts_what_vms_hold(sqlite_url):
    from tests.support.vm_world import build_world, start_vm_node, stop_vm_node
    from mn.vm.messages import APICreateVmInstanceMsg, APIStopVmInstanceMsg

    vm_node = await start_vm_node(sqlite_url)
    try:
        world = await vm_node.db.run(lambda s: build_world(s, hosts=1, host_memory=8 * GIB, vm_memory=3 * GIB))
        vm = (await vm_node.intercept_and_call(APICreateVmInstanceMsg(
            name="vm", instanceOfferingUuid=world.offering, imageUuid=world.image,
            l3NetworkUuids=[world.l3]))).inventory
        assert capacity(vm_node, vm.hostUuid)[3] == 5 * GIB
        await vm_node.db.run(lambda s: recalculate_available_memory(s, 2.0))
        assert capacity(vm_node, vm.hostUuid)[3] == 8 * GIB - 3 * GIB // 2
        # Given back at the ratio it is now counted at: nothing leaks.
        await MEMORY_OVERPROVISIONING_RATIO.update("2")
        await vm_node.intercept_and_call(APIStopVmInstanceMsg(uuid=vm.uuid))
        assert capacity(vm_node, vm.hostUuid)[3] == 8 * GIB
    finally:
        await MEMORY_OVERPROVISIONING_RATIO.update("1")
        await stop_vm_node(vm_node)
