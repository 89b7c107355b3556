"""Images and offerings on MariaDB and RabbitMQ, served by two MNs sharing a ring.

Concurrent AddImage calls from both MNs race for one backup storage's
capacity: the conditional reservations let exactly as many images in as fit
and the losers leave nothing behind. Operations on an image are sent from
either MN and run on its owner. The last test drives the REST API of two
real MN processes, wrong input included.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, inspect, select

from mn.db.models.image import ImageBackupStorageRefVO, ImageVO
from mn.db.models.offering import DiskOfferingVO, InstanceOfferingVO
from mn.db.models.storage import BackupStorageVO
from mn.db.models.tag import UserTagVO
from mn.errors import OperationError, SysErrors
from mn.ids import new_uuid
from mn.image.backup import image_backup_storages
from mn.image.messages import (
    APIAddImageMsg,
    APIChangeImageStateMsg,
    APIDeleteImageMsg,
    APIExpungeImageMsg,
    APIRecoverImageMsg,
)
from mn.image.service import ImageService
from mn.offering.messages import (
    APIChangeInstanceOfferingStateMsg,
    APICreateDiskOfferingMsg,
    APICreateInstanceOfferingMsg,
    APIDeleteDiskOfferingMsg,
    APIDeleteInstanceOfferingMsg,
    APIUpdateInstanceOfferingMsg,
)
from mn.offering.service import OfferingService
from mn.ring import Ring
from mn.zone.cascade import TableCascade
from tests.support.api_client import ApiError, ZStackClient
from tests.support.cluster import start_cluster
from tests.support.small_node import SmallNode

pytestmark = pytest.mark.integration

GiB = 1024 ** 3


@pytest.fixture
async def nodes(mariadb_url, amqp_url):
    uuids = [new_uuid(), new_uuid()]
    pair = [SmallNode(mariadb_url, bus_url=amqp_url, ring=Ring(uuids), uuid=u) for u in uuids]
    try:
        for node in pair:
            await node.start(ImageService, OfferingService)
        yield pair
    finally:
        for node in pair:
            await node.stop()


def add_bs(node, name: str, total: int) -> str:
    with node.db.session() as s:
        bs = BackupStorageVO(name=name, url=f"/{name}", totalCapacity=total, availableCapacity=total,
                             type="SimulatorBackupStorage", state="Enabled", status="Connected")
        s.add(bs)
        s.flush()
        return bs.uuid


def count(node, model, *where) -> int:
    with node.db.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def available(node, bs_uuid: str) -> int:
    with node.db.session() as s:
        return s.get(BackupStorageVO, bs_uuid).availableCapacity


async def test_schema_on_mariadb(nodes):
    inspector = inspect(nodes[0].db.engine)
    fks = {fk["referred_table"]: fk for fk in inspector.get_foreign_keys("ImageBackupStorageRefVO")}
    assert set(fks) == {"ImageVO", "BackupStorageVO"}
    assert all(fk["options"].get("ondelete") == "CASCADE" for fk in fks.values())
    indexes = {ix["name"] for ix in inspector.get_indexes("ImageVO")}
    assert indexes >= {"ix_ImageVO_name", "ix_ImageVO_status", "ix_ImageVO_state"}
    for table in ("InstanceOfferingVO", "DiskOfferingVO"):
        assert {ix["name"] for ix in inspector.get_indexes(table)} >= {f"ix_{table}_name", f"ix_{table}_state"}


async def test_concurrent_adds_on_two_mns_fill_a_backup_storage_exactly(nodes):
    a, b = nodes
    roomy, small = add_bs(a, "roomy", 100 * GiB), add_bs(a, "small", 6 * GiB)
    # Five image uuids owned by each MN: whichever six adds win, both own some.
    owned_by = {a.uuid: [], b.uuid: []}
    while min(len(v) for v in owned_by.values()) < 5:
        uuid = new_uuid()
        owner = owned_by[a.ring.owner(uuid)]
        if len(owner) < 5:
            owner.append(uuid)
    image_uuids = [u for pair in zip(*owned_by.values()) for u in pair]
    calls = [nodes[i % 2].intercept_and_call(APIAddImageMsg(
        name=f"img-{i}", url=f"http://images.example/{i}.qcow2?size=8G&actualSize=1G", format="qcow2",
        backupStorageUuids=[roomy, small], userTags=[f"t{i}"], resourceUuid=image_uuids[i]))
        for i in range(10)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    added = [r.inventory for r in results if not isinstance(r, BaseException)]
    failed = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(f, OperationError) and f.error.code == SysErrors.OPERATION_ERROR.value
               for f in failed), failed
    assert (len(added), len(failed)) == (6, 4)
    assert available(a, small) == 0
    assert available(a, roomy) == 100 * GiB - 6 * GiB  # the losers' reservations rolled back
    uuids = [image.uuid for image in added]
    assert count(a, ImageVO) == 6 and count(a, ImageBackupStorageRefVO) == 12
    assert count(a, UserTagVO, UserTagVO.resourceUuid.in_(uuids)) == count(a, UserTagVO) == 6

    owners = {a.ring.owner(image.uuid) for image in added}
    assert owners == {a.uuid, b.uuid}, "six images should land on both MNs"
    # Each MN changes images it does not own: the bus takes the call to the owner.
    for image in added:
        sender = b if a.ring.owner(image.uuid) == a.uuid else a
        await sender.call(APIChangeImageStateMsg(uuid=image.uuid, stateEvent="disable"))
        await sender.call(APIDeleteImageMsg(uuid=image.uuid, backupStorageUuids=[small]))
    assert count(a, ImageVO, ImageVO.state == "Disabled", ImageVO.status == "Ready") == 6
    assert available(a, small) == 0  # deleted with the Delay policy: held until expunged

    first, *others = added
    await b.intercept_and_call(APIRecoverImageMsg(imageUuid=first.uuid))
    with a.db.session() as s:
        assert image_backup_storages(s, first.uuid) == sorted([roomy, small])
    for i, image in enumerate(others):
        await nodes[i % 2].intercept_and_call(APIExpungeImageMsg(imageUuid=image.uuid))
    assert available(a, small) == 5 * GiB
    assert count(a, ImageBackupStorageRefVO, ImageBackupStorageRefVO.imageUuid.in_(uuids)) == 7


async def test_deleting_a_backup_storage_on_mariadb(nodes):
    a, b = nodes
    for node in nodes:
        node.cascade.register(TableCascade(BackupStorageVO))
    gone, kept = add_bs(a, "gone", 10 * GiB), add_bs(a, "kept", 10 * GiB)
    only = (await a.call(APIAddImageMsg(name="only", url="http://x/o.raw", format="raw",
                                        backupStorageUuids=[gone]))).inventory
    both = (await b.call(APIAddImageMsg(name="both", url="http://x/b.raw", format="raw",
                                        backupStorageUuids=[gone, kept]))).inventory
    await b.cascade.delete("BackupStorageVO", [gone])
    with a.db.session() as s:
        assert s.get(ImageVO, only.uuid) is None
        assert s.get(ImageVO, both.uuid).status == "Ready"
        assert image_backup_storages(s, both.uuid) == [kept]
    await a.call(APIDeleteImageMsg(uuid=both.uuid))
    await b.call(APIExpungeImageMsg(imageUuid=both.uuid))
    assert count(a, ImageVO, ImageVO.uuid.in_([only.uuid, both.uuid])) == 0
    assert available(a, kept) == 10 * GiB


async def test_offerings_across_two_mns(nodes):
    a, b = nodes
    offerings = [(await nodes[i % 2].intercept_and_call(APICreateInstanceOfferingMsg(
        name=f"io-{i}", cpuNum=i + 1, memorySize=(i + 1) * GiB))).inventory for i in range(4)]
    for offering in offerings:
        await b.intercept_and_call(APIUpdateInstanceOfferingMsg(uuid=offering.uuid,
                                                                allocatorStrategy="DefaultHostAllocatorStrategy"))
        await a.call(APIChangeInstanceOfferingStateMsg(uuid=offering.uuid, stateEvent="disable"))
    assert count(a, InstanceOfferingVO, InstanceOfferingVO.state == "Disabled",
                 InstanceOfferingVO.allocatorStrategy == "DefaultHostAllocatorStrategy") == 4
    disk = (await a.intercept_and_call(APICreateDiskOfferingMsg(name="d", diskSize=GiB, userTags=["x"]))).inventory
    await b.call(APIDeleteDiskOfferingMsg(uuid=disk.uuid))
    for offering in offerings:
        await nodes[offering.cpuNum % 2].call(APIDeleteInstanceOfferingMsg(uuid=offering.uuid))
    uuids = [disk.uuid, *(o.uuid for o in offerings)]
    assert count(a, InstanceOfferingVO) == count(a, DiskOfferingVO) == 0
    assert count(a, UserTagVO, UserTagVO.resourceUuid.in_(uuids)) == 0


# -- the REST API of two MN processes (last: the MNs run until the module ends) ------------

@pytest.fixture(scope="module")
def mns(tmp_path_factory, mariadb_url, amqp_url):
    nodes = start_cluster(tmp_path_factory.mktemp("images"), 2, db_url=mariadb_url, bus_url=amqp_url)
    yield nodes
    for node in nodes:
        node.stop()


@pytest.fixture(scope="module")
def clients(mns):
    pair = [ZStackClient(mn.url) for mn in mns]
    for client in pair:
        client.login()
    yield pair
    for client in pair:
        client.close()


def refused(call, *args, **kw) -> ApiError:
    with pytest.raises(ApiError) as info:
        call(*args, **kw)
    return info.value


@pytest.mark.slow
def test_images_and_offerings_through_rest_on_two_mns(clients):
    a, b = clients
    bs = a.create("/backup-storage/simulators", {"name": "rest-bs", "url": "/rest", "totalCapacity": 4 * GiB,
                                                 "availableCapacity": 4 * GiB})
    image = a.create("/images", {"name": "rest-image", "url": "http://x/r.qcow2?size=8G&actualSize=3G",
                                 "format": "qcow2", "backupStorageUuids": [bs["uuid"]]})
    assert (image["status"], image["size"], image["backupStorageRefs"][0]["status"]) == ("Ready", 8 * GiB, "Ready")

    def image_count() -> int:
        return b.query("/images", "name~=rest-%", count=True)["total"]

    # Wrong input: a clear 4xx at once, and nothing changes.
    params = {"name": "rest-bad", "url": "http://x/b.qcow2?size=2G", "format": "qcow2",
              "backupStorageUuids": [bs["uuid"]]}
    for bad, status, code in (({"url": "gopher://x"}, 400, "SYS.1007"), ({"format": "exe"}, 400, "SYS.1007"),
                              ({"backupStorageUuids": ["0" * 32]}, 404, "SYS.1003"),
                              ({"backupStorageUuids": []}, 400, "SYS.1007"),
                              ({"url": "http://x/b.qcow2?size=2G"}, 409, "SYS.1006")):  # 1G left
        err = refused(a.create, "/images", {**params, **bad})
        assert (err.status, err.code) == (status, code), err
    assert image_count() == 1
    assert b.query(f"/backup-storage/{bs['uuid']}")["inventories"][0]["availableCapacity"] == GiB

    found = b.query("/images", f"backupStorageRefs.backupStorageUuid={bs['uuid']}")["inventories"]
    assert [i["uuid"] for i in found] == [image["uuid"]]
    path = f"/images/{image['uuid']}/actions"
    assert b.action(path, "changeImageState", {"stateEvent": "disable"})["inventory"]["state"] == "Disabled"
    err = refused(b.action, path, "recoverImage")
    assert (err.status, err.code) == (409, "SYS.1006")
    b.call("DELETE", f"/images/{image['uuid']}")
    assert a.action(path, "recoverImage")["inventory"]["status"] == "Ready"
    a.call("DELETE", f"/images/{image['uuid']}")
    b.action(path, "expungeImage")
    assert image_count() == 0
    assert a.query(f"/backup-storage/{bs['uuid']}")["inventories"][0]["availableCapacity"] == 4 * GiB

    offering = a.create("/instance-offerings", {"name": "rest-io", "cpuNum": 2, "memorySize": 2 * GiB})
    for bad in ({"cpuNum": 0}, {"memorySize": 1024}, {"allocatorStrategy": "Nowhere"}, {"cpuNum": "two"}):
        err = refused(b.create, "/instance-offerings", {"name": "rest-bad", "cpuNum": 1, "memorySize": GiB, **bad})
        assert (err.status, err.code) == (400, "SYS.1007"), err
    io_path = f"/instance-offerings/{offering['uuid']}/actions"
    assert b.action(io_path, "changeInstanceOfferingState", {"stateEvent": "disable"})["inventory"]["state"] == (
        "Disabled")
    err = refused(b.action, io_path, "changeInstanceOfferingState", {"stateEvent": "pause"})
    assert err.status == 400
    disk = b.create("/disk-offerings", {"name": "rest-do", "diskSize": 10 * GiB})
    assert a.query("/disk-offerings", f"uuid={disk['uuid']}")["inventories"][0]["diskSize"] == 10 * GiB
    a.call("DELETE", f"/instance-offerings/{offering['uuid']}")
    b.call("DELETE", f"/disk-offerings/{disk['uuid']}")
    assert a.query("/instance-offerings", "name=rest-io", count=True)["total"] == 0
    err = refused(a.action, io_path, "updateInstanceOffering", {"name": "gone"})
    assert (err.status, err.code) == (404, "SYS.1003")
