"""The primary storage service over SQLite and the memory bus."""

from __future__ import annotations

import importlib

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from mn.api.query import QueryEngine
from mn.cluster.messages import APICreateClusterMsg
from mn.cluster.service import ClusterService
from mn.db.models.storage import (
    PrimaryStorageCapacityVO,
    PrimaryStorageClusterRefVO,
    PrimaryStorageVO,
)
from mn.db.models.tag import UserTagVO
from mn.errors import OperationError, SysErrors
from mn.storage.primary.extensions import PrimaryStorageStateExtension
from mn.storage.primary.messages import (
    APIAddLocalPrimaryStorageMsg,
    APIAddSimulatorPrimaryStorageMsg,
    APIAttachPrimaryStorageToClusterMsg,
    APIChangePrimaryStorageStateMsg,
    APIDeletePrimaryStorageMsg,
    APIDetachPrimaryStorageFromClusterMsg,
    APIGetPrimaryStorageCapacityMsg,
    APIGetPrimaryStorageTypesMsg,
    APIQueryPrimaryStorageMsg,
    APIReconnectPrimaryStorageMsg,
    APIUpdatePrimaryStorageMsg,
)
from mn.storage.primary.service import PrimaryStorageService
from mn.zone.messages import APICreateZoneMsg, APIDeleteZoneMsg
from mn.zone.service import ZoneService
from tests.support.small_node import SmallNode

GIB = 1 << 30


@pytest.fixture
async def node(sqlite_url):
    node = SmallNode(sqlite_url)
    await node.start(ZoneService, ClusterService, PrimaryStorageService)
    node.query = QueryEngine(node)
    yield node
    await node.stop()


@pytest.fixture
async def zone(node):
    return (await node.call(APICreateZoneMsg(name="zone1"))).inventory


@pytest.fixture
async def cluster(node, zone):
    return (await node.call(APICreateClusterMsg(zoneUuid=zone.uuid, name="c1",
                                                hypervisorType="Simulator"))).inventory


def rows(node, model, *where) -> int:
    with node.db.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


async def add_simulator(node, zone_uuid, name="ps1", **kw):
    kw.setdefault("url", f"nfs://simulator/{name}")
    kw.setdefault("totalCapacity", 100 * GIB)
    kw.setdefault("availableCapacity", 100 * GIB)
    return (await node.call(APIAddSimulatorPrimaryStorageMsg(zoneUuid=zone_uuid, name=name, **kw))).inventory


async def failure(call) -> OperationError:
    with pytest.raises(OperationError) as excinfo:
        await call
    return excinfo.value


async def test_add_simulator_primary_storage(node, zone):
    ps = await add_simulator(node, zone.uuid, description="sim", totalPhysicalCapacity=5 * GIB,
                             availablePhysicalCapacity=4 * GIB, userTags=["fast"])
    assert ps.model_dump(exclude={"uuid", "createDate", "lastOpDate"}) == {
        "zoneUuid": zone.uuid, "name": "ps1", "url": "nfs://simulator/ps1", "description": "sim",
        "totalCapacity": 100 * GIB, "availableCapacity": 100 * GIB, "totalPhysicalCapacity": 5 * GIB,
        "availablePhysicalCapacity": 4 * GIB, "systemUsedCapacity": None, "type": "SimulatorPrimaryStorage",
        "state": "Enabled", "status": "Connected", "mountPath": f"/primarystoragesimulator/{ps.uuid}",
        "attachedClusterUuids": []}
    assert rows(node, UserTagVO, UserTagVO.resourceUuid == ps.uuid, UserTagVO.tag == "fast") == 1


async def test_zstack_defaults_of_the_simulator_capacities(node, zone):
    ps = (await node.call(APIAddSimulatorPrimaryStorageMsg(zoneUuid=zone.uuid, name="d", url="u"))).inventory
    assert (ps.totalCapacity, ps.availableCapacity, ps.totalPhysicalCapacity,
            ps.availablePhysicalCapacity) == (100000000, 10000000, 10000000, 10000000)


async def test_add_local_storage_starts_empty(node, zone):
    ps = (await node.call(APIAddLocalPrimaryStorageMsg(zoneUuid=zone.uuid, name="local",
                                                       url="/zstack_ps"))).inventory
    assert (ps.type, ps.mountPath, ps.totalCapacity, ps.availableCapacity, ps.systemUsedCapacity) == (
        "LocalStorage", "/zstack_ps", 0, 0, 0)


