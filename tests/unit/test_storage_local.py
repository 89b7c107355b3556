"""LocalStorage's per-host accounting over SQLite and the memory bus, with real
Simulator hosts added through the host service."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from mn.cluster.messages import APICreateClusterMsg, APIDeleteClusterMsg
from mn.cluster.service import ClusterService
from mn.db.models.storage import LocalStorageHostRefVO, LocalStorageResourceRefVO, PrimaryStorageCapacityVO
from mn.errors import OperationError, SysErrors
from mn.globalconfig import REGISTRY
from mn.host.messages import APIAddSimulatorHostMsg, APIDeleteHostMsg
from mn.host.service import HostService
from mn.storage.primary.capacity import (
    candidate_primary_storages,
    release_primary_storage_capacity,
    reserve_primary_storage_capacity,
)
from mn.storage.primary.local import (
    SIMULATOR_HOST_CAPACITY,
    TIB,
    ensure_local_storage_refs,
    recalculate_local_storage_capacity,
    remove_host_share,
    set_host_disk,
)
from mn.storage.primary.messages import (
    APIAddLocalPrimaryStorageMsg,
    APIAttachPrimaryStorageToClusterMsg,
    APIDetachPrimaryStorageFromClusterMsg,
    APIGetLocalStorageHostDiskCapacityMsg,
    APIGetPrimaryStorageCapacityMsg,
    APIReconnectPrimaryStorageMsg,
)
from mn.storage.primary.service import PrimaryStorageService
from mn.zone.messages import APICreateZoneMsg, APIDeleteZoneMsg
from mn.zone.service import ZoneService
from tests.support.small_node import SmallNode

GIB = 1 << 30
_ips = (f"10.0.{i // 250}.{i % 250 + 1}" for i in itertools.count())


@pytest.fixture
async def node(sqlite_url):
    # The process-wide registry, so the test can change simulator.hostCapacity.
    node = SmallNode(sqlite_url, registry=REGISTRY)
    await node.start(ZoneService, ClusterService, HostService, PrimaryStorageService)
    yield node
    await node.stop()


@pytest.fixture
async def zone(node):
    return (await node.call(APICreateZoneMsg(name="zone1"))).inventory


async def create_cluster(node, zone_uuid, name="c1"):
    return (await node.call(APICreateClusterMsg(zoneUuid=zone_uuid, name=name,
                                                hypervisorType="Simulator"))).inventory


async def add_host(node, cluster_uuid, name="h"):
    return (await node.call(APIAddSimulatorHostMsg(clusterUuid=cluster_uuid, name=name, managementIp=next(_ips),
                                                   cpuCapacity=8, memoryCapacity=16 * GIB))).inventory


async def add_local(node, zone_uuid, name="local"):
    return (await node.call(APIAddLocalPrimaryStorageMsg(zoneUuid=zone_uuid, name=name, url="/zstack_ps"))).inventory


def shares(node, ps_uuid) -> dict[str, tuple[int, int]]:
    with node.db.session() as s:
        rows = s.scalars(select(LocalStorageHostRefVO).where(LocalStorageHostRefVO.primaryStorageUuid == ps_uuid))
        return {r.hostUuid: (r.totalCapacity, r.availableCapacity) for r in rows}


def capacity(node, ps_uuid) -> tuple[int, int]:
    with node.db.session() as s:
        cap = s.get(PrimaryStorageCapacityVO, ps_uuid)
        return cap.totalCapacity, cap.availableCapacity


async def attach(node, ps_uuid, cluster_uuid):
    return (await node.call(APIAttachPrimaryStorageToClusterMsg(clusterUuid=cluster_uuid,
                                                                primaryStorageUuid=ps_uuid))).inventory


async def test_attach_gives_every_host_a_share_and_the_storage_their_sum(node, zone):
    cluster = await create_cluster(node, zone.uuid)
    hosts = [await add_host(node, cluster.uuid, f"h{i}") for i in range(2)]
    ps = await add_local(node, zone.uuid)
    inventory = await attach(node, ps.uuid, cluster.uuid)
    assert shares(node, ps.uuid) == {h.uuid: (TIB, TIB) for h in hosts}
    assert (inventory.totalCapacity, inventory.availableCapacity) == (2 * TIB, 2 * TIB)
    assert (inventory.totalPhysicalCapacity, inventory.availablePhysicalCapacity) == (2 * TIB, 2 * TIB)

    reply = await node.call(APIGetLocalStorageHostDiskCapacityMsg(primaryStorageUuid=ps.uuid,
                                                                  hostUuid=hosts[0].uuid))
    assert [c.model_dump() for c in reply.inventories] == [{
        "hostUuid": hosts[0].uuid, "totalCapacity": TIB, "availableCapacity": TIB,
        "totalPhysicalCapacity": TIB, "availablePhysicalCapacity": TIB}]


async def test_a_host_added_later_gets_its_share_from_the_global_config(node, zone):
    cluster = await create_cluster(node, zone.uuid)
    ps = await add_local(node, zone.uuid)
    await attach(node, ps.uuid, cluster.uuid)
    assert capacity(node, ps.uuid) == (0, 0)
    await SIMULATOR_HOST_CAPACITY.update(str(200 * GIB))
    try:
        host = await add_host(node, cluster.uuid)  # the host service's after_add_host hook
    finally:
        await SIMULATOR_HOST_CAPACITY.update(str(TIB))
    assert shares(node, ps.uuid) == {host.uuid: (200 * GIB, 200 * GIB)}
    assert capacity(node, ps.uuid) == (200 * GIB, 200 * GIB)
    # Called again (as the host service may do in its own transaction): nothing changes.
    assert await node.db.run(ensure_local_storage_refs, host.uuid) == []
    assert capacity(node, ps.uuid) == (200 * GIB, 200 * GIB)


async def test_ensure_needs_an_existing_host(node):
    with pytest.raises(OperationError) as excinfo:
        await node.db.run(ensure_local_storage_refs, "f" * 32)
    assert excinfo.value.error.code == SysErrors.RESOURCE_NOT_FOUND.value


async def test_reservations_take_from_the_host_and_the_storage(node, zone):
    cluster = await create_cluster(node, zone.uuid)
    h1, h2 = [await add_host(node, cluster.uuid, f"h{i}") for i in range(2)]
    ps = await add_local(node, zone.uuid)
    await attach(node, ps.uuid, cluster.uuid)

    def reserve(session, host_uuid, size, volume=None):
        return reserve_primary_storage_capacity(session, ps.uuid, size, host_uuid, resource_uuid=volume)

    assert await node.db.run(reserve, h1.uuid, TIB - 10 * GIB, "a" * 32)
    assert shares(node, ps.uuid) == {h1.uuid: (TIB, 10 * GIB), h2.uuid: (TIB, TIB)}
    assert capacity(node, ps.uuid) == (2 * TIB, TIB + 10 * GIB)
    # The storage has room, the host not: nothing is taken anywhere.
    assert not await node.db.run(reserve, h1.uuid, 20 * GIB)
    assert capacity(node, ps.uuid) == (2 * TIB, TIB + 10 * GIB)
    assert await node.db.run(candidate_primary_storages, cluster.uuid, 20 * GIB, h1.uuid) == []
    assert await node.db.run(candidate_primary_storages, cluster.uuid, 20 * GIB, h2.uuid) == [ps.uuid]
    assert await node.db.run(candidate_primary_storages, cluster.uuid, 20 * GIB) == [ps.uuid]

    with pytest.raises(OperationError, match="the host whose disk holds the volume must be given"):
        await node.db.run(reserve_primary_storage_capacity, ps.uuid, GIB)

    # Released by the volume's record alone: back on the host it was placed on.
    await node.db.run(lambda s: release_primary_storage_capacity(s, ps.uuid, TIB - 10 * GIB,
                                                                 resource_uuid="a" * 32))
    assert shares(node, ps.uuid) == {h1.uuid: (TIB, TIB), h2.uuid: (TIB, TIB)}
    assert capacity(node, ps.uuid) == (2 * TIB, 2 * TIB)
    with node.db.session() as s:
        assert s.scalars(select(LocalStorageResourceRefVO)).all() == []


async def test_deleting_a_host_takes_its_share_and_what_it_held_out(node, zone):
    cluster = await create_cluster(node, zone.uuid)
    h1, h2 = [await add_host(node, cluster.uuid, f"h{i}") for i in range(2)]
    ps = await add_local(node, zone.uuid)
    await attach(node, ps.uuid, cluster.uuid)
    assert await node.db.run(reserve_primary_storage_capacity, ps.uuid, 100 * GIB, h1.uuid,
                             resource_uuid="b" * 32)

    await node.call(APIDeleteHostMsg(uuid=h1.uuid))
    assert shares(node, ps.uuid) == {h2.uuid: (TIB, TIB)}
    assert capacity(node, ps.uuid) == (TIB, TIB)
    # A release for the gone host gives nothing back: its bytes left with it,
    # whether the host or only the volume's (now removed) record is named.
    await node.db.run(release_primary_storage_capacity, ps.uuid, 100 * GIB, h1.uuid)
    await node.db.run(lambda s: release_primary_storage_capacity(s, ps.uuid, 100 * GIB, resource_uuid="b" * 32))
    assert capacity(node, ps.uuid) == (TIB, TIB)
    with node.db.session() as s:
        assert s.scalars(select(LocalStorageResourceRefVO)).all() == []


async def test_detach_takes_the_clusters_hosts_out_and_is_refused_while_they_hold_volumes(node, zone):
    c1, c2 = await create_cluster(node, zone.uuid, "c1"), await create_cluster(node, zone.uuid, "c2")
    h1, h2 = await add_host(node, c1.uuid, "h1"), await add_host(node, c2.uuid, "h2")
    ps = await add_local(node, zone.uuid)
    await attach(node, ps.uuid, c1.uuid)
    await attach(node, ps.uuid, c2.uuid)
    assert capacity(node, ps.uuid) == (2 * TIB, 2 * TIB)
    assert await node.db.run(reserve_primary_storage_capacity, ps.uuid, GIB, h1.uuid, resource_uuid="c" * 32)

    detach = APIDetachPrimaryStorageFromClusterMsg(clusterUuid=c1.uuid, primaryStorageUuid=ps.uuid)
    with pytest.raises(OperationError) as excinfo:
        await node.intercept_and_call(detach)
    assert excinfo.value.error.code == SysErrors.OPERATION_ERROR.value
    assert f"resources [{'c' * 32}] are on the local disks" in excinfo.value.error.details
    assert set(shares(node, ps.uuid)) == {h1.uuid, h2.uuid}

    await node.db.run(release_primary_storage_capacity, ps.uuid, GIB, resource_uuid="c" * 32)
    inventory = (await node.intercept_and_call(detach)).inventory
    assert inventory.attachedClusterUuids == [c2.uuid]
    assert shares(node, ps.uuid) == {h2.uuid: (TIB, TIB)}
    assert (inventory.totalCapacity, inventory.availableCapacity) == (TIB, TIB)


async def test_a_volume_recorded_on_a_host_is_not_available_when_its_share_comes_back(node, zone):
    cluster = await create_cluster(node, zone.uuid)
    host = await add_host(node, cluster.uuid)
    ps = await add_local(node, zone.uuid)
    await attach(node, ps.uuid, cluster.uuid)
    assert await node.db.run(reserve_primary_storage_capacity, ps.uuid, 30 * GIB, host.uuid,
                             resource_uuid="d" * 32)
    # The share disappears (a repair scenario), then reconnecting rebuilds it.
    with node.db.session() as s:
        s.delete(s.get(LocalStorageHostRefVO, (host.uuid, ps.uuid)))
    await node.db.run(recalculate_local_storage_capacity, ps.uuid)
    assert capacity(node, ps.uuid) == (0, 0)
    inventory = (await node.call(APIReconnectPrimaryStorageMsg(uuid=ps.uuid))).inventory
    assert shares(node, ps.uuid) == {host.uuid: (TIB, TIB - 30 * GIB)}
    assert (inventory.totalCapacity, inventory.availableCapacity) == (TIB, TIB - 30 * GIB)


async def test_deleting_a_cluster_or_zone_removes_the_shares(node, zone):
    c1, c2 = await create_cluster(node, zone.uuid, "c1"), await create_cluster(node, zone.uuid, "c2")
    await add_host(node, c1.uuid, "h1")
    h2 = await add_host(node, c2.uuid, "h2")
    ps = await add_local(node, zone.uuid)
    await attach(node, ps.uuid, c1.uuid)
    await attach(node, ps.uuid, c2.uuid)

    await node.call(APIDeleteClusterMsg(uuid=c1.uuid))
    assert shares(node, ps.uuid) == {h2.uuid: (TIB, TIB)}
    assert capacity(node, ps.uuid) == (TIB, TIB)
    reply = await node.call(APIGetPrimaryStorageCapacityMsg(zoneUuids=[zone.uuid]))
    assert (reply.totalCapacity, reply.availableCapacity) == (TIB, TIB)

    await node.call(APIDeleteZoneMsg(uuid=zone.uuid))
    with node.db.session() as s:
        assert s.scalars(select(LocalStorageHostRefVO)).all() == []
        assert s.get(PrimaryStorageCapacityVO, ps.uuid) is None


async def test_a_measured_disk_resizes_the_share_and_keeps_what_volumes_hold(node, zone):
    cluster = await create_cluster(node, zone.uuid)
    h1, h2 = [await add_host(node, cluster.uuid, f"h{i}") for i in range(2)]
    ps = await add_local(node, zone.uuid)
    await attach(node, ps.uuid, cluster.uuid)
    await node.db.run(reserve_primary_storage_capacity, ps.uuid, 10 * GIB, h1.uuid, resource_uuid="b" * 32)

    assert await node.db.run(set_host_disk, ps.uuid, h1.uuid, 100 * GIB, 80 * GIB)
    assert shares(node, ps.uuid) == {h1.uuid: (100 * GIB, 90 * GIB), h2.uuid: (TIB, TIB)}
    assert capacity(node, ps.uuid) == (TIB + 100 * GIB, TIB + 90 * GIB)
    # Measured again, unchanged: nothing moves.
    assert await node.db.run(set_host_disk, ps.uuid, h1.uuid, 100 * GIB, 80 * GIB)
    assert capacity(node, ps.uuid) == (TIB + 100 * GIB, TIB + 90 * GIB)

    # A host without a share yet gets one of its measured size.
    await node.db.run(remove_host_share, ps.uuid, h2.uuid)
    assert await node.db.run(set_host_disk, ps.uuid, h2.uuid, 50 * GIB, 50 * GIB)
    assert shares(node, ps.uuid)[h2.uuid] == (50 * GIB, 50 * GIB)
    assert capacity(node, ps.uuid) == (150 * GIB, 140 * GIB)
    with node.db.session() as s:
        share = s.get(LocalStorageHostRefVO, (h1.uuid, ps.uuid))
        assert share.availablePhysicalCapacity == 80 * GIB
