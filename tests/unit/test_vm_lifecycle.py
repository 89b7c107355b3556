"""VM life cycle over SQLite: start, stop, reboot, pause, resume, destroy, recover,
expunge, migrate, change offering, nics and hostname — with exact capacity."""

from __future__ import annotations

import asyncio

import pytest
from mn.db.models.network import IpRangeVO, L3NetworkVO
from mn.db.models.offering import InstanceOfferingVO
from mn.errors import OperationError
from mn.vm import state as s
from mn.vm.config import DELETION_POLICY
from mn.vm.expunger import VM_EXPUNGE_PERIOD, VOLUME_EXPUNGE_PERIOD
from mn.vm.hypervisor import SIMULATED_FAILURES
from mn.vm.messages import (
    APIAttachL3NetworkToVmMsg,
    APIChangeInstanceOfferingMsg,
    APICreateVmInstanceMsg,
    APIDeleteVmHostnameMsg,
    APIDestroyVmInstanceMsg,
    APIDetachL3NetworkFromVmMsg,
    APIExpungeVmInstanceMsg,
    APIGetVmHostnameMsg,
    APIMigrateVmMsg,
    APIPauseVmInstanceMsg,
    APIRebootVmInstanceMsg,
    APIRecoverVmInstanceMsg,
    APIResumeVmInstanceMsg,
    APISetVmHostnameMsg,
    APIStartVmInstanceMsg,
    APIStopVmInstanceMsg,
    APIUpdateVmInstanceMsg,
)
from mn.volume.messages import APICreateDataVolumeMsg, APIDeleteDataVolumeMsg
from tests.support.vm_world import GIB, assert_consistent, build_world, start_vm_node, stop_vm_node, totals


@pytest.fixture
async def node(sqlite_url):
    node = await start_vm_node(sqlite_url)
    yield node
    await stop_vm_node(node)


@pytest.fixture
async def world(node):
    return await node.db.run(lambda s_: build_world(s_, vm_cpu=2, vm_memory=2 * GIB))


async def call(node, msg):
    return await node.intercept_and_call(msg)


async def new_vm(node, world, name="vm1", **kw):
    msg = APICreateVmInstanceMsg(name=name, instanceOfferingUuid=world.offering, imageUuid=world.image,
                                 l3NetworkUuids=[world.l3], **kw)
    return (await call(node, msg)).inventory


async def failure(coro) -> OperationError:
    with pytest.raises(OperationError) as info:
        await coro
    return info.value


async def t(node, world):
    result = await node.db.run(lambda s_: totals(s_, world))
    assert_consistent(result)
    return result


async def test_stop_and_start_give_back_and_take_the_host(node, world):
    vm = await new_vm(node, world)
    stopped = (await call(node, APIStopVmInstanceMsg(uuid=vm.uuid))).inventory
    assert (stopped.state, stopped.hostUuid, stopped.lastHostUuid) == ("Stopped", None, vm.hostUuid)
    assert (await t(node, world)).host_cpu_used == 0
    # Stopping a stopped VM succeeds and changes nothing, as in ZStack.
    again = (await call(node, APIStopVmInstanceMsg(uuid=vm.uuid, type="cold"))).inventory
    assert again.state == "Stopped"
    started = (await call(node, APIStartVmInstanceMsg(uuid=vm.uuid, hostUuid=world.hosts[1]))).inventory
    assert (started.state, started.hostUuid, started.lastHostUuid) == ("Running", world.hosts[1], world.hosts[1])
    assert started.vmNics[0].ip == vm.vmNics[0].ip
    assert (await t(node, world)).host_cpu_used == 2
    assert (await call(node, APIStartVmInstanceMsg(uuid=vm.uuid))).inventory.state == "Running"


async def test_reboot_pause_resume(node, world):
    vm = await new_vm(node, world)
    assert (await call(node, APIRebootVmInstanceMsg(uuid=vm.uuid))).inventory.state == "Running"
    paused = (await call(node, APIPauseVmInstanceMsg(uuid=vm.uuid))).inventory
    assert (paused.state, paused.hostUuid) == ("Paused", vm.hostUuid)
    assert (await t(node, world)).host_cpu_used == 2  # a paused VM keeps its host
    err = await failure(call(node, APIPauseVmInstanceMsg(uuid=vm.uuid)))
    assert (err.error.code, err.error.cause.code) == ("SYS.1006", s.VM_NOT_IN_CORRECT_STATE)
    assert (await call(node, APIResumeVmInstanceMsg(uuid=vm.uuid))).inventory.state == "Running"