@pytest.mark.parametrize("cls, fields, message", [
    (APIAddSimulatorPrimaryStorageMsg, {"totalCapacity": -1}, "totalCapacity"),
    (APIAddSimulatorPrimaryStorageMsg, {"totalCapacity": 10, "availableCapacity": 11},
     "availableCapacity 11 is more than totalCapacity 10"),
    (APIAddSimulatorPrimaryStorageMsg, {"type": "NFS"}, "type"),
    (APIAddSimulatorPrimaryStorageMsg, {"name": "n" * 256}, "name"),
    (APIAddLocalPrimaryStorageMsg, {"url": "relative/path"}, "is not an absolute path"),
    (APIAddLocalPrimaryStorageMsg, {"url": "/proc/x"}, "invalid folder"),
    (APIAddLocalPrimaryStorageMsg, {"type": "SimulatorPrimaryStorage"}, "type"),
])
def test_bad_parameters_fail_at_construction(cls, fields, message):
    with pytest.raises(ValidationError, match=message):
        cls(**{"zoneUuid": "a" * 32, "name": "ps", "url": "/data", **fields})


async def test_a_primary_storage_needs_an_existing_zone(node):
    err = await failure(add_simulator(node, "e" * 32))
    assert err.error.code == SysErrors.RESOURCE_NOT_FOUND.value
    assert rows(node, PrimaryStorageVO) == rows(node, PrimaryStorageCapacityVO) == 0


async def test_attach_and_detach(node, zone, cluster):
    ps = await add_simulator(node, zone.uuid)
    attach = APIAttachPrimaryStorageToClusterMsg(clusterUuid=cluster.uuid, primaryStorageUuid=ps.uuid)
    attached = (await node.intercept_and_call(attach)).inventory
    assert attached.attachedClusterUuids == [cluster.uuid]

    err = await failure(node.intercept_and_call(attach))
    assert err.error.code == SysErrors.OPERATION_ERROR.value
    assert "has been attached" in err.error.details
    # The handler checks again (the interceptor ran on another MN, earlier).
    err = await failure(node.call(attach))
    assert err.error.code == SysErrors.OPERATION_ERROR.value
    assert rows(node, PrimaryStorageClusterRefVO) == 1

    detach = APIDetachPrimaryStorageFromClusterMsg(clusterUuid=cluster.uuid, primaryStorageUuid=ps.uuid)
    detached = (await node.intercept_and_call(detach)).inventory
    assert detached.attachedClusterUuids == []
    err = await failure(node.intercept_and_call(detach))
    assert err.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    assert "has not been attached" in err.error.details


async def test_attach_needs_the_same_zone_and_a_url_free_in_the_cluster(node, zone, cluster):
    other_zone = (await node.call(APICreateZoneMsg(name="zone2"))).inventory
    elsewhere = await add_simulator(node, other_zone.uuid, name="far")
    err = await failure(node.intercept_and_call(APIAttachPrimaryStorageToClusterMsg(
        clusterUuid=cluster.uuid, primaryStorageUuid=elsewhere.uuid)))
    assert err.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    assert "are not in the same zone" in err.error.details

    first = await add_simulator(node, zone.uuid, name="a", url="nfs://shared")
    second = await add_simulator(node, zone.uuid, name="b", url="nfs://shared")
    await node.call(APIAttachPrimaryStorageToClusterMsg(clusterUuid=cluster.uuid, primaryStorageUuid=first.uuid))
    err = await failure(node.call(APIAttachPrimaryStorageToClusterMsg(clusterUuid=cluster.uuid,
                                                                       primaryStorageUuid=second.uuid)))
    assert err.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    assert "url[nfs://shared] has been occupied" in err.error.details
    assert rows(node, PrimaryStorageClusterRefVO) == 1


async def test_update_changes_only_what_is_given(node, zone):
    ps = await add_simulator(node, zone.uuid, description="keep")
    updated = (await node.call(APIUpdatePrimaryStorageMsg(uuid=ps.uuid, name="renamed", url="nfs://new"))).inventory
    assert (updated.name, updated.description, updated.url) == ("renamed", "keep", "nfs://new")
    err = await failure(node.call(APIUpdatePrimaryStorageMsg(uuid="d" * 32, name="x")))
    assert err.error.code == SysErrors.RESOURCE_NOT_FOUND.value


