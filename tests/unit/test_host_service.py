"""The host service over SQLite and the memory bus: Simulator hosts from
adding to deleting, states, maintenance, reconnection, cascades and queries."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from mn.api.query import QueryEngine
from mn.cascade import CascadeExtension, DeletionRefused
from mn.cluster.messages import APIChangeClusterStateMsg, APICreateClusterMsg, APIDeleteClusterMsg
from mn.cluster.service import ClusterService
from mn.db.models.cluster import ClusterVO
from mn.db.models.host import HostCapacityVO, HostVO, SimulatorHostVO
from mn.db.models.tag import UserTagVO
from mn.errors import OperationError, SysErrors
from mn.globalconfig import REGISTRY
from mn.host.messages import (
    APIAddSimulatorHostMsg,
    APIChangeHostStateMsg,
    APIDeleteHostMsg,
    APIQueryHostMsg,
    APIReconnectHostMsg,
    APIUpdateHostMsg,
    ChangeHostConnectionStateMsg,
    HostStatusChangedEvent,
)
from mn.host.service import HostService
from mn.zone.messages import APIChangeZoneStateMsg, APICreateZoneMsg
from mn.zone.service import ZoneService
from tests.support.small_node import SmallNode

GIB = 1 << 30


@pytest.fixture
async def node(sqlite_url):
    # The process-wide registry: the host service reads the overcommit ratios from it.
    node = SmallNode(sqlite_url, registry=REGISTRY)
    await node.start(ZoneService, ClusterService, HostService)
    yield node
    await node.stop()


@pytest.fixture
async def zone(node):
    return (await node.call(APICreateZoneMsg(name="zone1"))).inventory


@pytest.fixture
async def cluster(node, zone):
    return (await node.call(APICreateClusterMsg(zoneUuid=zone.uuid, name="sim", hypervisorType="Simulator"))).inventory


@pytest.fixture
def status_events(node):
    events: list[HostStatusChangedEvent] = []
    node.bus.subscribe(HostStatusChangedEvent, events.append)
    return events


def rows(node, model, **where) -> int:
    with node.db.session() as s:
        return s.scalar(select(func.count()).select_from(model).filter_by(**where))


async def add_host(node, cluster_uuid, ip="10.0.0.1", name="host1", cpu=4, memory=8 * GIB, **kw):
    msg = APIAddSimulatorHostMsg(clusterUuid=cluster_uuid, managementIp=ip, name=name, cpuCapacity=cpu,
                                 memoryCapacity=memory, **kw)
    return (await node.intercept_and_call(msg)).inventory


async def failure(call) -> OperationError:
    with pytest.raises(OperationError) as excinfo:
        await call
    return excinfo.value


async def events_arrived(events: list, count: int) -> list:
    # Bus events are delivered by the loop after publish returns.
    for _ in range(200):
        if len(events) >= count:
            break
        await asyncio.sleep(0.01)
    return events


# -- adding ---------------------------------------------------------------------------


async def test_add_simulator_host_connects_at_once_with_its_capacity(node, zone, cluster, status_events):
    host = await add_host(node, cluster.uuid, description="rack 1", cpu=4, memory=8 * GIB)
    assert host.model_dump(exclude={"uuid", "createDate", "lastOpDate"}) == {
        "zoneUuid": zone.uuid, "name": "host1", "clusterUuid": cluster.uuid, "description": "rack 1",
        "managementIp": "10.0.0.1", "hypervisorType": "Simulator", "state": "Enabled", "status": "Connected",
        "totalCpuCapacity": 40, "availableCpuCapacity": 40, "cpuSockets": 0,
        "totalMemoryCapacity": 8 * GIB, "availableMemoryCapacity": 8 * GIB, "cpuNum": 4,
        "architecture": "x86_64"}
    with node.db.session() as s:
        sim = s.get(SimulatorHostVO, host.uuid)
        assert (sim.cpuCapacity, sim.memoryCapacity) == (4, 8 * GIB)
        cap = s.get(HostCapacityVO, host.uuid)
        assert (cap.totalPhysicalMemory, cap.availablePhysicalMemory) == (8 * GIB, 8 * GIB)
        # ZStack: a cluster without an architecture takes its first host's.
        assert s.get(ClusterVO, cluster.uuid).architecture == "x86_64"
    await events_arrived(status_events, 1)
    assert [(e.hostUuid, e.oldStatus, e.newStatus) for e in status_events] == [
        (host.uuid, "Connecting", "Connected")]
    assert status_events[0].inventory.status == "Connected"


async def test_a_simulator_host_needs_a_simulator_cluster(node, zone):
    kvm = (await node.call(APICreateClusterMsg(zoneUuid=zone.uuid, name="kvm", hypervisorType="KVM"))).inventory
    err = await failure(add_host(node, kvm.uuid))
    assert err.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    assert "is of hypervisor type KVM" in err.error.details
    # The handler checks too (the interceptor may be skipped by internal callers).
    err = await failure(node.call(APIAddSimulatorHostMsg(clusterUuid=kvm.uuid, managementIp="10.0.0.9",
                                                         name="h", cpuCapacity=1, memoryCapacity=GIB)))
    assert err.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    err = await failure(add_host(node, "c" * 32))
    assert err.error.code == SysErrors.RESOURCE_NOT_FOUND.value
    assert rows(node, HostVO) == rows(node, HostCapacityVO) == rows(node, SimulatorHostVO) == 0


async def test_a_management_ip_belongs_to_one_host(node, cluster):
    first = await add_host(node, cluster.uuid, ip="10.0.0.1")
    err = await failure(add_host(node, cluster.uuid, ip="10.0.0.1", name="again"))
    assert err.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    assert "there has been a host having managementIp[10.0.0.1]" in err.error.details
    # Concurrent adds with one address past the interceptor: the unique key decides.
    msgs = [APIAddSimulatorHostMsg(clusterUuid=cluster.uuid, managementIp="host-b.example.com", name=f"b{i}",
                                   cpuCapacity=1, memoryCapacity=GIB) for i in range(4)]
    results = await asyncio.gather(*(node.call(m) for m in msgs), return_exceptions=True)
    errors = [r for r in results if isinstance(r, OperationError)]
    assert len(errors) == 3 and all(e.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value for e in errors)
    assert rows(node, HostVO) == 2 and rows(node, HostCapacityVO) == 2 and rows(node, SimulatorHostVO) == 2
    assert rows(node, HostVO, uuid=first.uuid) == 1


@pytest.mark.parametrize("fields, message", [
    ({"managementIp": "999.1.1.1"}, "neither an IPv4 address nor a valid hostname"),
    ({"managementIp": "bad host"}, "neither an IPv4 address nor a valid hostname"),
    ({"managementIp": ""}, "managementIp"),
    ({"cpuCapacity": 0}, "cpuCapacity"),
    ({"cpuCapacity": 2**31}, "cpuCapacity"),
    ({"memoryCapacity": -1}, "memoryCapacity"),
    ({"name": "n" * 256}, "name"),
    ({"resourceUuid": "not-a-uuid"}, "resourceUuid"),
])
def test_bad_parameters_fail_at_construction(fields, message):
    fields = {"clusterUuid": "a" * 32, "name": "h", "managementIp": "10.0.0.1", "cpuCapacity": 1,
              "memoryCapacity": GIB, **fields}
    with pytest.raises(ValidationError, match=message):
        APIAddSimulatorHostMsg(**fields)


async def test_a_failing_after_add_extension_removes_the_host(node, cluster):
    class RefuseHosts:
        async def after_add_host(self, host):
            assert host.status == "Connected"
            raise OperationError.of(SysErrors.OPERATION_ERROR, "no local storage for this host")

    node.services["host"].add_extension(RefuseHosts())
    err = await failure(add_host(node, cluster.uuid, userTags=["rack1"]))
    assert err.error.code == "HOST.1000"
    assert "no local storage for this host" in err.error.details
    assert err.error.cause.code == SysErrors.OPERATION_ERROR.value
    assert rows(node, HostVO) == rows(node, HostCapacityVO) == rows(node, SimulatorHostVO) == 0
    assert rows(node, UserTagVO) == 0


# -- updating ---------------------------------------------------------------------------


async def test_update_changes_only_what_is_given(node, cluster):
    host = await add_host(node, cluster.uuid, description="keep")
    other = await add_host(node, cluster.uuid, ip="10.0.0.2", name="other")
    updated = (await node.call(APIUpdateHostMsg(uuid=host.uuid, name="renamed"))).inventory
    assert (updated.name, updated.description, updated.managementIp) == ("renamed", "keep", "10.0.0.1")
    updated = (await node.call(APIUpdateHostMsg(uuid=host.uuid, managementIp="10.0.0.3"))).inventory
    assert updated.managementIp == "10.0.0.3" and updated.availableCpuCapacity == 40
    msg = APIUpdateHostMsg(uuid=host.uuid, managementIp=other.managementIp)
    err = await failure(node.intercept_and_call(msg))
    assert err.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    err = await failure(node.call(msg))
    assert err.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    assert rows(node, HostVO, uuid=host.uuid, managementIp="10.0.0.3") == 1
    err = await failure(node.call(APIUpdateHostMsg(uuid="d" * 32, name="x")))
    assert err.error.code == SysErrors.RESOURCE_NOT_FOUND.value


# -- states and maintenance -----------------------------------------------------------------


async def change_state(node, host_uuid, event):
    return (await node.intercept_and_call(APIChangeHostStateMsg(uuid=host_uuid, stateEvent=event))).inventory


async def test_enable_and_disable(node, cluster):
    host = await add_host(node, cluster.uuid)
    for event, state in [("disable", "Disabled"), ("disable", "Disabled"), ("enable", "Enabled")]:
        assert (await change_state(node, host.uuid, event)).state == state
        assert rows(node, HostVO, uuid=host.uuid, state=state) == 1
    with pytest.raises(ValidationError, match="stateEvent"):
        APIChangeHostStateMsg(uuid=host.uuid, stateEvent="preMaintain")


async def test_maintenance_empties_the_host_in_pre_maintenance(node, cluster):
    host = await add_host(node, cluster.uuid)
    seen = []

    class StopVms:
        async def before_maintenance(self, host_uuid):
            with node.db.session() as s:
                seen.append((host_uuid, s.get(HostVO, host_uuid).state))

    node.services["host"].add_maintenance_extension(StopVms())
    changed = await change_state(node, host.uuid, "maintain")
    assert changed.state == "Maintenance" and seen == [(host.uuid, "PreMaintenance")]
    # Maintenance takes no second maintain; enabling leaves it and reconnects.
    err = await failure(change_state(node, host.uuid, "maintain"))
    assert err.error.code == SysErrors.CHANGE_RESOURCE_STATE_ERROR.value
    err = await failure(node.intercept_and_call(APIReconnectHostMsg(uuid=host.uuid)))
    assert err.error.code == SysErrors.OPERATION_ERROR.value and "Maintenance" in err.error.details
    changed = await change_state(node, host.uuid, "enable")
    assert (changed.state, changed.status) == ("Enabled", "Connected")


async def test_a_failed_maintenance_puts_the_host_back(node, cluster):
    host = await add_host(node, cluster.uuid)
    await change_state(node, host.uuid, "disable")

    class CannotMigrate:
        async def before_maintenance(self, host_uuid):
            raise OperationError.of(SysErrors.OPERATION_ERROR, "vm 1 cannot be migrated")

    node.services["host"].add_maintenance_extension(CannotMigrate())
    err = await failure(change_state(node, host.uuid, "maintain"))
    assert err.error.code == "HOST.1001"
    assert "vm 1 cannot be migrated" in err.error.details
    assert rows(node, HostVO, uuid=host.uuid, state="Disabled") == 1


async def test_only_a_connected_host_enters_maintenance(node, cluster, status_events):
    host = await add_host(node, cluster.uuid)
    reply = await node.call(ChangeHostConnectionStateMsg(uuid=host.uuid, connectionStateEvent="disconnected"))
    assert reply.inventory.status == "Disconnected"
    err = await failure(change_state(node, host.uuid, "maintain"))
    assert err.error.code == SysErrors.OPERATION_ERROR.value
    assert "which is not Connected" in err.error.details
    assert rows(node, HostVO, uuid=host.uuid, state="Enabled") == 1
    # Reconnecting a Simulator host always succeeds.
    reconnected = (await node.intercept_and_call(APIReconnectHostMsg(uuid=host.uuid))).inventory
    assert reconnected.status == "Connected"
    await events_arrived(status_events, 4)
    assert [(e.oldStatus, e.newStatus) for e in status_events] == [
        ("Connecting", "Connected"), ("Connected", "Disconnected"), ("Disconnected", "Connecting"),
        ("Connecting", "Connected")]


async def test_extensions_can_refuse_a_state_change_of_a_host_and_of_its_cluster(node, zone, cluster):
    host = await add_host(node, cluster.uuid)

    class KeepEnabled:
        async def pre_change_state(self, host, event, next_state):
            if next_state == "Disabled":
                raise OperationError.of(SysErrors.OPERATION_ERROR, f"{host.name} runs a pinned VM")

    node.services["host"].add_extension(KeepEnabled())
    err = await failure(change_state(node, host.uuid, "disable"))
    assert err.error.code == SysErrors.CHANGE_RESOURCE_STATE_ERROR.value
    assert "host1 runs a pinned VM" in err.error.details
    err = await failure(node.call(APIChangeClusterStateMsg(uuid=cluster.uuid, stateEvent="disable")))
    assert err.error.code == SysErrors.CHANGE_RESOURCE_STATE_ERROR.value
    assert rows(node, HostVO, state="Enabled") == 1 and rows(node, ClusterVO, state="Enabled") == 1


async def test_hosts_follow_their_cluster_and_zone_but_not_out_of_maintenance(node, zone, cluster):
    a = await add_host(node, cluster.uuid, ip="10.0.0.1", name="a")
    b = await add_host(node, cluster.uuid, ip="10.0.0.2", name="b")
    await change_state(node, b.uuid, "maintain")
    await node.call(APIChangeClusterStateMsg(uuid=cluster.uuid, stateEvent="disable"))
    assert rows(node, HostVO, uuid=a.uuid, state="Disabled") == 1
    assert rows(node, HostVO, uuid=b.uuid, state="Maintenance") == 1
    await node.call(APIChangeZoneStateMsg(uuid=zone.uuid, stateEvent="enable"))
    assert rows(node, ClusterVO, uuid=cluster.uuid, state="Enabled") == 1
    assert rows(node, HostVO, uuid=a.uuid, state="Enabled") == 1
    assert rows(node, HostVO, uuid=b.uuid, state="Maintenance") == 1


# -- deleting -------------------------------------------------------------------------------


async def test_delete_a_host_with_its_rows_and_tags(node, cluster):
    host = await add_host(node, cluster.uuid, userTags=["rack1"])
    other = await add_host(node, cluster.uuid, ip="10.0.0.2", name="other")
    await node.call(APIDeleteHostMsg(uuid=host.uuid))
    assert rows(node, HostVO) == rows(node, HostCapacityVO) == rows(node, SimulatorHostVO) == 1
    assert rows(node, HostVO, uuid=other.uuid) == 1 and rows(node, UserTagVO) == 0
    await node.call(APIDeleteHostMsg(uuid=host.uuid))  # already gone: success


class PinnedVms(CascadeExtension):
    """Stands in for the VM service's extension: VMs live under hosts."""

    resource_type = "PinnedVmVO"
    parents = ("HostVO",)

    def __init__(self, host_uuid):
        self.host_uuid = host_uuid
        self.deleted = []

    async def children(self, ctx, parent_type, parent_uuids):
        return ["vm-1"] if self.host_uuid in parent_uuids else []

    async def check(self, ctx, uuids):
        raise DeletionRefused(uuids[0], "it is pinned to its host")

    async def delete(self, ctx, uuids):
        self.deleted.extend(uuids)


