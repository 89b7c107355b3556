"""Reserving and releasing primary and backup storage capacity, over SQLite."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mn.cluster.messages import APICreateClusterMsg
from mn.cluster.service import ClusterService
from mn.db.models.host import HostVO
from mn.db.models.storage import BackupStorageVO, PrimaryStorageCapacityVO, PrimaryStorageVO
from mn.errors import OperationError
from mn.host.messages import APIAddSimulatorHostMsg
from mn.host.service import HostService
from mn.storage.backup.capacity import (
    candidate_backup_storages,
    release_backup_storage_capacity,
    reserve_backup_storage_capacity,
)
from mn.storage.backup.messages import APIAddSimulatorBackupStorageMsg, APIAttachBackupStorageToZoneMsg
from mn.storage.backup.service import BackupStorageService
from mn.storage.primary.capacity import (
    candidate_primary_storages,
    primary_storage_fits,
    release_primary_storage_capacity,
    reserve_primary_storage_capacity,
)
from mn.storage.primary.messages import (
    APIAddLocalPrimaryStorageMsg,
    APIAddSimulatorPrimaryStorageMsg,
    APIAttachPrimaryStorageToClusterMsg,
    APIChangePrimaryStorageStateMsg,
)
from mn.storage.primary.service import PrimaryStorageService
from mn.zone.messages import APICreateZoneMsg
from mn.zone.service import ZoneService
from tests.support.small_node import SmallNode

GIB = 1 << 30


@pytest.fixture
async def node(sqlite_url):
    node = SmallNode(sqlite_url)
    await node.start(ZoneService, ClusterService, HostService, PrimaryStorageService, BackupStorageService)
    yield node
    await node.stop()


@pytest.fixture
async def setup(node):
    """A zone, a cluster with one host, and a 100 GiB simulator storage attached to it."""
    zone = (await node.call(APICreateZoneMsg(name="zone1"))).inventory
    cluster = (await node.call(APICreateClusterMsg(zoneUuid=zone.uuid, name="c1",
                                                   hypervisorType="Simulator"))).inventory
    host = (await node.call(APIAddSimulatorHostMsg(clusterUuid=cluster.uuid, name="h1", managementIp="10.0.0.1",
                                                   cpuCapacity=8, memoryCapacity=8 * GIB))).inventory
    ps = await add_simulator(node, zone.uuid, "ps1", 100 * GIB)
    await node.call(APIAttachPrimaryStorageToClusterMsg(clusterUuid=cluster.uuid, primaryStorageUuid=ps.uuid))
    return zone, cluster, host, ps


async def add_simulator(node, zone_uuid, name, size):
    return (await node.call(APIAddSimulatorPrimaryStorageMsg(
        zoneUuid=zone_uuid, name=name, url=f"nfs://{name}", totalCapacity=size, availableCapacity=size))).inventory


def available(node, ps_uuid) -> int:
    with node.db.session() as s:
        return s.get(PrimaryStorageCapacityVO, ps_uuid).availableCapacity


async def test_reserve_until_full_and_release_back_to_total(node, setup):
    _, _, _, ps = setup
    assert await node.db.run(reserve_primary_storage_capacity, ps.uuid, 60 * GIB)
    assert not await node.db.run(reserve_primary_storage_capacity, ps.uuid, 41 * GIB)
    assert await node.db.run(reserve_primary_storage_capacity, ps.uuid, 40 * GIB)
    assert available(node, ps.uuid) == 0
    assert await node.db.run(reserve_primary_storage_capacity, ps.uuid, 0)
    await node.db.run(release_primary_storage_capacity, ps.uuid, 70 * GIB)
    assert available(node, ps.uuid) == 70 * GIB
    # Never above the total, even if more is given back than was taken.
    await node.db.run(release_primary_storage_capacity, ps.uuid, 70 * GIB)
    assert available(node, ps.uuid) == 100 * GIB


async def test_a_reservation_rolls_back_with_its_transaction(node, setup):
    _, _, _, ps = setup

    def reserve_then_fail(session):
        assert reserve_primary_storage_capacity(session, ps.uuid, 10 * GIB)
        raise RuntimeError("the VM could not be created")

    with pytest.raises(RuntimeError):
        await node.db.run(reserve_then_fail)
    assert available(node, ps.uuid) == 100 * GIB


@pytest.mark.parametrize("event", ["disable", "maintain"])
async def test_storage_not_enabled_takes_nothing(node, setup, event):
    _, cluster, host, ps = setup
    await node.call(APIChangePrimaryStorageStateMsg(uuid=ps.uuid, stateEvent=event))
    assert not await node.db.run(reserve_primary_storage_capacity, ps.uuid, GIB)
    assert await node.db.run(candidate_primary_storages, cluster.uuid, GIB, host.uuid) == []
    assert available(node, ps.uuid) == 100 * GIB


async def test_disconnected_or_missing_storage_takes_nothing(node, setup):
    _, cluster, _, ps = setup
    with node.db.session() as s:
        s.get(PrimaryStorageVO, ps.uuid).status = "Disconnected"
    assert not await node.db.run(reserve_primary_storage_capacity, ps.uuid, GIB)
    assert await node.db.run(candidate_primary_storages, cluster.uuid, GIB) == []
    assert not await node.db.run(reserve_primary_storage_capacity, "f" * 32, GIB)
    await node.db.run(release_primary_storage_capacity, "f" * 32, GIB)  # nothing to give back to


@pytest.mark.parametrize("size", [-1, 1.5, True])
async def test_sizes_must_be_whole_bytes(node, setup, size):
    _, _, _, ps = setup
    with pytest.raises(OperationError, match="whole number of bytes"):
        await node.db.run(reserve_primary_storage_capacity, ps.uuid, size)


async def test_candidates_are_attached_and_ordered_by_room(node, setup):
    zone, cluster, host, ps = setup
    bigger = await add_simulator(node, zone.uuid, "ps2", 200 * GIB)
    await add_simulator(node, zone.uuid, "unattached", 500 * GIB)
    await node.call(APIAttachPrimaryStorageToClusterMsg(clusterUuid=cluster.uuid, primaryStorageUuid=bigger.uuid))
    assert await node.db.run(candidate_primary_storages, cluster.uuid, GIB) == [bigger.uuid, ps.uuid]
    assert await node.db.run(candidate_primary_storages, cluster.uuid, 150 * GIB) == [bigger.uuid]
    assert await node.db.run(candidate_primary_storages, cluster.uuid, 300 * GIB) == []


async def test_allocator_condition_over_hosts(node, setup):
    zone, cluster, host, ps = setup
    local = (await node.call(APIAddLocalPrimaryStorageMsg(zoneUuid=zone.uuid, name="l", url="/data"))).inventory
    other = (await node.call(APICreateClusterMsg(zoneUuid=zone.uuid, name="c2",
                                                 hypervisorType="Simulator"))).inventory
    local_host = (await node.call(APIAddSimulatorHostMsg(clusterUuid=other.uuid, name="h2",
                                                         managementIp="10.0.0.2", cpuCapacity=8,
                                                         memoryCapacity=8 * GIB))).inventory
    await node.call(APIAttachPrimaryStorageToClusterMsg(clusterUuid=other.uuid, primaryStorageUuid=local.uuid))

    def hosts_fitting(session, size, ps_uuid=None):
        stmt = select(HostVO.uuid).where(primary_storage_fits(HostVO.uuid, HostVO.clusterUuid, size, ps_uuid))
        return set(session.scalars(stmt))

    assert await node.db.run(hosts_fitting, 50 * GIB) == {host.uuid, local_host.uuid}
    assert await node.db.run(hosts_fitting, 500 * GIB) == {local_host.uuid}  # 1 TiB local disk
    assert await node.db.run(hosts_fitting, 50 * GIB, ps.uuid) == {host.uuid}
    assert await node.db.run(reserve_primary_storage_capacity, local.uuid, 900 * GIB, local_host.uuid)
    assert await node.db.run(hosts_fitting, 500 * GIB) == set()


async def test_backup_storage_capacity(node):
    zone = (await node.call(APICreateZoneMsg(name="zone1"))).inventory
    bs = (await node.call(APIAddSimulatorBackupStorageMsg(name="bs", url="/bs", totalCapacity=10 * GIB,
                                                          availableCapacity=10 * GIB))).inventory
    assert await node.db.run(candidate_backup_storages, GIB) == [bs.uuid]
    assert await node.db.run(candidate_backup_storages, GIB, zone.uuid) == []
    await node.call(APIAttachBackupStorageToZoneMsg(zoneUuid=zone.uuid, backupStorageUuid=bs.uuid))
    assert await node.db.run(candidate_backup_storages, GIB, zone.uuid) == [bs.uuid]

    assert await node.db.run(reserve_backup_storage_capacity, bs.uuid, 8 * GIB)
    assert not await node.db.run(reserve_backup_storage_capacity, bs.uuid, 3 * GIB)
    assert await node.db.run(candidate_backup_storages, 3 * GIB) == []
    await node.db.run(release_backup_storage_capacity, bs.uuid, 20 * GIB)
    with node.db.session() as s:
        assert s.get(BackupStorageVO, bs.uuid).availableCapacity == 10 * GIB
        s.get(BackupStorageVO, bs.uuid).state = "Disabled"
    assert not await node.db.run(reserve_backup_storage_capacity, bs.uuid, GIB)
    assert await node.db.run(candidate_backup_storages, GIB) == []
