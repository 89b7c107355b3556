"""The configuration service over SQLite and the memory bus: instance and disk
offerings created, checked as ZStack checks them, updated, enabled/disabled,
deleted (with their tags) and queried."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from mn.api.message import QueryCondition
from mn.api.query import QueryEngine
from mn.cascade import CascadeExtension, DeletionRefused
from mn.db.models.offering import DiskOfferingVO, InstanceOfferingVO
from mn.db.models.tag import UserTagVO
from mn.errors import OperationError, SysErrors
from mn.offering.messages import (
    APIChangeDiskOfferingStateMsg,
    APIChangeInstanceOfferingStateMsg,
    APICreateDiskOfferingMsg,
    APICreateInstanceOfferingMsg,
    APIDeleteDiskOfferingMsg,
    APIDeleteInstanceOfferingMsg,
    APIQueryDiskOfferingMsg,
    APIQueryInstanceOfferingMsg,
    APIUpdateDiskOfferingMsg,
    APIUpdateInstanceOfferingMsg,
)
from mn.offering.service import OfferingService
from tests.support.small_node import SmallNode

MiB, GiB = 1024 ** 2, 1024 ** 3


@pytest.fixture
async def node(sqlite_url):
    node = SmallNode(sqlite_url)
    await node.start(OfferingService)
    yield node
    await node.stop()


def rows(node, model, *where) -> int:
    with node.db.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


async def failure(call) -> OperationError:
    with pytest.raises(OperationError) as excinfo:
        await call
    return excinfo.value


async def instance_offering(node, name="small", cpu=1, memory=512 * MiB, **kw):
    return (await node.intercept_and_call(APICreateInstanceOfferingMsg(
        name=name, cpuNum=cpu, memorySize=memory, **kw))).inventory


async def disk_offering(node, name="disk", size=10 * GiB, **kw):
    return (await node.intercept_and_call(APICreateDiskOfferingMsg(name=name, diskSize=size, **kw))).inventory


async def test_create_instance_offering_with_zstacks_defaults(node):
    offering = await instance_offering(node, "m1", 2, 2 * GiB, description="two", userTags=["web"])
    assert (offering.name, offering.description, offering.cpuNum, offering.memorySize) == ("m1", "two", 2, 2 * GiB)
    assert (offering.state, offering.type, offering.allocatorStrategy) == (
        "Enabled", "UserVm", "LeastVmPreferredHostAllocatorStrategy")
    assert (offering.cpuSpeed, offering.reservedMemorySize, offering.sortKey) == (0, 0, 0)
    with node.db.session() as s:
        assert s.get(InstanceOfferingVO, offering.uuid).duration == "Permanent"
    assert rows(node, UserTagVO, UserTagVO.resourceUuid == offering.uuid) == 1
    chosen = await instance_offering(node, "m2", allocatorStrategy="DefaultHostAllocatorStrategy", sortKey=3,
                                     reservedMemorySize=128 * MiB)
    assert (chosen.allocatorStrategy, chosen.sortKey, chosen.reservedMemorySize) == (
        "DefaultHostAllocatorStrategy", 3, 128 * MiB)


@pytest.mark.parametrize("kw, words", [
    ({"memorySize": 16 * MiB - 1}, "is less than 16M"),
    ({"reservedMemorySize": 1024 * MiB}, "is greater than memory size"),
    ({"allocatorStrategy": "Nowhere"}, "unsupported host allocation strategy[Nowhere]"),
    ({"type": "VirtualRouter"}, "unsupported instance offering type[VirtualRouter]"),
])
async def test_instance_offerings_zstack_refuses(node, kw, words):
    msg = APICreateInstanceOfferingMsg(**{"name": "bad", "cpuNum": 1, "memorySize": 512 * MiB, **kw})
    for call in (node.intercept_and_call(msg), node.call(msg)):  # the handler checks too
        err = await failure(call)
        assert err.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value and words in err.error.details
    assert rows(node, InstanceOfferingVO) == 0


def test_cpu_and_memory_ranges_are_parameter_checks():
    for kw in ({"cpuNum": 0}, {"cpuNum": 1025}, {"memorySize": 0}, {"reservedMemorySize": -1}):
        with pytest.raises(ValueError):
            APICreateInstanceOfferingMsg(**{"name": "x", "cpuNum": 1, "memorySize": GiB, **kw})
    with pytest.raises(ValueError):
        APICreateDiskOfferingMsg(name="x", diskSize=0)


async def test_update_change_state_and_delete_instance_offering(node):
    offering = await instance_offering(node, userTags=["t"])
    updated = (await node.intercept_and_call(APIUpdateInstanceOfferingMsg(
        uuid=offering.uuid, name="renamed", allocatorStrategy="DefaultHostAllocatorStrategy"))).inventory
    assert (updated.name, updated.description, updated.allocatorStrategy, updated.cpuNum) == (
        "renamed", None, "DefaultHostAllocatorStrategy", 1)
    err = await failure(node.intercept_and_call(APIUpdateInstanceOfferingMsg(uuid=offering.uuid,
                                                                             allocatorStrategy="bogus")))
    assert err.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    for event, state in (("disable", "Disabled"), ("disable", "Disabled"), ("enable", "Enabled")):
        changed = (await node.call(APIChangeInstanceOfferingStateMsg(uuid=offering.uuid,
                                                                     stateEvent=event))).inventory
        assert changed.state == state
    await node.call(APIDeleteInstanceOfferingMsg(uuid=offering.uuid))
    assert rows(node, InstanceOfferingVO) == 0 and rows(node, UserTagVO) == 0
    await node.call(APIDeleteInstanceOfferingMsg(uuid=offering.uuid))  # gone already: still a success
    err = await failure(node.call(APIChangeInstanceOfferingStateMsg(uuid=offering.uuid, stateEvent="enable")))
    assert err.error.code == SysErrors.RESOURCE_NOT_FOUND.value


async def test_disk_offering_life(node):
    offering = await disk_offering(node, "d1", 20 * GiB, sortKey=2, userTags=["ssd"])
    assert (offering.diskSize, offering.state, offering.type, offering.sortKey, offering.allocatorStrategy) == (
        20 * GiB, "Enabled", "zstack", 2, "DefaultPrimaryStorageAllocationStrategy")
    local = await disk_offering(node, "d2", allocationStrategy="LocalPrimaryStorageStrategy")
    assert local.allocatorStrategy == "LocalPrimaryStorageStrategy"
    err = await failure(disk_offering(node, "d3", allocationStrategy="Anywhere"))
    assert "unsupported primary storage allocation strategy[Anywhere]" in err.error.details

    updated = (await node.call(APIUpdateDiskOfferingMsg(uuid=offering.uuid, description="fast"))).inventory
    assert (updated.name, updated.description, updated.diskSize) == ("d1", "fast", 20 * GiB)
    disabled = (await node.call(APIChangeDiskOfferingStateMsg(uuid=offering.uuid, stateEvent="disable"))).inventory
    assert disabled.state == "Disabled"
    await node.call(APIDeleteDiskOfferingMsg(uuid=offering.uuid))
    assert rows(node, DiskOfferingVO) == 1 and rows(node, UserTagVO) == 0


async def test_a_resource_using_an_offering_can_refuse_its_permissive_deletion(node):
    offering = await disk_offering(node)

    class VolumesOfOffering(CascadeExtension):
        resource_type = "TestVolumeVO"
        parents = ("DiskOfferingVO",)

        async def children(self, ctx, parent_type, parent_uuids):
            return ["v1"]

        async def check(self, ctx, uuids):
            raise DeletionRefused("v1", "in use")

        async def delete(self, ctx, uuids):
            pass

    node.cascade.register(VolumesOfOffering())
    err = await failure(node.call(APIDeleteDiskOfferingMsg(uuid=offering.uuid)))
    assert err.error.code == SysErrors.DELETE_RESOURCE_ERROR.value and "in use" in err.error.details
    assert rows(node, DiskOfferingVO) == 1
    await node.call(APIDeleteDiskOfferingMsg(uuid=offering.uuid, deleteMode="Enforcing"))
    assert rows(node, DiskOfferingVO) == 0


async def test_queries(node):
    await instance_offering(node, "small", 1, GiB)
    await instance_offering(node, "large", 8, 16 * GiB)
    await disk_offering(node, "ten", 10 * GiB)
    engine = QueryEngine(node)
    reply = await engine.query(APIQueryInstanceOfferingMsg(conditions=[
        QueryCondition(name="cpuNum", op=">=", value="4"), QueryCondition(name="state", op="=", value="Enabled")]))
    assert [i["name"] for i in reply.inventories] == ["large"]
    reply = await engine.query(APIQueryDiskOfferingMsg(conditions=[
        QueryCondition(name="diskSize", op="=", value=str(10 * GiB))]))
    assert [i["name"] for i in reply.inventories] == ["ten"]
