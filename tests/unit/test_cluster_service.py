"""The cluster service over SQLite and the memory bus."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from mn.cluster.extensions import ClusterStateExtension
from mn.cluster.messages import (
    APIChangeClusterStateMsg,
    APICreateClusterMsg,
    APIDeleteClusterMsg,
    APIUpdateClusterMsg,
    ChangeClusterStateMsg,
)
from mn.cluster.service import ClusterService
from mn.db.models.cluster import ClusterVO
from mn.db.models.tag import UserTagVO
from mn.db.models.zone import ZoneVO
from mn.errors import OperationError, SysErrors
from mn.zone.messages import APIChangeZoneStateMsg, APICreateZoneMsg
from mn.zone.service import ZoneService
from tests.support.small_node import SmallNode


@pytest.fixture
async def node(sqlite_url):
    node = SmallNode(sqlite_url)
    await node.start(ClusterService, ZoneService)
    yield node
    await node.stop()


@pytest.fixture
async def zone(node):
    return (await node.call(APICreateZoneMsg(name="zone1"))).inventory


def rows(node, model, **where) -> int:
    with node.db.session() as s:
        return s.scalar(select(func.count()).select_from(model).filter_by(**where))


async def create_cluster(node, zone_uuid, name="cluster1", **kw):
    kw.setdefault("hypervisorType", "KVM")
    return (await node.call(APICreateClusterMsg(zoneUuid=zone_uuid, name=name, **kw))).inventory


async def failure(call) -> OperationError:
    with pytest.raises(OperationError) as excinfo:
        await call
    return excinfo.value


async def test_create_returns_the_inventory(node, zone):
    cluster = await create_cluster(node, zone.uuid, description="kvm hosts", architecture="x86_64")
    assert cluster.model_dump(exclude={"uuid", "createDate", "lastOpDate"}) == {
        "name": "cluster1", "description": "kvm hosts", "state": "Enabled", "hypervisorType": "KVM",
        "zoneUuid": zone.uuid, "type": "zstack", "architecture": "x86_64"}
    with node.db.session() as s:
        vo = s.get(ClusterVO, cluster.uuid)
        assert (vo.zoneUuid, vo.managementNodeId, vo.state) == (zone.uuid, node.uuid, "Enabled")


async def test_a_cluster_needs_an_existing_zone(node):
    err = await failure(create_cluster(node, "e" * 32))
    assert err.error.code == SysErrors.RESOURCE_NOT_FOUND.value
    assert "e" * 32 in err.error.details
    assert rows(node, ClusterVO) == 0


@pytest.mark.parametrize("fields, message", [
    ({"hypervisorType": "VMware"}, "hypervisorType"),
    ({"hypervisorType": "KVM", "type": "vcenter"}, "type"),
    ({"hypervisorType": "KVM", "architecture": "sparc"}, "architecture"),
    ({"hypervisorType": "KVM", "type": "baremetal"}, "hypervisorType must be baremetal too"),
    ({"hypervisorType": "baremetal", "type": "zstack"}, "hypervisorType must be baremetal too"),
    ({"hypervisorType": "KVM", "name": "n" * 256}, "name"),
])
def test_bad_parameters_fail_at_construction(fields, message):
    fields = {"zoneUuid": "a" * 32, "name": "c", **fields}
    with pytest.raises(ValidationError, match=message):
        APICreateClusterMsg(**fields)


async def test_cluster_types_without_support_are_refused_before_anything_runs(node, zone):
    msg = APICreateClusterMsg(zoneUuid=zone.uuid, name="bm", hypervisorType="baremetal", type="baremetal")
    err = await failure(node.intercept_and_call(msg))
    assert err.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    assert "cluster type baremetal is not supported" in err.error.details
    assert rows(node, ClusterVO) == 0
    # A plugin that brings the type makes it creatable.
    node.services["cluster"].cluster_types.add("baremetal")
    cluster = (await node.intercept_and_call(msg)).inventory
    assert (cluster.type, cluster.hypervisorType) == ("baremetal", "baremetal")


async def test_update_changes_only_what_is_given(node, zone):
    cluster = await create_cluster(node, zone.uuid, description="keep")
    updated = (await node.call(APIUpdateClusterMsg(uuid=cluster.uuid, name="renamed"))).inventory
    assert (updated.name, updated.description) == ("renamed", "keep")
    updated = (await node.call(APIUpdateClusterMsg(uuid=cluster.uuid, description="new"))).inventory
    assert (updated.name, updated.description) == ("renamed", "new")
    err = await failure(node.call(APIUpdateClusterMsg(uuid="d" * 32, name="x")))
    assert err.error.code == SysErrors.RESOURCE_NOT_FOUND.value


async def test_change_state(node, zone):
    cluster = await create_cluster(node, zone.uuid)
    for event, state in [("disable", "Disabled"), ("disable", "Disabled"), ("enable", "Enabled")]:
        changed = (await node.call(APIChangeClusterStateMsg(uuid=cluster.uuid, stateEvent=event))).inventory
        assert changed.state == state and rows(node, ClusterVO, uuid=cluster.uuid, state=state) == 1
    # The zone's message changes the state too (and is what zones send).
    reply = await node.call(ChangeClusterStateMsg(uuid=cluster.uuid, stateEvent="disable"))
    assert reply.inventory.state == "Disabled"


class HostsInMaintenance(ClusterStateExtension):
    """Refuses to enable a cluster (hosts would later refuse like this)."""

    def __init__(self):
        self.after = []

    async def pre_change(self, cluster, event, next_state):
        if next_state == "Enabled":
            raise OperationError.of(SysErrors.OPERATION_ERROR, f"hosts of {cluster.name} are in maintenance")

    async def after_change(self, cluster, event, previous_state):
        self.after.append((cluster.uuid, previous_state, cluster.state))


async def test_extensions_can_refuse_a_clusters_and_its_zones_change(node, zone):
    cluster = await create_cluster(node, zone.uuid)
    extension = HostsInMaintenance()
    node.services["cluster"].add_state_extension(extension)

    await node.call(APIChangeClusterStateMsg(uuid=cluster.uuid, stateEvent="disable"))
    assert extension.after == [(cluster.uuid, "Enabled", "Disabled")]
    err = await failure(node.call(APIChangeClusterStateMsg(uuid=cluster.uuid, stateEvent="enable")))
    assert err.error.code == SysErrors.CHANGE_RESOURCE_STATE_ERROR.value
    assert "hosts of cluster1 are in maintenance" in err.error.details
    assert rows(node, ClusterVO, uuid=cluster.uuid, state="Disabled") == 1

    # The zone asks its clusters' extensions first: one refusal refuses the zone.
    err = await failure(node.call(APIChangeZoneStateMsg(uuid=zone.uuid, stateEvent="enable")))
    assert err.error.code == SysErrors.CHANGE_RESOURCE_STATE_ERROR.value
    assert "hosts of cluster1 are in maintenance" in err.error.details
    assert rows(node, ZoneVO, uuid=zone.uuid, state="Enabled") == 1
    assert rows(node, ClusterVO, uuid=cluster.uuid, state="Disabled") == 1


async def test_delete_a_cluster_and_its_tags(node, zone):
    cluster = await create_cluster(node, zone.uuid, userTags=["gpu"])
    other = await create_cluster(node, zone.uuid, "other", userTags=["cpu"])
    await node.call(APIDeleteClusterMsg(uuid=cluster.uuid))
    assert rows(node, ClusterVO) == 1 and rows(node, ClusterVO, uuid=other.uuid) == 1
    assert rows(node, UserTagVO) == 1 and rows(node, UserTagVO, resourceUuid=other.uuid) == 1
    assert rows(node, ZoneVO) == 1
    await node.call(APIDeleteClusterMsg(uuid=cluster.uuid))  # already gone: success


async def test_the_database_refuses_a_zone_with_clusters(node, zone):
    await create_cluster(node, zone.uuid)

    def delete_zone_row(session):
        session.delete(session.get(ZoneVO, zone.uuid))

    with pytest.raises(Exception, match="(?i)foreign key"):
        await node.db.run(delete_zone_row)
    assert rows(node, ZoneVO) == 1