async def test_a_failing_hypervisor_puts_the_vm_back_where_it_was(node, world):
    vm = await new_vm(node, world)
    await SIMULATED_FAILURES.update("stop,reboot")
    try:
        err = await failure(call(node, APIStopVmInstanceMsg(uuid=vm.uuid)))
        assert err.error.code == "VM.1002" and err.error.cause.cause.code == "HOST.1006"
        err = await failure(call(node, APIRebootVmInstanceMsg(uuid=vm.uuid)))
        assert err.error.code == "VM.1003"
    finally:
        await SIMULATED_FAILURES.update("")
    assert (await node.services["vmInstance"].inventory(vm.uuid)).state == "Running"
    assert (await t(node, world)).host_cpu_used == 2


async def test_a_failed_start_gives_the_host_back_and_stays_stopped(node, world):
    vm = await new_vm(node, world, strategy="CreateStopped")
    await SIMULATED_FAILURES.update("start")
    try:
        err = await failure(call(node, APIStartVmInstanceMsg(uuid=vm.uuid)))
    finally:
        await SIMULATED_FAILURES.update("")
    assert err.error.code == "VM.1001" and "simulated failure: start" in err.error.details
    after = await node.services["vmInstance"].inventory(vm.uuid)
    assert (after.state, after.hostUuid) == ("Stopped", None)
    assert (await t(node, world)).host_cpu_used == 0


async def test_destroy_recover_start_and_expunge(node, world):
    vm = await new_vm(node, world, dataDiskOfferingUuids=[world.disk_offering])
    await call(node, APIDestroyVmInstanceMsg(uuid=vm.uuid))
    destroyed = await node.services["vmInstance"].inventory(vm.uuid)
    assert (destroyed.state, destroyed.hostUuid) == ("Destroyed", None)
    assert [n.ip for n in destroyed.vmNics] == [None]  # the nic stays, its address went back
    assert [(v.type, v.status) for v in destroyed.allVolumes] == [("Root", "Deleted")]  # data detached
    used = await t(node, world)
    assert (used.host_cpu_used, used.ips_used, used.ps_used) == (0, 0, 15 * GIB)  # root kept until expunged
    # Destroying a destroyed VM succeeds; starting it is a 409.
    await call(node, APIDestroyVmInstanceMsg(uuid=vm.uuid))
    err = await failure(call(node, APIStartVmInstanceMsg(uuid=vm.uuid)))
    assert err.error.code == "SYS.1006" and "Destroyed" in err.error.details

    recovered = (await call(node, APIRecoverVmInstanceMsg(uuid=vm.uuid))).inventory
    assert recovered.state == "Stopped" and recovered.allVolumes[0].status == "Ready"
    started = (await call(node, APIStartVmInstanceMsg(uuid=vm.uuid))).inventory
    assert started.state == "Running" and started.vmNics[0].ip is not None
    assert (await t(node, world)).ips_used == 1

    await call(node, APIDestroyVmInstanceMsg(uuid=vm.uuid))
    await call(node, APIExpungeVmInstanceMsg(uuid=vm.uuid))
    left = await t(node, world)
    assert (left.vms, left.nics, left.ips_used, left.host_cpu_used) == (0, 0, 0, 0)
    assert (left.volumes, left.ps_used) == (1, 5 * GIB)  # the detached data volume is the user's


async def test_expunge_refuses_a_vm_that_is_not_destroyed(node, world):
    vm = await new_vm(node, world)
    err = await failure(call(node, APIExpungeVmInstanceMsg(uuid=vm.uuid)))
    assert err.error.code == "SYS.1006" and err.error.cause.code == s.VM_NOT_IN_CORRECT_STATE
    assert (await t(node, world)).vms == 1


async def test_direct_deletion_policy_expunges_at_once(node, world):
    vm = await new_vm(node, world)
    await DELETION_POLICY.update("Direct")
    try:
        await call(node, APIDestroyVmInstanceMsg(uuid=vm.uuid))
    finally:
        await DELETION_POLICY.update("Delay")
    left = await t(node, world)
    assert (left.vms, left.nics, left.volumes, left.ips_used, left.ps_used, left.host_cpu_used) == (0,) * 6
    await call(node, APIDestroyVmInstanceMsg(uuid=vm.uuid))  # gone: still a success