class RefuseMaintenance(PrimaryStorageStateExtension):
    def __init__(self):
        self.seen = []

    async def pre_change(self, storage, event, next_state):
        if next_state == "Maintenance":
            raise OperationError.of(SysErrors.OPERATION_ERROR, f"VMs on {storage.name} cannot stop")

    async def before_change(self, storage, event, next_state):
        self.seen.append(("before", storage.state, next_state))

    async def after_change(self, storage, event, previous_state):
        self.seen.append(("after", previous_state, storage.state))


async def test_change_state_follows_zstacks_machine_and_asks_extensions(node, zone):
    ps = await add_simulator(node, zone.uuid)
    for event, state in [("disable", "Disabled"), ("maintain", "Maintenance"), ("enable", "Enabled"),
                         ("deleting", "Deleting"), ("enable", "Enabled")]:
        changed = (await node.call(APIChangePrimaryStorageStateMsg(uuid=ps.uuid, stateEvent=event))).inventory
        assert changed.state == state
    extension = RefuseMaintenance()
    node.services["storage.primary"].add_state_extension(extension)
    err = await failure(node.call(APIChangePrimaryStorageStateMsg(uuid=ps.uuid, stateEvent="maintain")))
    assert err.error.code == SysErrors.CHANGE_RESOURCE_STATE_ERROR.value
    assert "VMs on ps1 cannot stop" in err.error.details
    assert rows(node, PrimaryStorageVO, PrimaryStorageVO.state == "Enabled") == 1
    await node.call(APIChangePrimaryStorageStateMsg(uuid=ps.uuid, stateEvent="disable"))
    assert extension.seen == [("before", "Enabled", "Disabled"), ("after", "Enabled", "Disabled")]
    with pytest.raises(ValidationError):
        APIChangePrimaryStorageStateMsg(uuid=ps.uuid, stateEvent="pause")


async def test_reconnect_marks_connected(node, zone):
    ps = await add_simulator(node, zone.uuid)
    with node.db.session() as s:
        s.get(PrimaryStorageVO, ps.uuid).status = "Disconnected"
    assert (await node.call(APIReconnectPrimaryStorageMsg(uuid=ps.uuid))).inventory.status == "Connected"


async def test_delete_is_refused_while_attached_and_succeeds_when_gone(node, zone, cluster):
    ps = await add_simulator(node, zone.uuid, userTags=["t"])
    await node.call(APIAttachPrimaryStorageToClusterMsg(clusterUuid=cluster.uuid, primaryStorageUuid=ps.uuid))
    err = await failure(node.intercept_and_call(APIDeletePrimaryStorageMsg(uuid=ps.uuid)))
    assert err.error.code == SysErrors.OPERATION_ERROR.value
    assert f"still being attached to cluster[uuid:{cluster.uuid}]" in err.error.details
    assert rows(node, PrimaryStorageVO) == 1

    await node.call(APIDetachPrimaryStorageFromClusterMsg(clusterUuid=cluster.uuid, primaryStorageUuid=ps.uuid))
    await node.intercept_and_call(APIDeletePrimaryStorageMsg(uuid=ps.uuid))
    assert rows(node, PrimaryStorageVO) == rows(node, PrimaryStorageCapacityVO) == 0
    assert rows(node, UserTagVO, UserTagVO.resourceUuid == ps.uuid) == 0
    await node.intercept_and_call(APIDeletePrimaryStorageMsg(uuid=ps.uuid))  # gone: succeeds


async def test_deleting_a_zone_deletes_its_primary_storage_attached_or_not(node, zone, cluster):
    attached = await add_simulator(node, zone.uuid, name="a")
    await add_simulator(node, zone.uuid, name="b")
    await node.call(APIAttachPrimaryStorageToClusterMsg(clusterUuid=cluster.uuid,
                                                        primaryStorageUuid=attached.uuid))
    await node.call(APIDeleteZoneMsg(uuid=zone.uuid))
    assert rows(node, PrimaryStorageVO) == rows(node, PrimaryStorageCapacityVO) == 0
    assert rows(node, PrimaryStorageClusterRefVO) == 0


