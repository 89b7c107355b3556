"""CreateVmInstance over SQLite: the vm.create chain, its checks, and its rollback."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from mn.db.models.image import ImageVO
from mn.db.models.network import L3NetworkVO
from mn.db.models.vm import VmInstanceVO, VmNicVO
from mn.db.models.volume import VolumeVO
from mn.errors import OperationError, SysErrors
from mn.flow import load_flows
from mn.ids import new_uuid
from mn.vm.hypervisor import SIMULATED_CREATE_FAILURE
from mn.vm.messages import APICreateVmInstanceMsg
from tests.support.vm_world import GIB, assert_consistent, build_world, start_vm_node, stop_vm_node, totals


@pytest.fixture
async def node(sqlite_url):
    node = await start_vm_node(sqlite_url)
    yield node
    await stop_vm_node(node)


async def world_of(node, **kw):
    return await node.db.run(lambda s: build_world(s, **kw))


def create_msg(world, name="vm1", **kw) -> APICreateVmInstanceMsg:
    params = dict(name=name, instanceOfferingUuid=world.offering, imageUuid=world.image,
                  l3NetworkUuids=[world.l3])
    params.update(kw)
    return APICreateVmInstanceMsg(**params)


async def create(node, world, name="vm1", **kw):
    return (await node.intercept_and_call(create_msg(world, name, **kw))).inventory


async def failure(call) -> OperationError:
    with pytest.raises(OperationError) as info:
        await call
    return info.value


async def state_of(node, world):
    return await node.db.run(lambda s: totals(s, world))


async def test_create_gives_a_running_vm_with_a_nic_a_root_volume_and_its_capacity(node):
    world = await world_of(node, vm_cpu=2, vm_memory=2 * GIB, image_size=10 * GIB)
    vm = await create(node, world, description="first")
    assert (vm.state, vm.name, vm.description, vm.cpuNum, vm.memorySize) == ("Running", "vm1", "first", 2, 2 * GIB)
    assert vm.hostUuid in world.hosts and vm.lastHostUuid == vm.hostUuid
    assert (vm.zoneUuid, vm.clusterUuid, vm.hypervisorType) == (world.zone, world.cluster, "Simulator")
    assert vm.defaultL3NetworkUuid == world.l3 and vm.imageUuid == world.image
    [nic] = vm.vmNics
    assert nic.l3NetworkUuid == world.l3 and nic.ip.startswith("192.168.") and nic.deviceId == 0
    assert nic.mac.startswith("fa:") and nic.internalName.startswith("vnic") and nic.gateway == "192.168.0.1"
    [root] = vm.allVolumes
    assert root.uuid == vm.rootVolumeUuid
    assert (root.type, root.status, root.size, root.primaryStorageUuid, root.deviceId) == (
        "Root", "Ready", 10 * GIB, world.ps, 0)
    t = await state_of(node, world)
    assert (t.host_cpu_used, t.host_memory_used, t.ps_used, t.ips_used) == (2, 2 * GIB, 10 * GIB, 1)
    assert_consistent(t)


async def test_create_with_data_disks_and_a_chosen_uuid_and_host(node):
    world = await world_of(node)
    uuid = new_uuid()
    vm = await create(node, world, resourceUuid=uuid, hostUuid=world.hosts[1],
                      dataDiskOfferingUuids=[world.disk_offering], dataDiskSizes=[3 * GIB])
    assert vm.uuid == uuid and vm.hostUuid == world.hosts[1]
    data = sorted((v for v in vm.allVolumes if v.type == "Data"), key=lambda v: v.deviceId)
    assert [(v.size, v.deviceId, v.status) for v in data] == [(5 * GIB, 1, "Ready"), (3 * GIB, 2, "Ready")]
    assert data[0].diskOfferingUuid == world.disk_offering
    assert_consistent(await state_of(node, world))


async def test_just_create_leaves_the_vm_stopped_holding_no_host(node):
    world = await world_of(node)
    vm = await create(node, world, strategy="JustCreate")
    assert (vm.state, vm.hostUuid) == ("Stopped", None) and vm.lastHostUuid in world.hosts
    t = await state_of(node, world)
    assert (t.host_cpu_used, t.ips_used, t.volumes) == (0, 1, 1)
    assert_consistent(t)


@pytest.mark.parametrize("change, code, words", [
    (dict(imageUuid=None), "SYS.1007", "imageUuid is required"),
    (dict(l3NetworkUuids=None), "SYS.1007", "at least one of field"),
    (dict(instanceOfferingUuid=None), "SYS.1007", "cpuNum and memorySize"),
    (dict(l3NetworkUuids="twice"), "SYS.1006", "same uuid"),
    (dict(defaultL3NetworkUuid="0" * 32), "SYS.1007", "defaultL3NetworkUuid"),
    (dict(systemTags=["staticIp::" + "1" * 32 + "::10.0.0.1"]), "SYS.1007", "not in l3NetworkUuids"),
])
async def test_bad_requests_are_refused_before_anything_is_made(node, change, code, words):
    world = await world_of(node)
    if change.get("l3NetworkUuids") == "twice":
        change = dict(l3NetworkUuids=[world.l3, world.l3], defaultL3NetworkUuid=world.l3)
    err = await failure(create(node, world, **change))
    assert err.error.code == code and words in err.error.details
    t = await state_of(node, world)
    assert (t.vms, t.nics, t.volumes, t.ips_used, t.host_cpu_used, t.ps_used) == (0, 0, 0, 0, 0, 0)


async def test_disabled_image_or_network_is_a_409_before_anything_is_made(node):
    world = await world_of(node)

    def disable(session):
        session.get(ImageVO, world.image).state = "Disabled"

    await node.db.run(disable)
    err = await failure(create(node, world))
    assert err.error.code == "SYS.1006" and "is Disabled" in err.error.details

    def swap(session):
        session.get(ImageVO, world.image).state = "Enabled"
        session.get(L3NetworkVO, world.l3).state = "Disabled"

    await node.db.run(swap)
    err = await failure(create(node, world))
    assert err.error.code == "SYS.1006" and f"l3Network[uuid:{world.l3}] is Disabled" in err.error.details
    assert (await state_of(node, world)).vms == 0


async def test_a_hypervisor_failure_rolls_everything_back(node):
    world = await world_of(node)
    await SIMULATED_CREATE_FAILURE.update(True)
    try:
        err = await failure(create(node, world))
    finally:
        await SIMULATED_CREATE_FAILURE.update(False)
    assert err.error.code == "VM.1000"
    assert "failed to create vm instance" in err.error.details and "simulated failure" in err.error.details
    assert err.error.cause.cause.code == "HOST.1005"
    t = await state_of(node, world)
    assert (t.vms, t.nics, t.volumes, t.ips_used, t.host_cpu_used, t.host_memory_used, t.ps_used) == (
        0, 0, 0, 0, 0, 0, 0)


async def test_no_free_address_gives_as_many_vms_as_addresses_and_clear_failures(node):
    world = await world_of(node, ip_count=3, hosts=2, host_cpu=64, host_memory=64 * GIB)
    results = await asyncio.gather(*(create(node, world, f"vm{i}") for i in range(6)), return_exceptions=True)
    created = [r for r in results if not isinstance(r, BaseException)]
    failed = [r for r in results if isinstance(r, OperationError)]
    assert (len(created), len(failed)) == (3, 3), results
    for err in failed:
        assert err.error.code == "VM.1000" and "has no free IP address" in err.error.details
    assert len({vm.vmNics[0].ip for vm in created}) == 3
    t = await state_of(node, world)
    assert (t.vms, t.nics, t.volumes, t.ips_used, t.host_cpu_used) == (3, 3, 3, 3, 3)
    assert_consistent(t)


# The last step's work is its final commit: nothing can fail after it.
CREATE_STEPS = [step.cls.__name__ for step in load_flows().get("vm.create").steps][:-1]


@pytest.mark.parametrize("step_name", CREATE_STEPS)
async def test_each_create_step_rolls_back_what_it_did(node, monkeypatch, step_name):
    """Each step of vm.create fails right after doing its work: its own rollback and
    every earlier one's leave nothing behind."""
    world = await world_of(node)
    chain = load_flows().get("vm.create")
    cls = next(step.cls for step in chain.steps if step.cls.__name__ == step_name)
    original = cls.run

    async def run_then_fail(self, ctx):
        await original(self, ctx)
        raise OperationError.of(SysErrors.OPERATION_ERROR, f"{step_name} broke")

    monkeypatch.setattr(cls, "run", run_then_fail)
    err = await failure(create(node, world))
    assert f"{step_name} broke" in err.error.details
    t = await state_of(node, world)
    assert (t.vms, t.nics, t.volumes, t.ips_used, t.host_cpu_used, t.host_memory_used, t.ps_used) == (
        0, 0, 0, 0, 0, 0, 0)


async def test_the_vm_row_is_visible_in_state_created_while_it_is_made(node, monkeypatch):
    world = await world_of(node)
    from mn.vm.flows.create import VmCreateOnHypervisorFlow
    seen = []
    original = VmCreateOnHypervisorFlow.run

    async def peek(self, ctx):
        seen.append(await node.db.run(lambda s: (s.get(VmInstanceVO, ctx.data["vmUuid"]).state,
                                                 len(s.scalars(select(VmNicVO)).all()),
                                                 len(s.scalars(select(VolumeVO)).all()))))
        await original(self, ctx)

    monkeypatch.setattr(VmCreateOnHypervisorFlow, "run", peek)
    await create(node, world)
    assert seen == [("Created", 1, 1)]
