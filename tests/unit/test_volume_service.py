"""Data volumes over SQLite: create, attach, detach, delete, recover, expunge, with
exact primary storage capacity (shared and local storage)."""

from __future__ import annotations

import pytest

from mn.errors import OperationError
from mn.vm.hypervisor import SIMULATED_FAILURES
from mn.vm.messages import APICreateVmInstanceMsg, APIStopVmInstanceMsg
from mn.volume.messages import (
    APIAttachDataVolumeToVmMsg,
    APICreateDataVolumeMsg,
    APIDeleteDataVolumeMsg,
    APIDetachDataVolumeFromVmMsg,
    APIExpungeDataVolumeMsg,
    APIRecoverDataVolumeMsg,
)
from mn.volume.service import DELETION_POLICY
from tests.support.vm_world import GIB, assert_consistent, build_world, start_vm_node, stop_vm_node, totals


@pytest.fixture
async def node(sqlite_url):
    node = await start_vm_node(sqlite_url)
    yield node
    await stop_vm_node(node)


async def call(node, msg):
    return await node.intercept_and_call(msg)


async def failure(coro) -> OperationError:
    with pytest.raises(OperationError) as info:
        await coro
    return info.value


async def used(node, world):
    result = await node.db.run(lambda s: totals(s, world))
    assert_consistent(result)
    return result


async def new_vm(node, world, **kw):
    return (await call(node, APICreateVmInstanceMsg(name="vm", instanceOfferingUuid=world.offering,
                                                    imageUuid=world.image, l3NetworkUuids=[world.l3], **kw))).inventory


async def test_a_volume_without_storage_gets_it_when_attached(node):
    world = await node.db.run(lambda s: build_world(s, image_size=10 * GIB, disk_size=5 * GIB))
    vm = await new_vm(node, world)
    volume = (await call(node, APICreateDataVolumeMsg(name="data", diskOfferingUuid=world.disk_offering))).inventory
    assert (volume.status, volume.primaryStorageUuid, volume.size, volume.type) == (
        "NotInstantiated", None, 5 * GIB, "Data")
    assert (await used(node, world)).ps_used == 10 * GIB
    attached = (await call(node, APIAttachDataVolumeToVmMsg(vmInstanceUuid=vm.uuid, volumeUuid=volume.uuid))).inventory
    assert (attached.status, attached.primaryStorageUuid, attached.vmInstanceUuid, attached.deviceId) == (
        "Ready", world.ps, vm.uuid, 1)
    assert (await used(node, world)).ps_used == 15 * GIB
    err = await failure(call(node, APIAttachDataVolumeToVmMsg(vmInstanceUuid=vm.uuid, volumeUuid=volume.uuid)))
    assert err.error.code == "SYS.1006" and "has been attached" in err.error.details
    detached = (await call(node, APIDetachDataVolumeFromVmMsg(uuid=volume.uuid))).inventory
    assert (detached.vmInstanceUuid, detached.deviceId, detached.lastVmInstanceUuid) == (None, None, vm.uuid)
    err = await failure(call(node, APIDetachDataVolumeFromVmMsg(uuid=volume.uuid)))
    assert "not attached to any vm" in err.error.details
    # It may go to the VM again, also a stopped one.
    await call(node, APIStopVmInstanceMsg(uuid=vm.uuid))
    again = (await call(node, APIAttachDataVolumeToVmMsg(vmInstanceUuid=vm.uuid, volumeUuid=volume.uuid))).inventory
    assert again.vmInstanceUuid == vm.uuid


async def test_a_failed_attach_gives_the_storage_back_and_leaves_the_volume_detached(node):
    world = await node.db.run(lambda s: build_world(s))
    vm = await new_vm(node, world)
    volume = (await call(node, APICreateDataVolumeMsg(name="data", diskSize=GIB))).inventory
    before = await used(node, world)
    await SIMULATED_FAILURES.update("attachVolume")
    try:
        err = await failure(call(node, APIAttachDataVolumeToVmMsg(vmInstanceUuid=vm.uuid, volumeUuid=volume.uuid)))
    finally:
        await SIMULATED_FAILURES.update("")
    assert err.error.code == "VM.1005" and "simulated failure: attachVolume" in err.error.details
    after = await node.services["volume"].inventory(volume.uuid)
    assert (after.status, after.vmInstanceUuid, after.primaryStorageUuid) == ("NotInstantiated", None, None)
    assert await used(node, world) == before