async def test_migrate_moves_the_capacity(node, world):
    vm = await new_vm(node, world, hostUuid=world.hosts[0])
    moved = (await call(node, APIMigrateVmMsg(vmInstanceUuid=vm.uuid))).inventory
    assert (moved.state, moved.hostUuid, moved.lastHostUuid) == ("Running", world.hosts[1], world.hosts[0])
    assert (await t(node, world)).host_cpu_used == 2
    err = await failure(call(node, APIMigrateVmMsg(vmInstanceUuid=vm.uuid, hostUuid=world.hosts[1])))
    assert "already on host" in err.error.details
    await SIMULATED_FAILURES.update("migrate")
    try:
        err = await failure(call(node, APIMigrateVmMsg(vmInstanceUuid=vm.uuid, hostUuid=world.hosts[0])))
    finally:
        await SIMULATED_FAILURES.update("")
    assert err.error.code == "VM.1008"
    after = await node.services["vmInstance"].inventory(vm.uuid)
    assert (after.state, after.hostUuid) == ("Running", world.hosts[1])
    assert (await t(node, world)).host_cpu_used == 2


async def test_change_instance_offering_of_a_running_vm_moves_its_capacity(node, world):
    vm = await new_vm(node, world)

    def bigger(session):
        offering = InstanceOfferingVO(name="big", cpuNum=4, memorySize=3 * GIB, state="Enabled", type="UserVm")
        huge = InstanceOfferingVO(name="huge", cpuNum=1000, memorySize=GIB, state="Enabled", type="UserVm")
        session.add_all([offering, huge])
        session.flush()
        return offering.uuid, huge.uuid

    big, huge = await node.db.run(bigger)
    changed = (await call(node, APIChangeInstanceOfferingMsg(vmInstanceUuid=vm.uuid,
                                                             instanceOfferingUuid=big))).inventory
    assert (changed.cpuNum, changed.memorySize, changed.instanceOfferingUuid) == (4, 3 * GIB, big)
    assert ((await t(node, world)).host_cpu_used, (await t(node, world)).host_memory_used) == (4, 3 * GIB)
    err = await failure(call(node, APIChangeInstanceOfferingMsg(vmInstanceUuid=vm.uuid, instanceOfferingUuid=huge)))
    assert "more CPUs" in err.error.details
    back = (await call(node, APIChangeInstanceOfferingMsg(vmInstanceUuid=vm.uuid,
                                                          instanceOfferingUuid=world.offering))).inventory
    assert back.cpuNum == 2 and (await t(node, world)).host_cpu_used == 2


async def test_attach_and_detach_l3_networks(node, world):
    vm = await new_vm(node, world)

    def second_l3(session):
        l3 = L3NetworkVO(name="l3b", zoneUuid=world.zone, l2NetworkUuid=world.l2, state="Enabled")
        session.add(l3)
        session.flush()
        session.add(IpRangeVO(name="r", l3NetworkUuid=l3.uuid, startIp="10.1.0.10", endIp="10.1.0.20",
                              netmask="255.255.255.0", gateway="10.1.0.1", networkCidr="10.1.0.0/24", prefixLen=24))
        return l3.uuid

    l3b = await node.db.run(second_l3)
    attached = (await call(node, APIAttachL3NetworkToVmMsg(vmInstanceUuid=vm.uuid, l3NetworkUuid=l3b,
                                                           staticIp="10.1.0.15"))).inventory
    nic = next(n for n in attached.vmNics if n.l3NetworkUuid == l3b)
    assert (nic.ip, nic.deviceId) == ("10.1.0.15", 1)
    err = await failure(call(node, APIAttachL3NetworkToVmMsg(vmInstanceUuid=vm.uuid, l3NetworkUuid=l3b)))
    assert "already attached" in err.error.details
    first = attached.vmNics[0] if attached.vmNics[0].l3NetworkUuid == world.l3 else attached.vmNics[1]
    detached = (await call(node, APIDetachL3NetworkFromVmMsg(vmNicUuid=first.uuid))).inventory
    assert [n.l3NetworkUuid for n in detached.vmNics] == [l3b]
    assert detached.defaultL3NetworkUuid == l3b  # the default followed the remaining nic
    used = await t(node, world)
    assert (used.nics, used.ips_used) == (1, 1)  # only the address on l3b is in use


