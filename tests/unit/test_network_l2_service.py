"""The L2 network service over SQLite and the memory bus: create, update,
attach to and detach from clusters, delete and cascades, queries."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import Integer, String, func, insert, inspect, select

from mn.api.message import QueryCondition
from mn.api.query import QueryEngine
from mn.cluster.messages import APICreateClusterMsg, APIDeleteClusterMsg
from mn.cluster.service import ClusterService
from mn.db.models import Base
from mn.db.models.network import (
    IpRangeVO,
    L2NetworkClusterRefVO,
    L2NetworkVO,
    L2VlanNetworkVO,
    L3NetworkDnsVO,
    L3NetworkVO,
    UsedIpVO,
)
from mn.db.models.tag import UserTagVO
from mn.errors import OperationError, SysErrors
from mn.ids import new_uuid
from mn.network.ipam import allocate_ip
from mn.network.l2.inventory import L2VlanNetworkInventory
from mn.network.l2.messages import (
    APIAttachL2NetworkToClusterMsg,
    APICreateL2NoVlanNetworkMsg,
    APICreateL2VlanNetworkMsg,
    APIDeleteL2NetworkMsg,
    APIDetachL2NetworkFromClusterMsg,
    APIQueryL2NetworkMsg,
    APIQueryL2VlanNetworkMsg,
    APIUpdateL2NetworkMsg,
)
from mn.network.l2.service import L2NetworkService
from mn.network.l3.messages import APIAddDnsToL3NetworkMsg, APIAddIpRangeByNetworkCidrMsg, APICreateL3NetworkMsg
from mn.network.l3.service import L3NetworkService
from mn.service import load_service_classes
from mn.zone.messages import APICreateZoneMsg, APIDeleteZoneMsg
from mn.zone.service import ZoneService
from tests.support.small_node import SmallNode

# Inventories name each other across services (zone -> host ...): load every
# service's modules, as an MN does, so queries can resolve them.
load_service_classes()


@pytest.fixture
async def node(sqlite_url):
    node = SmallNode(sqlite_url)
    await node.start(ZoneService, ClusterService, L2NetworkService, L3NetworkService)
    yield node
    await node.stop()


@pytest.fixture
async def zone(node):
    return (await node.call(APICreateZoneMsg(name="zone"))).inventory


async def cluster_in(node, zone_uuid: str, name: str = "cluster"):
    return (await node.call(APICreateClusterMsg(zoneUuid=zone_uuid, name=name, hypervisorType="Simulator"))).inventory


async def no_vlan(node, zone_uuid: str, iface: str = "eth0", **kw):
    return (await node.call(APICreateL2NoVlanNetworkMsg(name="flat", zoneUuid=zone_uuid, physicalInterface=iface,
                                                        **kw))).inventory


async def vlan(node, zone_uuid: str, vlan_id: int, iface: str = "eth0"):
    return (await node.call(APICreateL2VlanNetworkMsg(name=f"vlan{vlan_id}", zoneUuid=zone_uuid,
                                                      physicalInterface=iface, vlan=vlan_id))).inventory


def rows(node, model, *where) -> int:
    with node.db.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


async def refused(call, code: SysErrors) -> str:
    with pytest.raises(OperationError) as excinfo:
        await call
    assert excinfo.value.error.code == code.value, excinfo.value.error
    return excinfo.value.error.details


async def test_create_no_vlan_and_vlan_networks(node, zone):
    flat = await no_vlan(node, zone.uuid, description="d", userTags=["flat"], vSwitchType="OvsDpdk")
    assert (flat.type, flat.physicalInterface, flat.vSwitchType, flat.virtualNetworkId, flat.isolated,
            flat.attachedClusterUuids, flat.zoneUuid, flat.description) == (
        "L2NoVlanNetwork", "eth0", "OvsDpdk", 0, False, [], zone.uuid, "d")
    tagged = await vlan(node, zone.uuid, 100)
    assert isinstance(tagged, L2VlanNetworkInventory)
    assert (tagged.type, tagged.vlan, tagged.virtualNetworkId) == ("L2VlanNetwork", 100, 100)
    with node.db.session() as s:
        assert isinstance(s.get(L2NetworkVO, tagged.uuid), L2VlanNetworkVO)
        assert type(s.get(L2NetworkVO, flat.uuid)) is L2NetworkVO
    assert rows(node, UserTagVO, UserTagVO.resourceUuid == flat.uuid, UserTagVO.resourceType == "L2NetworkVO") == 1


@pytest.mark.parametrize("fields", [
    {"vlan": 0}, {"vlan": 4095}, {"vlan": None}, {"vlan": 10, "physicalInterface": ""},
    {"vlan": 10, "vSwitchType": "Ovs"}, {"vlan": 10, "name": "n" * 256}, {"vlan": 10, "pvlan": ""},
])
def test_bad_parameters_fail_at_construction(fields):
    values = {"name": "v", "zoneUuid": new_uuid(), "physicalInterface": "eth0", **fields}
    with pytest.raises(ValidationError):
        APICreateL2VlanNetworkMsg(**values)


async def test_create_in_a_missing_zone_leaves_nothing(node):
    details = await refused(no_vlan(node, new_uuid()), SysErrors.RESOURCE_NOT_FOUND)
    assert "zone" in details
    assert rows(node, L2NetworkVO) == 0


async def test_update_keeps_absent_fields(node, zone):
    tagged = await vlan(node, zone.uuid, 7)
    updated = (await node.call(APIUpdateL2NetworkMsg(uuid=tagged.uuid, name="renamed"))).inventory
    assert (updated.name, updated.vlan, updated.description) == ("renamed", 7, None)


async def test_attach_and_detach_a_cluster(node, zone):
    cluster = await cluster_in(node, zone.uuid)
    tagged = await vlan(node, zone.uuid, 10)
    attached = (await node.intercept_and_call(APIAttachL2NetworkToClusterMsg(
        l2NetworkUuid=tagged.uuid, clusterUuid=cluster.uuid))).inventory
    assert attached.attachedClusterUuids == [cluster.uuid] and attached.vlan == 10
    again = APIAttachL2NetworkToClusterMsg(l2NetworkUuid=tagged.uuid, clusterUuid=cluster.uuid)
    assert "can't attach again" in await refused(node.intercept_and_call(again), SysErrors.OPERATION_ERROR)
    # The handler checks again (another MN may have attached in between).
    assert "can't attach again" in await refused(node.call(again), SysErrors.OPERATION_ERROR)
    detached = (await node.intercept_and_call(APIDetachL2NetworkFromClusterMsg(
        l2NetworkUuid=tagged.uuid, clusterUuid=cluster.uuid))).inventory
    assert detached.attachedClusterUuids == []
    not_attached = APIDetachL2NetworkFromClusterMsg(l2NetworkUuid=tagged.uuid, clusterUuid=cluster.uuid)
    assert "has not attached" in await refused(node.intercept_and_call(not_attached), SysErrors.OPERATION_ERROR)


async def test_attachments_that_would_clash_on_an_interface_are_refused(node, zone):
    cluster = await cluster_in(node, zone.uuid)
    flat, tagged = await no_vlan(node, zone.uuid), await vlan(node, zone.uuid, 10)
    for l2 in (flat, tagged):
        await node.call(APIAttachL2NetworkToClusterMsg(l2NetworkUuid=l2.uuid, clusterUuid=cluster.uuid))
    second_flat, same_vlan = await no_vlan(node, zone.uuid), await vlan(node, zone.uuid, 10)
    other_vlan, other_iface = await vlan(node, zone.uuid, 11), await no_vlan(node, zone.uuid, "eth1")
    ovs = await no_vlan(node, zone.uuid, "eth0", vSwitchType="OvsDpdk")
    for l2, message in ((second_flat, "that has physical interface[eth0]"), (same_vlan, "vlan[10]"),
                        (ovs, "different vswitch type")):
        msg = APIAttachL2NetworkToClusterMsg(l2NetworkUuid=l2.uuid, clusterUuid=cluster.uuid)
        assert message in await refused(node.intercept_and_call(msg), SysErrors.INVALID_ARGUMENT_ERROR)
        assert message in await refused(node.call(msg), SysErrors.INVALID_ARGUMENT_ERROR)
    for l2 in (other_vlan, other_iface):
        await node.intercept_and_call(APIAttachL2NetworkToClusterMsg(l2NetworkUuid=l2.uuid, clusterUuid=cluster.uuid))
    assert rows(node, L2NetworkClusterRefVO, L2NetworkClusterRefVO.clusterUuid == cluster.uuid) == 4


async def test_a_cluster_of_another_zone_is_refused(node, zone):
    other_zone = (await node.call(APICreateZoneMsg(name="other"))).inventory
    cluster = await cluster_in(node, other_zone.uuid)
    flat = await no_vlan(node, zone.uuid)
    msg = APIAttachL2NetworkToClusterMsg(l2NetworkUuid=flat.uuid, clusterUuid=cluster.uuid)
    assert "clusters of its zone" in await refused(node.intercept_and_call(msg), SysErrors.INVALID_ARGUMENT_ERROR)
    assert rows(node, L2NetworkClusterRefVO) == 0


def _insert_row(session, table_name: str, **values) -> None:
    """A row of a table another service owns, with placeholders in its other required columns."""
    table = Base.metadata.tables[table_name]
    for column in table.c:
        if column.name in values or column.nullable or column.default is not None or column.server_default is not None:
            continue
        if column.autoincrement is True or (column.primary_key and isinstance(column.type, Integer)):
            continue
        values[column.name] = new_uuid() if isinstance(column.type, String) else 1
    session.execute(insert(table).values(**values))


async def test_detaching_a_cluster_whose_vms_use_the_network_is_refused(node, zone):
    if not {"VmInstanceVO", "VmNicVO"} <= set(Base.metadata.tables) & set(inspect(node.db.engine).get_table_names()):
        pytest.skip("no VM tables in this build")
    cluster = await cluster_in(node, zone.uuid)
    flat = await no_vlan(node, zone.uuid)
    await node.call(APIAttachL2NetworkToClusterMsg(l2NetworkUuid=flat.uuid, clusterUuid=cluster.uuid))
    l3 = (await node.call(APICreateL3NetworkMsg(name="l3", l2NetworkUuid=flat.uuid))).inventory
    vm_uuid = new_uuid()
    with node.db.session() as s:
        _insert_row(s, "VmInstanceVO", uuid=vm_uuid, zoneUuid=zone.uuid, clusterUuid=cluster.uuid, state="Running")
        _insert_row(s, "VmNicVO", uuid=new_uuid(), vmInstanceUuid=vm_uuid, l3NetworkUuid=l3.uuid)
    msg = APIDetachL2NetworkFromClusterMsg(l2NetworkUuid=flat.uuid, clusterUuid=cluster.uuid)
    details = await refused(node.intercept_and_call(msg), SysErrors.OPERATION_ERROR)
    assert vm_uuid in details and "VM instances" in details
    assert vm_uuid in await refused(node.call(msg), SysErrors.OPERATION_ERROR)
    assert rows(node, L2NetworkClusterRefVO) == 1


async def test_deleting_an_l2_network_deletes_what_is_on_it(node, zone):
    cluster = await cluster_in(node, zone.uuid)
    tagged, kept = await vlan(node, zone.uuid, 10), await vlan(node, zone.uuid, 20)
    for l2 in (tagged, kept):
        await node.call(APIAttachL2NetworkToClusterMsg(l2NetworkUuid=l2.uuid, clusterUuid=cluster.uuid))
    l3 = (await node.call(APICreateL3NetworkMsg(name="l3", l2NetworkUuid=tagged.uuid, userTags=["t"]))).inventory
    await node.call(APIAddIpRangeByNetworkCidrMsg(l3NetworkUuid=l3.uuid, name="r", networkCidr="10.0.0.0/24"))
    await node.call(APIAddDnsToL3NetworkMsg(l3NetworkUuid=l3.uuid, dns="8.8.8.8"))
    await node.db.run(lambda s: allocate_ip(s, l3.uuid))
    await node.call(APIDeleteL2NetworkMsg(uuid=tagged.uuid))
    for model in (L3NetworkVO, IpRangeVO, UsedIpVO, L3NetworkDnsVO):
        assert rows(node, model) == 0, model
    assert rows(node, L2NetworkVO) == rows(node, L2VlanNetworkVO) == 1
    assert rows(node, L2NetworkClusterRefVO) == 1
    assert rows(node, UserTagVO, UserTagVO.resourceUuid == l3.uuid) == 0
    await node.call(APIDeleteL2NetworkMsg(uuid=tagged.uuid))  # gone already: succeeds


async def test_deleting_a_cluster_or_zone_takes_attachments_and_networks(node, zone):
    cluster = await cluster_in(node, zone.uuid)
    flat = await no_vlan(node, zone.uuid)
    await node.call(APIAttachL2NetworkToClusterMsg(l2NetworkUuid=flat.uuid, clusterUuid=cluster.uuid))
    await node.call(APICreateL3NetworkMsg(name="l3", l2NetworkUuid=flat.uuid))
    await node.call(APIDeleteClusterMsg(uuid=cluster.uuid))
    assert rows(node, L2NetworkClusterRefVO) == 0 and rows(node, L2NetworkVO) == 1
    await node.call(APIDeleteZoneMsg(uuid=zone.uuid))
    assert rows(node, L2NetworkVO) == rows(node, L3NetworkVO) == 0


async def test_queries_by_type_cluster_and_zone(node, zone):
    engine = QueryEngine(node)
    cluster = await cluster_in(node, zone.uuid, "c-main")
    flat, tagged = await no_vlan(node, zone.uuid), await vlan(node, zone.uuid, 30)
    await node.call(APIAttachL2NetworkToClusterMsg(l2NetworkUuid=tagged.uuid, clusterUuid=cluster.uuid))

    async def query(api, *conditions):
        msg = api(conditions=[QueryCondition(name=n, op=o, value=v) for n, o, v in conditions])
        return (await engine.query(msg, None)).inventories

    vlans = await query(APIQueryL2VlanNetworkMsg)
    assert [(v["uuid"], v["vlan"], v["attachedClusterUuids"]) for v in vlans] == [(tagged.uuid, 30, [cluster.uuid])]
    assert {i["uuid"] for i in await query(APIQueryL2NetworkMsg)} == {flat.uuid, tagged.uuid}
    by_cluster = await query(APIQueryL2NetworkMsg, ("attachedClusterUuids.clusterUuid", "=", cluster.uuid))
    assert [i["uuid"] for i in by_cluster] == [tagged.uuid]
    assert [i["uuid"] for i in await query(APIQueryL2NetworkMsg, ("clusterRef.cluster.name", "=", "c-main"))] == [
        tagged.uuid]
    assert len(await query(APIQueryL2NetworkMsg, ("zone.name", "=", "zone"))) == 2
    assert [i["uuid"] for i in await query(APIQueryL2NetworkMsg, ("type", "=", "L2NoVlanNetwork"))] == [flat.uuid]
