"""A volume leaving its storage queues the deletion of its file, in the same
transaction, only for hypervisors whose volumes are files."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from mn.db.models.garbage_collector import GarbageCollectorVO
from mn.vm.hypervisor import SimulatorHypervisor
from mn.vm.messages import APICreateVmInstanceMsg, APIDestroyVmInstanceMsg, APIExpungeVmInstanceMsg
from mn.gc import runner_name
from mn.volume.bits import DeleteVolumeBitsGC
from tests.support.vm_world import build_world, start_vm_node, stop_vm_node


@pytest.fixture
async def node(sqlite_url):
    node = await start_vm_node(sqlite_url)
    yield node
    await stop_vm_node(node)


async def make_and_expunge(node) -> str:
    world = await node.db.run(lambda s: build_world(s, hosts=1))
    vm = (await node.intercept_and_call(APICreateVmInstanceMsg(
        name="vm", instanceOfferingUuid=world.offering, imageUuid=world.image, l3NetworkUuids=[world.l3]))).inventory
    await node.intercept_and_call(APIDestroyVmInstanceMsg(uuid=vm.uuid))
    await node.intercept_and_call(APIExpungeVmInstanceMsg(uuid=vm.uuid))
    return vm


def jobs(node) -> list[dict]:
    with node.db.session() as s:
        return [json.loads(vo.context) for vo in s.scalars(select(GarbageCollectorVO).where(
            GarbageCollectorVO.runnerClass == runner_name(DeleteVolumeBitsGC)))]


async def test_hosts_without_volume_files_queue_nothing(node):
    await make_and_expunge(node)
    assert jobs(node) == []


async def test_an_expunged_root_volume_queues_the_deletion_of_its_file(node, monkeypatch):
    monkeypatch.setattr(SimulatorHypervisor, "keeps_volume_bits", True)
    vm = await make_and_expunge(node)
    root = next(v for v in vm.allVolumes if v.type == "Root")
    [job] = jobs(node)
    assert (job["hostUuid"], job["installPath"], job["volumeUuid"]) == (vm.hostUuid, root.installPath, root.uuid)
