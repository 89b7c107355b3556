"""VMs, nics and volumes when the resources they depend on go, with every
resource service running (SQLite): a zone deleted leaves nothing; a host
deleted stops its VMs; an L3 network deleted detaches its nics; a primary
storage deleted expunges the VMs on it; a host entering maintenance sends its
VMs elsewhere."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from mn.cluster.service import ClusterService
from mn.db.models.host import HostCapacityVO, HostVO
from mn.db.models.network import UsedIpVO
from mn.db.models.storage import PrimaryStorageVO
from mn.db.models.vm import VmInstanceVO, VmNicVO
from mn.db.models.volume import VolumeVO
from mn.host.messages import APIChangeHostStateMsg
from mn.host.service import HostService
from mn.image.service import ImageService
from mn.network.l2.service import L2NetworkService
from mn.network.l3.service import L3NetworkService
from mn.offering.service import OfferingService
from mn.storage.backup.service import BackupStorageService
from mn.storage.primary.service import PrimaryStorageService
from mn.vm.messages import APICreateVmInstanceMsg
from mn.volume.messages import APIAttachDataVolumeToVmMsg, APICreateDataVolumeMsg
from mn.zone.service import ZoneService
from tests.support.vm_world import GIB, assert_consistent, build_world, start_vm_node, stop_vm_node, totals

SERVICES = (ZoneService, ClusterService, HostService, PrimaryStorageService, BackupStorageService, ImageService,
            OfferingService, L2NetworkService, L3NetworkService)


@pytest.fixture
async def node(sqlite_url):
    node = await start_vm_node(sqlite_url, *SERVICES)
    yield node
    await stop_vm_node(node)


@pytest.fixture
async def world(node):
    return await node.db.run(lambda s: build_world(s, vm_cpu=2, vm_memory=GIB))


async def new_vm(node, world, name, **kw):
    return (await node.intercept_and_call(APICreateVmInstanceMsg(
        name=name, instanceOfferingUuid=world.offering, imageUuid=world.image, l3NetworkUuids=[world.l3],
        **kw))).inventory


async def count(node, model, *where) -> int:
    return await node.db.run(lambda s: s.scalar(select(func.count()).select_from(model).where(*where)))


async def test_deleting_the_zone_leaves_nothing(node, world):
    vms = [await new_vm(node, world, f"vm{i}", dataDiskOfferingUuids=[world.disk_offering]) for i in range(3)]
    stopped = await new_vm(node, world, "stopped", strategy="JustCreate")
    volume = (await node.intercept_and_call(APICreateDataVolumeMsg(name="d", diskSize=GIB))).inventory
    await node.intercept_and_call(APIAttachDataVolumeToVmMsg(vmInstanceUuid=vms[0].uuid, volumeUuid=volume.uuid))
    assert stopped.state == "Stopped"
    await node.cascade.delete("ZoneVO", [world.zone])
    for model in (VmInstanceVO, VmNicVO, VolumeVO, UsedIpVO, HostVO, HostCapacityVO, PrimaryStorageVO):
        assert await count(node, model) == 0, model.__name__


async def test_deleting_a_host_stops_its_vms_and_keeps_them(node, world):
    vm = await new_vm(node, world, "vm", hostUuid=world.hosts[0])
    other = await new_vm(node, world, "other", hostUuid=world.hosts[1])
    await node.cascade.delete("HostVO", [world.hosts[0]])
    inventory = await node.services["vmInstance"].inventory(vm.uuid)
    assert (inventory.state, inventory.hostUuid, inventory.lastHostUuid) == ("Stopped", None, None)
    assert inventory.vmNics[0].ip == vm.vmNics[0].ip  # a stopped VM keeps its address
    assert (await node.services["vmInstance"].inventory(other.uuid)).state == "Running"
    used = await node.db.run(lambda s: totals(s, world))
    assert (used.vms, used.host_cpu_used) == (2, 2)
    assert_consistent(used)


async def test_deleting_an_l3_network_detaches_its_nics(node, world):
    vm = await new_vm(node, world, "vm")
    await node.cascade.delete("L3NetworkVO", [world.l3])
    inventory = await node.services["vmInstance"].inventory(vm.uuid)
    assert (inventory.state, inventory.vmNics, inventory.defaultL3NetworkUuid) == ("Running", [], None)
    assert await count(node, UsedIpVO) == 0


async def test_deleting_the_primary_storage_expunges_the_vms_on_it(node, world):
    await new_vm(node, world, "vm")
    await node.intercept_and_call(APICreateDataVolumeMsg(name="d", diskSize=GIB, primaryStorageUuid=world.ps))
    await node.cascade.delete("PrimaryStorageVO", [world.ps])
    assert await count(node, VmInstanceVO) == 0 and await count(node, VolumeVO) == 0
    assert await count(node, UsedIpVO) == 0
    assert (await node.db.run(lambda s: totals(s, world))).host_cpu_used == 0


async def test_a_host_entering_maintenance_migrates_its_vms_or_stops_them(node, world):
    moved = await new_vm(node, world, "moved", hostUuid=world.hosts[0])
    await node.intercept_and_call(APIChangeHostStateMsg(uuid=world.hosts[0], stateEvent="maintain"))
    after = await node.services["vmInstance"].inventory(moved.uuid)
    assert (after.state, after.hostUuid) == ("Running", world.hosts[1])
    # With the other host in maintenance too, nowhere is left to go: the VM is stopped.
    await node.intercept_and_call(APIChangeHostStateMsg(uuid=world.hosts[1], stateEvent="maintain"))
    after = await node.services["vmInstance"].inventory(moved.uuid)
    assert (after.state, after.hostUuid, after.lastHostUuid) == ("Stopped", None, world.hosts[1])
    used = await node.db.run(lambda s: totals(s, world))
    assert used.host_cpu_used == 0
    assert_consistent(used)
