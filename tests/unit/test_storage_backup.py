"""The backup storage service over SQLite and the memory bus."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from mn.api.query import QueryEngine
from mn.cluster.service import ClusterService
from mn.db.models.storage import BackupStorageVO, BackupStorageZoneRefVO
from mn.db.models.tag import UserTagVO
from mn.errors import OperationError, SysErrors
from mn.storage.backup.messages import (
    APIAddSimulatorBackupStorageMsg,
    APIAttachBackupStorageToZoneMsg,
    APIChangeBackupStorageStateMsg,
    APIDeleteBackupStorageMsg,
    APIDetachBackupStorageFromZoneMsg,
    APIGetBackupStorageCapacityMsg,
    APIGetBackupStorageTypesMsg,
    APIQueryBackupStorageMsg,
    APIReconnectBackupStorageMsg,
    APIUpdateBackupStorageMsg,
)
from mn.storage.backup.service import BackupStorageService
from mn.zone.messages import APICreateZoneMsg, APIDeleteZoneMsg
from mn.zone.service import ZoneService
from tests.support.small_node import SmallNode

GIB = 1 << 30


@pytest.fixture
async def node(sqlite_url):
    node = SmallNode(sqlite_url)
    # Clusters too: ZoneInventory's relations name ClusterInventory.
    await node.start(ZoneService, ClusterService, BackupStorageService)
    node.query = QueryEngine(node)
    yield node
    await node.stop()


@pytest.fixture
async def zone(node):
    return (await node.call(APICreateZoneMsg(name="zone1"))).inventory


def rows(node, model, *where) -> int:
    with node.db.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


async def add_bs(node, name="bs1", **kw):
    kw.setdefault("url", f"/{name}")
    return (await node.call(APIAddSimulatorBackupStorageMsg(name=name, **kw))).inventory


async def failure(call) -> OperationError:
    with pytest.raises(OperationError) as excinfo:
        await call
    return excinfo.value


async def test_add_simulator_backup_storage(node):
    bs = await add_bs(node, description="images", totalCapacity=100 * GIB, availableCapacity=90 * GIB,
                      userTags=["b"])
    assert bs.model_dump(exclude={"uuid", "createDate", "lastOpDate"}) == {
        "name": "bs1", "url": "/bs1", "description": "images", "totalCapacity": 100 * GIB,
        "availableCapacity": 90 * GIB, "type": "SimulatorBackupStorage", "state": "Enabled",
        "status": "Connected", "attachedZoneUuids": []}
    assert rows(node, UserTagVO, UserTagVO.resourceUuid == bs.uuid) == 1
    # ZStack's SDK defaults: no capacity.
    empty = await add_bs(node, name="empty")
    assert (empty.totalCapacity, empty.availableCapacity) == (0, 0)


@pytest.mark.parametrize("fields, message", [
    ({"url": ""}, "url"),
    ({"totalCapacity": 1, "availableCapacity": 2}, "availableCapacity 2 is more than totalCapacity 1"),
    ({"availableCapacity": -1}, "availableCapacity"),
    ({"type": "SftpBackupStorage"}, "type"),
])
def test_bad_parameters_fail_at_construction(fields, message):
    with pytest.raises(ValidationError, match=message):
        APIAddSimulatorBackupStorageMsg(**{"name": "bs", "url": "/bs", **fields})


async def test_attach_to_several_zones_and_detach(node, zone):
    other = (await node.call(APICreateZoneMsg(name="zone2"))).inventory
    bs = await add_bs(node)
    for z in (zone, other):
        inventory = (await node.intercept_and_call(APIAttachBackupStorageToZoneMsg(
            zoneUuid=z.uuid, backupStorageUuid=bs.uuid))).inventory
    assert inventory.attachedZoneUuids == [zone.uuid, other.uuid]
    again = APIAttachBackupStorageToZoneMsg(zoneUuid=zone.uuid, backupStorageUuid=bs.uuid)
    for call in (node.intercept_and_call(again), node.call(again)):
        err = await failure(call)
        assert err.error.code == SysErrors.OPERATION_ERROR.value
        assert "has been attached to zone" in err.error.details
    assert rows(node, BackupStorageZoneRefVO) == 2

    detach = APIDetachBackupStorageFromZoneMsg(zoneUuid=zone.uuid, backupStorageUuid=bs.uuid)
    assert (await node.intercept_and_call(detach)).inventory.attachedZoneUuids == [other.uuid]
    err = await failure(node.intercept_and_call(detach))
    assert err.error.code == SysErrors.OPERATION_ERROR.value
    assert "has not been attached to zone" in err.error.details


async def test_deleting_a_zone_detaches_but_keeps_the_backup_storage(node, zone):
    bs = await add_bs(node)
    await node.call(APIAttachBackupStorageToZoneMsg(zoneUuid=zone.uuid, backupStorageUuid=bs.uuid))
    await node.call(APIDeleteZoneMsg(uuid=zone.uuid))
    assert rows(node, BackupStorageVO) == 1
    assert rows(node, BackupStorageZoneRefVO) == 0


async def test_update_state_reconnect_and_delete(node, zone):
    bs = await add_bs(node, description="keep")
    updated = (await node.call(APIUpdateBackupStorageMsg(uuid=bs.uuid, name="renamed"))).inventory
    assert (updated.name, updated.description) == ("renamed", "keep")
    for event, state in [("disable", "Disabled"), ("disable", "Disabled"), ("enable", "Enabled")]:
        changed = (await node.call(APIChangeBackupStorageStateMsg(uuid=bs.uuid, stateEvent=event))).inventory
        assert changed.state == state
    with pytest.raises(ValidationError):
        APIChangeBackupStorageStateMsg(uuid=bs.uuid, stateEvent="maintain")
    with node.db.session() as s:
        s.get(BackupStorageVO, bs.uuid).status = "Disconnected"
    assert (await node.call(APIReconnectBackupStorageMsg(uuid=bs.uuid))).inventory.status == "Connected"

    await node.call(APIAttachBackupStorageToZoneMsg(zoneUuid=zone.uuid, backupStorageUuid=bs.uuid))
    await node.call(APIDeleteBackupStorageMsg(uuid=bs.uuid))
    assert rows(node, BackupStorageVO) == rows(node, BackupStorageZoneRefVO) == 0
    await node.call(APIDeleteBackupStorageMsg(uuid=bs.uuid))  # gone: succeeds
    err = await failure(node.call(APIUpdateBackupStorageMsg(uuid=bs.uuid, name="x")))
    assert err.error.code == SysErrors.RESOURCE_NOT_FOUND.value


async def test_capacity_types_and_queries(node, zone):
    a = await add_bs(node, "a", totalCapacity=10, availableCapacity=4)
    await add_bs(node, "b", totalCapacity=20, availableCapacity=20)
    await node.call(APIAttachBackupStorageToZoneMsg(zoneUuid=zone.uuid, backupStorageUuid=a.uuid))

    async def capacity(**kw):
        reply = await node.call(APIGetBackupStorageCapacityMsg(**kw))
        return reply.totalCapacity, reply.availableCapacity

    assert await capacity(zoneUuids=[zone.uuid]) == (10, 4)
    assert await capacity(all=True) == (30, 24)
    with pytest.raises(ValidationError, match="at least one be none-empty list"):
        APIGetBackupStorageCapacityMsg(zoneUuids=[])
    assert (await node.call(APIGetBackupStorageTypesMsg())).backupStorageTypes == ["SimulatorBackupStorage"]

    async def names(name, op, value):
        msg = APIQueryBackupStorageMsg(conditions=[{"name": name, "op": op, "value": value}])
        return sorted(inv["name"] for inv in (await node.query.query(msg)).inventories)

    assert await names("zoneRef.zoneUuid", "=", zone.uuid) == ["a"]
    assert await names("zoneRef.zone.name", "=", "zone1") == ["a"]
    assert await names("availableCapacity", ">=", "5") == ["b"]
