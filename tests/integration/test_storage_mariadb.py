"""Primary and backup storage on MariaDB and RabbitMQ, served by two MNs sharing a ring.

Reservations race from both MNs' database threads at once; attaching a
LocalStorage races with hosts joining the cluster through the other MN.
Whatever the interleaving, capacity never goes below zero and a
LocalStorage's capacity is exactly the sum of its hosts' shares.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest
from sqlalchemy import func, inspect, select

from mn.cluster.messages import APICreateClusterMsg
from mn.cluster.service import ClusterService
from mn.db.models.storage import (
    BackupStorageVO,
    LocalStorageHostRefVO,
    PrimaryStorageCapacityVO,
    PrimaryStorageClusterRefVO,
)
from mn.host.messages import APIAddSimulatorHostMsg, APIDeleteHostMsg
from mn.host.service import HostService
from mn.ids import new_uuid
from mn.ring import Ring
from mn.storage.backup.capacity import release_backup_storage_capacity, reserve_backup_storage_capacity
from mn.storage.backup.messages import APIAddSimulatorBackupStorageMsg
from mn.storage.backup.service import BackupStorageService
from mn.storage.primary.capacity import release_primary_storage_capacity, reserve_primary_storage_capacity
from mn.storage.primary.local import TIB
from mn.storage.primary.messages import (
    APIAddLocalPrimaryStorageMsg,
    APIAddSimulatorPrimaryStorageMsg,
    APIAttachPrimaryStorageToClusterMsg,
    APIDetachPrimaryStorageFromClusterMsg,
)
from mn.storage.primary.service import PrimaryStorageService
from mn.zone.messages import APICreateZoneMsg, APIDeleteZoneMsg
from mn.zone.service import ZoneService
from tests.support.small_node import SmallNode

pytestmark = pytest.mark.integration

GIB = 1 << 30
_ips = (f"10.1.{i // 250}.{i % 250 + 1}" for i in itertools.count())


@pytest.fixture
async def nodes(mariadb_url, amqp_url):
    uuids = [new_uuid(), new_uuid()]
    pair = [SmallNode(mariadb_url, bus_url=amqp_url, ring=Ring(uuids), uuid=u) for u in uuids]
    try:
        for node in pair:
            await node.start(ZoneService, ClusterService, HostService, PrimaryStorageService,
                             BackupStorageService)
        yield pair
    finally:
        for node in pair:
            await node.stop()


@pytest.fixture
async def zone(nodes):
    return (await nodes[0].call(APICreateZoneMsg(name=f"z-{new_uuid()[:6]}"))).inventory


async def create_cluster(node, zone_uuid):
    return (await node.call(APICreateClusterMsg(zoneUuid=zone_uuid, name="c",
                                                hypervisorType="Simulator"))).inventory


async def add_host(node, cluster_uuid):
    return (await node.call(APIAddSimulatorHostMsg(clusterUuid=cluster_uuid, name="h", managementIp=next(_ips),
                                                   cpuCapacity=8, memoryCapacity=8 * GIB))).inventory


def one(node, stmt):
    with node.db.session() as s:
        return s.execute(stmt).one()


def local_accounting(node, ps_uuid) -> tuple[tuple[int, int], tuple[int, int], int]:
    """(storage's total and available), (sums over its shares), number of shares."""
    share = LocalStorageHostRefVO
    cap = PrimaryStorageCapacityVO
    storage = tuple(one(node, select(cap.totalCapacity, cap.availableCapacity).where(cap.uuid == ps_uuid)))
    total, available, count = one(node, select(func.sum(share.totalCapacity), func.sum(share.availableCapacity),
                                               func.count()).where(share.primaryStorageUuid == ps_uuid))
    return storage, (int(total or 0), int(available or 0)), count


async def test_concurrent_reservations_from_two_mns_never_overdraw(nodes, zone):
    a, b = nodes
    ps = (await a.call(APIAddSimulatorPrimaryStorageMsg(zoneUuid=zone.uuid, name="sim", url="nfs://sim",
                                                        totalCapacity=100, availableCapacity=100))).inventory
    results = await asyncio.gather(*(node.db.run(reserve_primary_storage_capacity, ps.uuid, 3)
                                     for _ in range(40) for node in nodes))
    assert results.count(True) == 33  # 33 * 3 = 99 of 100 bytes
    cap = PrimaryStorageCapacityVO
    assert one(a, select(cap.availableCapacity).where(cap.uuid == ps.uuid)) == (1,)

    # Releases and reservations mixed: the end state is exactly their balance.
    mixed = [node.db.run(release_primary_storage_capacity, ps.uuid, 3) for node in nodes for _ in range(5)]
    mixed += [node.db.run(reserve_primary_storage_capacity, ps.uuid, 1) for node in nodes for _ in range(5)]
    results = await asyncio.gather(*mixed)
    taken = results[10:].count(True)
    assert one(a, select(cap.availableCapacity).where(cap.uuid == ps.uuid)) == (1 + 30 - taken,)

    bs = (await b.call(APIAddSimulatorBackupStorageMsg(name="bs", url="/bs", totalCapacity=50,
                                                       availableCapacity=50))).inventory
    results = await asyncio.gather(*(node.db.run(reserve_backup_storage_capacity, bs.uuid, 7)
                                     for _ in range(10) for node in nodes))
    assert results.count(True) == 7
    await asyncio.gather(*(node.db.run(release_backup_storage_capacity, bs.uuid, 7) for node in nodes))
    assert one(a, select(BackupStorageVO.availableCapacity).where(BackupStorageVO.uuid == bs.uuid)) == (15,)


async def test_local_storage_shares_stay_exact_under_concurrent_hosts_and_reservations(nodes, zone):
    a, b = nodes
    cluster = await create_cluster(a, zone.uuid)
    early = [await add_host(b, cluster.uuid) for _ in range(3)]
    ps = (await a.call(APIAddLocalPrimaryStorageMsg(zoneUuid=zone.uuid, name="local", url="/local"))).inventory

    # Attach on one MN while hosts join through both: each host ends with exactly one share.
    attach = a.call(APIAttachPrimaryStorageToClusterMsg(clusterUuid=cluster.uuid, primaryStorageUuid=ps.uuid))
    results = await asyncio.gather(attach, *(add_host(nodes[i % 2], cluster.uuid) for i in range(6)))
    hosts = early + list(results[1:])
    assert local_accounting(a, ps.uuid) == ((9 * TIB, 9 * TIB), (9 * TIB, 9 * TIB), 9)

    # Both MNs fill the first host: it never goes below zero and the storage follows.
    size = 100 * GIB
    first = hosts[0].uuid
    results = await asyncio.gather(*(node.db.run(reserve_primary_storage_capacity, ps.uuid, size, first)
                                     for _ in range(8) for node in nodes))
    fits = TIB // size  # 10 of 16
    assert results.count(True) == fits
    share = LocalStorageHostRefVO
    assert one(a, select(share.availableCapacity).where(share.hostUuid == first)) == (TIB - fits * size,)
    assert local_accounting(a, ps.uuid) == ((9 * TIB, 9 * TIB - fits * size), (9 * TIB, 9 * TIB - fits * size), 9)

    # Hosts leave while others reserve: the storage is still the sum of what remains.
    await asyncio.gather(b.call(APIDeleteHostMsg(uuid=hosts[1].uuid)), a.call(APIDeleteHostMsg(uuid=first)),
                         *(node.db.run(reserve_primary_storage_capacity, ps.uuid, size, hosts[2].uuid)
                           for node in nodes))
    assert local_accounting(a, ps.uuid) == ((7 * TIB, 7 * TIB - 2 * size), (7 * TIB, 7 * TIB - 2 * size), 7)

    # Released on another host, detached, deleted with the zone.
    await asyncio.gather(*(node.db.run(release_primary_storage_capacity, ps.uuid, size, hosts[2].uuid)
                           for node in nodes))
    await b.call(APIDetachPrimaryStorageFromClusterMsg(clusterUuid=cluster.uuid, primaryStorageUuid=ps.uuid))
    assert local_accounting(a, ps.uuid) == ((0, 0), (0, 0), 0)
    await b.call(APIDeleteZoneMsg(uuid=zone.uuid))
    assert one(a, select(func.count()).select_from(PrimaryStorageCapacityVO)
               .where(PrimaryStorageCapacityVO.uuid == ps.uuid)) == (0,)


async def test_the_same_attachment_from_two_mns_is_made_once(nodes, zone):
    a, b = nodes
    cluster = await create_cluster(a, zone.uuid)
    ps = (await a.call(APIAddSimulatorPrimaryStorageMsg(zoneUuid=zone.uuid, name="s", url="nfs://s"))).inventory
    msgs = [APIAttachPrimaryStorageToClusterMsg(clusterUuid=cluster.uuid, primaryStorageUuid=ps.uuid)
            for _ in range(4)]
    results = await asyncio.gather(*(nodes[i % 2].call(m) for i, m in enumerate(msgs)), return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    ref = PrimaryStorageClusterRefVO
    assert one(a, select(func.count()).select_from(ref).where(ref.primaryStorageUuid == ps.uuid)) == (1,)


async def test_mariadb_schema(nodes):
    a, _ = nodes
    inspector = inspect(a.db.engine)
    fks = {(fk["referred_table"], tuple(fk["constrained_columns"])): fk["options"].get("ondelete")
           for fk in inspector.get_foreign_keys("LocalStorageHostRefVO")}
    assert fks == {("HostVO", ("hostUuid",)): "CASCADE", ("PrimaryStorageVO", ("primaryStorageUuid",)): "CASCADE"}
    [fk] = inspector.get_foreign_keys("PrimaryStorageVO")
    assert (fk["referred_table"], fk["options"].get("ondelete")) == ("ZoneVO", None)  # RESTRICT
    assert {ix["name"] for ix in inspector.get_indexes("PrimaryStorageClusterRefVO")} >= {
        "ix_PrimaryStorageClusterRefVO_clusterUuid", "ix_PrimaryStorageClusterRefVO_primaryStorageUuid",
        "uq_PrimaryStorageClusterRefVO_clusterUuid_primaryStorageUuid"}


# -- through the REST API of real MN processes ------------------------------------------


@pytest.fixture(scope="module")
def admin(tmp_path_factory, mariadb_url, amqp_url):
    from tests.support.api_client import ZStackClient
    from tests.support.cluster import start_cluster

    mns = start_cluster(tmp_path_factory.mktemp("storage"), 2, db_url=mariadb_url, bus_url=amqp_url)
    clients = [ZStackClient(mn.url) for mn in mns]
    for client in clients:
        client.login()
    yield clients
    for client in clients:
        client.close()
    for mn in mns:
        mn.stop()


@pytest.mark.slow
def test_rest_paths_with_two_resources_and_4xx_answers(admin):
    from tests.support.api_client import ApiError

    a, b = admin
    zone = a.create("/zones", {"name": f"rest-{new_uuid()[:6]}"})
    cluster = a.create("/clusters", {"zoneUuid": zone["uuid"], "name": "c", "hypervisorType": "Simulator"})
    ps = b.create("/primary-storage/simulators", {"zoneUuid": zone["uuid"], "name": "ps", "url": "nfs://ps",
                                                   "totalCapacity": 10 * GIB, "availableCapacity": 10 * GIB})
    bs = a.create("/backup-storage/simulators", {"name": "bs", "url": "/bs", "totalCapacity": GIB,
                                                  "availableCapacity": GIB})

    path = f"/clusters/{cluster['uuid']}/primary-storage/{ps['uuid']}"
    assert a.call("POST", path, json={"params": {}})["inventory"]["attachedClusterUuids"] == [cluster["uuid"]]
    with pytest.raises(ApiError) as info:
        b.call("POST", path, json={"params": {}})
    assert info.value.status == 409 and "has been attached" in info.value.body["error"]["details"]
    with pytest.raises(ApiError) as info:
        b.call("DELETE", f"/primary-storage/{ps['uuid']}")
    assert info.value.status == 409
    found = b.query("/primary-storage", f"clusterRef.clusterUuid={cluster['uuid']}")["inventories"]
    assert [inv["uuid"] for inv in found] == [ps["uuid"]]
    assert b.call("GET", "/primary-storage/capacities", params={"zoneUuids": zone["uuid"]}) == {
        "totalCapacity": 10 * GIB, "availableCapacity": 10 * GIB, "totalPhysicalCapacity": 10000000,
        "availablePhysicalCapacity": 10000000}
    assert b.call("DELETE", path)["inventory"]["attachedClusterUuids"] == []

    zone_path = f"/zones/{zone['uuid']}/backup-storage/{bs['uuid']}"
    assert b.call("POST", zone_path, json={"params": {}})["inventory"]["attachedZoneUuids"] == [zone["uuid"]]
    state = a.action(f"/backup-storage/{bs['uuid']}/actions", "changeBackupStorageState", {"stateEvent": "disable"})
    assert state["inventory"]["state"] == "Disabled"
    with pytest.raises(ApiError) as info:
        a.create("/primary-storage/simulators", {"zoneUuid": zone["uuid"], "name": "bad", "url": "u",
                                                  "totalCapacity": 1, "availableCapacity": 2})
    assert info.value.status == 400
    with pytest.raises(ApiError) as info:
        a.call("POST", f"/clusters/{cluster['uuid']}/primary-storage/{new_uuid()}", json={"params": {}})
    assert info.value.status == 404

    a.call("DELETE", f"/zones/{zone['uuid']}")
    assert a.query("/primary-storage", f"uuid={ps['uuid']}")["inventories"] == []
    assert a.query("/backup-storage", f"uuid={bs['uuid']}")["inventories"][0]["attachedZoneUuids"] == []