async def test_capacity_sums_by_storage_cluster_or_zone(node, zone, cluster):
    a = await add_simulator(node, zone.uuid, name="a", totalCapacity=10, availableCapacity=5,
                            totalPhysicalCapacity=7, availablePhysicalCapacity=3)
    b = await add_simulator(node, zone.uuid, name="b", totalCapacity=20, availableCapacity=20,
                            totalPhysicalCapacity=0, availablePhysicalCapacity=0)
    await node.call(APIAttachPrimaryStorageToClusterMsg(clusterUuid=cluster.uuid, primaryStorageUuid=b.uuid))

    async def capacity(**kw):
        reply = await node.call(APIGetPrimaryStorageCapacityMsg(**kw))
        return (reply.totalCapacity, reply.availableCapacity, reply.totalPhysicalCapacity,
                reply.availablePhysicalCapacity)

    assert await capacity(primaryStorageUuids=[a.uuid]) == (10, 5, 7, 3)
    assert await capacity(clusterUuids=[cluster.uuid]) == (20, 20, 0, 0)
    assert await capacity(zoneUuids=[zone.uuid]) == (30, 25, 7, 3)
    assert await capacity(all=True) == (30, 25, 7, 3)
    with pytest.raises(ValidationError, match="at least one be none-empty list"):
        APIGetPrimaryStorageCapacityMsg()
    types = (await node.call(APIGetPrimaryStorageTypesMsg())).primaryStorageTypes
    assert set(types) == {"LocalStorage", "SimulatorPrimaryStorage"}


async def test_query_capacity_fields_and_cluster_refs(node, zone, cluster):
    big = await add_simulator(node, zone.uuid, name="big", totalCapacity=500 * GIB, availableCapacity=400 * GIB)
    await add_simulator(node, zone.uuid, name="small", totalCapacity=GIB, availableCapacity=GIB)
    await node.call(APIAttachPrimaryStorageToClusterMsg(clusterUuid=cluster.uuid, primaryStorageUuid=big.uuid))

    async def names(*conditions, **kw):
        msg = APIQueryPrimaryStorageMsg(conditions=[{"name": n, "op": o, "value": v} for n, o, v in conditions],
                                        **kw)
        return [inv["name"] for inv in (await node.query.query(msg)).inventories]

    assert await names(("availableCapacity", ">", str(100 * GIB))) == ["big"]
    assert await names(sortBy="totalCapacity") == ["small", "big"]
    assert await names(("clusterRef.clusterUuid", "=", cluster.uuid)) == ["big"]
    assert await names(("clusterRef.cluster.name", "=", "c1")) == ["big"]
    assert await names(("zone.name", "=", "zone1"), sortBy="name") == ["big", "small"]
    [inventory] = (await node.query.query(APIQueryPrimaryStorageMsg(
        conditions=[{"name": "uuid", "op": "=", "value": big.uuid}]))).inventories
    assert inventory["attachedClusterUuids"] == [cluster.uuid]
    assert inventory["availableCapacity"] == 400 * GIB


async def test_detach_is_refused_while_vms_of_the_cluster_have_volumes_on_it(node, zone, cluster):
    from mn.db.models.vm import VmInstanceVO
    from mn.db.models.volume import VolumeVO

    importlib.import_module("mn.vm.inventory")  # VolumeInventory's relations name VmInstanceInventory
    ps = await add_simulator(node, zone.uuid)
    await node.call(APIAttachPrimaryStorageToClusterMsg(clusterUuid=cluster.uuid, primaryStorageUuid=ps.uuid))
    with node.db.session() as s:
        vm = VmInstanceVO(name="vm", zoneUuid=zone.uuid, clusterUuid=cluster.uuid, cpuNum=1, memorySize=GIB,
                          state="Stopped")
        s.add(vm)
        s.flush()
        s.add(VolumeVO(name="root", primaryStorageUuid=ps.uuid, vmInstanceUuid=vm.uuid, type="Root",
                       status="Ready", size=GIB))
        vm_uuid = vm.uuid

    detach = APIDetachPrimaryStorageFromClusterMsg(clusterUuid=cluster.uuid, primaryStorageUuid=ps.uuid)
    for call in (node.intercept_and_call(detach), node.call(detach)):
        err = await failure(call)
        assert err.error.code == SysErrors.OPERATION_ERROR.value
        assert f"VMs [{vm_uuid}] of the cluster have volumes on it" in err.error.details
    assert rows(node, PrimaryStorageClusterRefVO) == 1

    found = await node.query.query(APIQueryPrimaryStorageMsg(
        conditions=[{"name": "volume.name", "op": "=", "value": "root"}]))
    assert [inv["uuid"] for inv in found.inventories] == [ps.uuid]

    with node.db.session() as s:
        s.delete(s.get(VolumeVO, s.scalar(select(VolumeVO.uuid))))
    assert (await node.call(detach)).inventory.attachedClusterUuids == []