async def test_a_failed_nic_attach_gives_the_address_back(node, world):
    vm = await new_vm(node, world)

    def second_l3(session):
        l3 = L3NetworkVO(name="l3c", zoneUuid=world.zone, l2NetworkUuid=world.l2, state="Enabled")
        session.add(l3)
        session.flush()
        session.add(IpRangeVO(name="r", l3NetworkUuid=l3.uuid, startIp="10.2.0.10", endIp="10.2.0.20",
                              netmask="255.255.255.0", gateway="10.2.0.1", networkCidr="10.2.0.0/24", prefixLen=24))
        return l3.uuid

    l3c = await node.db.run(second_l3)
    await SIMULATED_FAILURES.update("attachNic")
    try:
        err = await failure(call(node, APIAttachL3NetworkToVmMsg(vmInstanceUuid=vm.uuid, l3NetworkUuid=l3c)))
    finally:
        await SIMULATED_FAILURES.update("")
    assert err.error.code == "VM.1007"
    after = await node.services["vmInstance"].inventory(vm.uuid)
    assert [n.l3NetworkUuid for n in after.vmNics] == [world.l3]
    assert (await t(node, world)).ips_used == 1


async def test_hostname_tag_and_update(node, world):
    vm = await new_vm(node, world)
    await call(node, APISetVmHostnameMsg(uuid=vm.uuid, hostname="web-1"))
    await call(node, APISetVmHostnameMsg(uuid=vm.uuid, hostname="web-2"))
    assert (await call(node, APIGetVmHostnameMsg(uuid=vm.uuid))).hostname == "web-2"
    err = await failure(call(node, APISetVmHostnameMsg(uuid=vm.uuid, hostname="-bad-")))
    assert err.error.code == "SYS.1007"
    await call(node, APIDeleteVmHostnameMsg(uuid=vm.uuid))
    assert (await call(node, APIGetVmHostnameMsg(uuid=vm.uuid))).hostname is None
    updated = (await call(node, APIUpdateVmInstanceMsg(uuid=vm.uuid, name="renamed", description="d"))).inventory
    assert (updated.name, updated.description) == ("renamed", "d")


async def test_operations_on_one_vm_never_interleave(node, world, monkeypatch):
    vm = await new_vm(node, world)
    from mn.vm.hypervisor import SimulatorHypervisor
    running, most = 0, 0
    original = SimulatorHypervisor._act

    async def counted(self, operation, spec, what=""):
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await asyncio.sleep(0.01)
            await original(self, operation, spec, what)
        finally:
            running -= 1

    monkeypatch.setattr(SimulatorHypervisor, "_act", counted)
    ops = [APIStopVmInstanceMsg, APIStartVmInstanceMsg, APIRebootVmInstanceMsg] * 4
    results = await asyncio.gather(*(call(node, op(uuid=vm.uuid)) for op in ops), return_exceptions=True)
    assert most == 1  # one hypervisor call at a time on this VM
    for result in results:  # each either worked or was refused for the state it found
        assert not isinstance(result, BaseException) or result.error.cause.code == s.VM_NOT_IN_CORRECT_STATE
    final = await node.services["vmInstance"].inventory(vm.uuid)
    assert final.state in ("Running", "Stopped")
    assert (await t(node, world)).host_cpu_used == (2 if final.state == "Running" else 0)


async def test_destroyed_vms_and_deleted_volumes_are_expunged_after_their_period(node, world):
    vm = await new_vm(node, world)
    await call(node, APIDestroyVmInstanceMsg(uuid=vm.uuid))
    volume = (await call(node, APICreateDataVolumeMsg(name="d", diskSize=GIB, primaryStorageUuid=world.ps))).inventory
    await call(node, APIDeleteDataVolumeMsg(uuid=volume.uuid))
    vms, volumes = node.services["vmInstance"].expunger, node.services["volume"].expunger
    assert (await vms.run_once(), await volumes.run_once()) == (0, 0)  # a week has not passed
    await VM_EXPUNGE_PERIOD.update(1)
    await VOLUME_EXPUNGE_PERIOD.update(1)
    try:
        await asyncio.sleep(1.1)
        assert (await vms.run_once(), await volumes.run_once()) == (1, 1)
    finally:
        await VM_EXPUNGE_PERIOD.update(604800)
        await VOLUME_EXPUNGE_PERIOD.update(259200)
    left = await t(node, world)
    assert (left.vms, left.volumes, left.nics, left.ps_used) == (0, 0, 0, 0)
