"""What hosts report of their VMs reaches the records: stopped behind our
back, started behind our back, paused, unknown while the host is gone, and
NeverStop VMs started again — with exact capacity."""

from __future__ import annotations

import asyncio

import pytest
from mn.db.models.host import HOST_CONNECTED, HOST_DISCONNECTED, HostVO
from mn.db.models.vm import VmInstanceVO
from mn.errors import OperationError
from mn.host.inventory import HostInventory
from mn.vm.messages import APICreateVmInstanceMsg, APIStopVmInstanceMsg
from mn.vm.sync import (VmHostStatusExtension, VmStateChangedOnHostMsg, changes_for_host,
                        sync_host_vms)
from tests.support.vm_world import GIB, assert_consistent, build_world, start_vm_node, stop_vm_node, totals


@pytest.fixture
async def node(sqlite_url):
    node = await start_vm_node(sqlite_url)
    yield node
    await stop_vm_node(node)


@pytest.fixture
async def world(node):
    return await node.db.run(lambda s_: build_world(s_, vm_cpu=2, vm_memory=2 * GIB))


async def new_vm(node, world, name="vm1", tags=None):
    msg = APICreateVmInstanceMsg(name=name, instanceOfferingUuid=world.offering, imageUuid=world.image,
                                 l3NetworkUuids=[world.l3], systemTags=tags)
    return (await node.intercept_and_call(msg)).inventory


async def vm_row(node, uuid):
    return await node.db.run(lambda s: (lambda v: (v.state, v.hostUuid, v.lastHostUuid))(s.get(VmInstanceVO, uuid)))


async def report(node, vm, host, state):
    return (await node.call(VmStateChangedOnHostMsg(vmInstanceUuid=vm, hostUuid=host, stateOnHost=state))).state


async def used_cpu(node, world):
    result = await node.db.run(lambda s: totals(s, world))
    assert_consistent(result)
    return result.host_cpu_used


async def test_stopped_behind_our_back_gives_the_host_back(node, world):
    vm = await new_vm(node, world)
    assert await used_cpu(node, world) == 2
    assert await report(node, vm.uuid, vm.hostUuid, "Stopped") == "Stopped"
    assert await vm_row(node, vm.uuid) == ("Stopped", None, vm.hostUuid)
    assert await used_cpu(node, world) == 0
    # Reported again: nothing more to give back.
    assert await report(node, vm.uuid, vm.hostUuid, "Stopped") == "Stopped"
    assert await used_cpu(node, world) == 0


async def test_running_behind_our_back_takes_the_host(node, world):
    vm = await new_vm(node, world)
    await node.intercept_and_call(APIStopVmInstanceMsg(uuid=vm.uuid))
    host = world.hosts[1]
    assert await report(node, vm.uuid, host, "Running") == "Running"
    assert (await vm_row(node, vm.uuid))[:2] == ("Running", host)
    assert await used_cpu(node, world) == 2


async def test_paused_and_unknown_follow_the_host_and_another_host_is_ignored(node, world):
    vm = await new_vm(node, world)
    assert await report(node, vm.uuid, vm.hostUuid, "Paused") == "Paused"
    assert await report(node, vm.uuid, vm.hostUuid, "Unknown") == "Unknown"
    assert await report(node, vm.uuid, vm.hostUuid, "Running") == "Running"
    other = next(h for h in world.hosts if h != vm.hostUuid)
    # A host that does not have the VM on record cannot move it.
    assert await report(node, vm.uuid, other, "Stopped") == "Running"
    assert await report(node, vm.uuid, other, "Paused") == "Running"
    assert await vm_row(node, vm.uuid) == ("Running", vm.hostUuid, vm.hostUuid)
    assert await used_cpu(node, world) == 2


async def test_a_never_stop_vm_is_started_again(node, world):
    vm = await new_vm(node, world, tags=["ha::NeverStop"])
    assert await report(node, vm.uuid, vm.hostUuid, "Stopped") == "Running"
    state, host, _ = await vm_row(node, vm.uuid)
    assert state == "Running" and host is not None
    assert await used_cpu(node, world) == 2


async def test_a_bad_ha_level_is_refused(node, world):
    with pytest.raises(OperationError):
        await new_vm(node, world, tags=["ha::Sometimes"])


async def test_a_full_report_finds_what_disagrees(node, world):
    a = await new_vm(node, world, "a")
    b = await new_vm(node, world, "b")
    c = await new_vm(node, world, "c")
    await node.intercept_and_call(APIStopVmInstanceMsg(uuid=c.uuid))
    host = a.hostUuid
    on_host = [v for v in (a, b) if v.hostUuid == host]
    states = {v.uuid: "Running" for v in on_host}
    missing = on_host[0]
    del states[missing.uuid]               # gone from the host: stopped there
    states[c.uuid] = "Running"             # started behind our back
    states["f" * 32] = "Running"           # not ours at all
    changes = await node.db.run(changes_for_host, host, states)
    assert sorted(changes) == sorted([(missing.uuid, "Stopped"), (c.uuid, "Running")])
    assert await sync_host_vms(node, host, states) == 2
    assert (await vm_row(node, missing.uuid))[0] == "Stopped"
    assert (await vm_row(node, c.uuid))[:2] == ("Running", host)
    assert await node.db.run(changes_for_host, host, states) == []
    await used_cpu(node, world)


async def test_vms_of_a_disconnected_host_become_unknown(node, world):
    vm = await new_vm(node, world)
    host = await node.db.run(lambda s: HostInventory.from_vo(s.get(HostVO, vm.hostUuid)))
    extension = VmHostStatusExtension(node)
    await extension.after_status_changed(host.model_copy(update={"status": HOST_CONNECTED}), HOST_DISCONNECTED)
    assert (await vm_row(node, vm.uuid))[0] == "Running"
    await extension.after_status_changed(host.model_copy(update={"status": HOST_DISCONNECTED}), HOST_CONNECTED)
    for _ in range(100):
        if (await vm_row(node, vm.uuid))[0] == "Unknown":
            break
        await asyncio.sleep(0.02)
    assert (await vm_row(node, vm.uuid))[0] == "Unknown"
    assert await used_cpu(node, world) == 2  # an Unknown VM keeps its host