async def test_a_refused_deletion_leaves_the_host_as_it_was(node, cluster):
    host = await add_host(node, cluster.uuid)
    vms = PinnedVms(host.uuid)
    node.cascade.register(vms)
    err = await failure(node.call(APIDeleteHostMsg(uuid=host.uuid)))
    assert err.error.code == SysErrors.DELETE_RESOURCE_ERROR.value
    assert "it is pinned to its host" in err.error.details
    assert rows(node, HostVO, uuid=host.uuid, state="Enabled") == 1 and rows(node, HostCapacityVO) == 1
    # Enforcing deletes what is on the host first, then the host.
    await node.call(APIDeleteHostMsg(uuid=host.uuid, deleteMode="Enforcing"))
    assert vms.deleted == ["vm-1"] and rows(node, HostVO) == 0 and rows(node, HostCapacityVO) == 0


async def test_deleting_a_cluster_deletes_its_hosts(node, zone, cluster):
    await add_host(node, cluster.uuid, ip="10.0.0.1", name="a")
    await add_host(node, cluster.uuid, ip="10.0.0.2", name="b")
    await node.call(APIDeleteClusterMsg(uuid=cluster.uuid))
    assert rows(node, ClusterVO) == rows(node, HostVO) == rows(node, HostCapacityVO) == 0
    assert rows(node, SimulatorHostVO) == 0