async def test_delete_recover_and_expunge_a_data_volume(node):
    world = await node.db.run(lambda s: build_world(s, disk_size=5 * GIB))
    vm = await new_vm(node, world)
    volume = (await call(node, APICreateDataVolumeMsg(name="d", diskSize=2 * GIB,
                                                      primaryStorageUuid=world.ps))).inventory
    assert (volume.status, volume.primaryStorageUuid) == ("Ready", world.ps)
    await call(node, APIAttachDataVolumeToVmMsg(vmInstanceUuid=vm.uuid, volumeUuid=volume.uuid))
    # Deleting an attached volume detaches it first; Delay keeps it (and its storage).
    await call(node, APIDeleteDataVolumeMsg(uuid=volume.uuid))
    state = await node.services["volume"].inventory(volume.uuid)
    assert (state.status, state.vmInstanceUuid) == ("Deleted", None)
    before = (await used(node, world)).ps_used
    err = await failure(call(node, APIAttachDataVolumeToVmMsg(vmInstanceUuid=vm.uuid, volumeUuid=volume.uuid)))
    assert err.error.code == "SYS.1006"
    assert (await call(node, APIRecoverDataVolumeMsg(uuid=volume.uuid))).inventory.status == "Ready"
    err = await failure(call(node, APIExpungeDataVolumeMsg(uuid=volume.uuid)))
    assert "not deleted yet" in err.error.details
    await call(node, APIDeleteDataVolumeMsg(uuid=volume.uuid))
    await call(node, APIExpungeDataVolumeMsg(uuid=volume.uuid))
    after = await used(node, world)
    assert before - after.ps_used == 2 * GIB and after.volumes == 1
    await call(node, APIDeleteDataVolumeMsg(uuid=volume.uuid))  # gone: still a success
    await call(node, APIExpungeDataVolumeMsg(uuid=volume.uuid))


async def test_direct_deletion_expunges_and_a_root_volume_cannot_be_deleted(node):
    world = await node.db.run(lambda s: build_world(s))
    vm = await new_vm(node, world)
    err = await failure(call(node, APIDeleteDataVolumeMsg(uuid=vm.rootVolumeUuid)))
    assert err.error.code == "SYS.1007" and "can't be deleted" in err.error.details
    volume = (await call(node, APICreateDataVolumeMsg(name="d", diskSize=GIB, primaryStorageUuid=world.ps))).inventory
    await DELETION_POLICY.update("Direct")
    try:
        await call(node, APIDeleteDataVolumeMsg(uuid=volume.uuid))
    finally:
        await DELETION_POLICY.update("Delay")
    left = await used(node, world)
    assert (left.volumes, left.ps_used) == (1, 10 * GIB)


async def test_bad_sizes_and_full_storage_are_refused_leaving_nothing(node):
    world = await node.db.run(lambda s: build_world(s, ps_capacity=20 * GIB))
    err = await failure(call(node, APICreateDataVolumeMsg(name="d")))
    assert err.error.code == "SYS.1007"
    err = await failure(call(node, APICreateDataVolumeMsg(name="d", diskSize=30 * GIB, primaryStorageUuid=world.ps)))
    assert err.error.code == "SYS.1006" and "has not" in err.error.details
    assert (await used(node, world)).volumes == 0


async def test_local_storage_volumes_live_on_the_vms_host(node):
    world = await node.db.run(lambda s: build_world(s, ps_type="LocalStorage", ps_capacity=100 * GIB))
    vm = await new_vm(node, world, hostUuid=world.hosts[0])
    volume = (await call(node, APICreateDataVolumeMsg(name="d", diskSize=GIB))).inventory
    await call(node, APIAttachDataVolumeToVmMsg(vmInstanceUuid=vm.uuid, volumeUuid=volume.uuid))

    def shares(session):
        from sqlalchemy import select

        from mn.db.models.storage import LocalStorageHostRefVO, LocalStorageResourceRefVO
        refs = {r.resourceUuid: r.hostUuid for r in session.scalars(select(LocalStorageResourceRefVO))}
        free = {r.hostUuid: r.availableCapacity for r in session.scalars(select(LocalStorageHostRefVO))}
        return refs, free

    refs, free = await node.db.run(shares)
    assert refs == {vm.rootVolumeUuid: world.hosts[0], volume.uuid: world.hosts[0]}
    assert free == {world.hosts[0]: 100 * GIB - 11 * GIB, world.hosts[1]: 100 * GIB}
    # A volume made on the other host's disk cannot go to this VM.
    other = (await call(node, APICreateDataVolumeMsg(name="o", diskSize=GIB, primaryStorageUuid=world.ps,
                                                     systemTags=[f"localStorage::hostUuid::{world.hosts[1]}"]))
             ).inventory
    err = await failure(call(node, APIAttachDataVolumeToVmMsg(vmInstanceUuid=vm.uuid, volumeUuid=other.uuid)))
    assert "local storage of host" in err.error.details
    assert (await used(node, world)).ps_used == 12 * GIB