# -- queries ------------------------------------------------------------------------------


async def query(node, *conditions, **kw):
    msg = APIQueryHostMsg(conditions=[{"name": n, "op": o, "value": v} for n, o, v in conditions], **kw)
    return [inv["name"] for inv in (await QueryEngine(node).query(msg)).inventories]


async def test_query_hosts_by_capacity_and_by_cluster_and_zone(node, zone, cluster):
    await add_host(node, cluster.uuid, ip="10.0.0.1", name="small", cpu=2, memory=2 * GIB)
    await add_host(node, cluster.uuid, ip="10.0.0.2", name="big", cpu=16, memory=64 * GIB)
    other = (await node.call(APICreateClusterMsg(zoneUuid=zone.uuid, name="sim2",
                                                 hypervisorType="Simulator"))).inventory
    await add_host(node, other.uuid, ip="10.0.0.3", name="elsewhere", cpu=8, memory=16 * GIB)

    assert await query(node, ("cluster.name", "=", "sim"), sortBy="name") == ["big", "small"]
    assert await query(node, ("zone.name", "=", "zone1"), sortBy="cpuNum") == ["small", "elsewhere", "big"]
    assert await query(node, ("availableMemoryCapacity", ">", str(8 * GIB)), sortBy="name") == [
        "big", "elsewhere"]
    assert await query(node, ("totalCpuCapacity", ">=", "80"), ("cluster.name", "=", "sim")) == ["big"]
    assert await query(node, sortBy="availableMemoryCapacity", sortDirection="desc") == [
        "big", "elsewhere", "small"]
    [big] = (await QueryEngine(node).query(APIQueryHostMsg(
        conditions=[{"name": "name", "op": "=", "value": "big"}]))).inventories
    assert (big["cpuNum"], big["totalCpuCapacity"], big["availableMemoryCapacity"]) == (16, 160, 64 * GIB)
