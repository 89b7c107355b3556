"""The image service over SQLite and the memory bus: add (simulated download),
update, state, delete by policy, recover, expunge, cascades and queries."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from mn.api.message import QueryCondition
from mn.api.query import QueryEngine
from mn.db.models.image import ImageBackupStorageRefVO, ImageVO
from mn.db.models.storage import BackupStorageVO, BackupStorageZoneRefVO
from mn.db.models.tag import UserTagVO
from mn.db.models.zone import ZoneVO
from mn.errors import OperationError, SysErrors
from mn.globalconfig import REGISTRY
from mn.image.backup import image_backup_storages
from mn.image.config import DELETION_POLICY, EXPUNGE_PERIOD
from mn.image.inventory import ImageBackupStorageRefInventory
from mn.image.messages import (
    APIAddImageMsg,
    APIChangeImageStateMsg,
    APIDeleteImageMsg,
    APIExpungeImageMsg,
    APIQueryImageMsg,
    APIRecoverImageMsg,
    APIUpdateImageMsg,
)
from mn.image.service import ImageService
from mn.storage.backup.inventory import BackupStorageInventory
from mn.zone.cascade import TableCascade
from tests.support.small_node import SmallNode

GiB = 1024 ** 3
MiB = 1024 ** 2


@pytest.fixture
async def node(sqlite_url):
    # The process-wide registry: the tests change image/deletionPolicy like an admin would.
    node = SmallNode(sqlite_url, registry=REGISTRY)
    await node.start(ImageService)
    yield node
    for entry in (DELETION_POLICY, EXPUNGE_PERIOD):
        await entry.update(entry.default)
    await node.stop()


def add_bs(node, name="bs", *, total=100 * GiB, available=None, state="Enabled", status="Connected",
           zone_uuid=None) -> str:
    with node.db.session() as s:
        bs = BackupStorageVO(name=name, url=f"/{name}", totalCapacity=total,
                             availableCapacity=total if available is None else available,
                             type="SimulatorBackupStorage", state=state, status=status)
        s.add(bs)
        s.flush()
        if zone_uuid is not None:
            s.add(BackupStorageZoneRefVO(backupStorageUuid=bs.uuid, zoneUuid=zone_uuid))
        return bs.uuid


def available(node, bs_uuid) -> int:
    with node.db.session() as s:
        return s.get(BackupStorageVO, bs_uuid).availableCapacity


def rows(node, model, *where) -> int:
    with node.db.session() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


async def add_image(node, bs_uuids, name="image", url="http://images.example/c.qcow2?size=2G&actualSize=512M",
                    **kw):
    kw.setdefault("format", "qcow2")
    return (await node.intercept_and_call(APIAddImageMsg(name=name, url=url, backupStorageUuids=bs_uuids,
                                                         **kw))).inventory


async def failure(call) -> OperationError:
    with pytest.raises(OperationError) as excinfo:
        await call
    return excinfo.value


# -- adding ---------------------------------------------------------------------------

async def test_add_downloads_to_every_backup_storage_and_reserves_the_file_size(node):
    bs1, bs2 = add_bs(node, "bs1"), add_bs(node, "bs2")
    image = await add_image(node, [bs1, bs2], userTags=["golden"], description="centos")
    assert (image.status, image.state, image.size, image.actualSize) == ("Ready", "Enabled", 2 * GiB, 512 * MiB)
    assert (image.mediaType, image.format, image.platform, image.guestOsType, image.type) == (
        "RootVolumeTemplate", "qcow2", "Linux", "Linux", "zstack")
    assert (image.system, image.virtio, image.description) == (False, True, "centos")
    assert image.architecture in ("x86_64", "aarch64", "mips64el", "loongarch64")
    assert len(image.md5Sum) == 32
    assert sorted((r.backupStorageUuid, r.status, r.installPath) for r in image.backupStorageRefs) == sorted([
        (bs1, "Ready", f"/bs1/RootVolumeTemplate/{image.uuid}/{image.uuid}.img"),
        (bs2, "Ready", f"/bs2/RootVolumeTemplate/{image.uuid}/{image.uuid}.img")])
    assert available(node, bs1) == available(node, bs2) == 100 * GiB - 512 * MiB
    assert rows(node, UserTagVO, UserTagVO.resourceUuid == image.uuid, UserTagVO.tag == "golden") == 1


async def test_iso_media_type_and_platform_defaults(node):
    bs = add_bs(node)
    iso = await add_image(node, [bs], url="/opt/isos/centos.iso?size=4G", mediaType="ISO", format=None)
    assert (iso.mediaType, iso.format, iso.url) == ("ISO", "iso", "file:///opt/isos/centos.iso?size=4G")
    by_format = await add_image(node, [bs], url="http://x/a.iso", format="iso")
    assert (by_format.mediaType, by_format.size, by_format.actualSize) == ("ISO", GiB, GiB)
    para = await add_image(node, [bs], platform="Paravirtualization")
    assert (para.platform, para.guestOsType) == ("Other", "Other")
    win = await add_image(node, [bs], platform="WindowsVirtio")
    assert (win.platform, win.guestOsType) == ("Windows", "Windows")
    data = await add_image(node, [bs], mediaType="DataVolumeTemplate")
    assert (data.platform, data.architecture, data.guestOsType) == (None, None, None)


@pytest.mark.parametrize("kw, words", [
    ({"format": None}, "unknown format[None]"),
    ({"mediaType": "ISO", "system": True}, "ISO cannot be used as system image"),
    ({"url": "upload://x"}, "backup storage agent"),
    ({"url": "gopher://x/y.qcow2"}, "url must starts with"),
    ({"url": "/etc/passwd"}, "is in black list"),
    ({"url": "/home/u/.hidden/i.qcow2"}, "is in black list"),
    ({"url": "http://x/a.qcow2?size=12Q"}, "is not a size"),
    ({"url": "http://x/a.qcow2?size=1K"}, "too small for an image"),
])
async def test_bad_requests_are_refused_before_anything_happens(node, kw, words):
    bs = add_bs(node)
    err = await failure(add_image(node, [bs], **kw))
    assert err.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    assert words in err.error.details
    assert rows(node, ImageVO) == 0 and available(node, bs) == 100 * GiB


async def test_a_full_backup_storage_leaves_nothing_behind(node):
    roomy, full = add_bs(node, "roomy"), add_bs(node, "full", available=256 * MiB)
    msg = APIAddImageMsg(name="i", url="http://x/i.qcow2?size=1G", format="qcow2", backupStorageUuids=[roomy, full],
                         userTags=["t"])
    err = await failure(node.call(msg))  # straight to the handler: it checks again
    assert err.error.code == SysErrors.OPERATION_ERROR.value
    assert "has not enough capacity" in err.error.details and "full" in err.error.details
    assert (rows(node, ImageVO), rows(node, ImageBackupStorageRefVO), rows(node, UserTagVO)) == (0, 0, 0)
    assert (available(node, roomy), available(node, full)) == (100 * GiB, 256 * MiB)
    err = await failure(node.intercept_and_call(msg))  # the interceptor answers the same
    assert err.error.code == SysErrors.OPERATION_ERROR.value
    # Exactly full fails too (ZStack would quietly leave such a storage out).
    empty = add_bs(node, "empty", available=0)
    err = await failure(add_image(node, [roomy, empty]))
    assert "has not enough capacity" in err.error.details and rows(node, ImageVO) == 0


async def test_disabled_and_disconnected_backup_storage(node):
    disabled = add_bs(node, "off", state="Disabled")
    err = await failure(add_image(node, [disabled]))
    assert err.error.code == SysErrors.OPERATION_ERROR.value and "its state is Disabled" in err.error.details
    lost = add_bs(node, "lost", status="Disconnected")
    err = await failure(add_image(node, [lost]))
    assert "no backup storage specified" in err.error.details
    # As ZStack: among several, the disconnected one is dropped and the others serve.
    good = add_bs(node, "good")
    image = await add_image(node, [lost, good])
    assert [r.backupStorageUuid for r in image.backupStorageRefs] == [good]
    assert (rows(node, ImageVO), available(node, lost)) == (1, 100 * GiB)


async def test_concurrent_adds_never_overcommit_a_backup_storage(node):
    bs = add_bs(node, total=5 * GiB)
    results = await asyncio.gather(
        *(node.call(APIAddImageMsg(name=f"i{i}", url="http://x/i.qcow2?size=1G", format="raw",
                                   backupStorageUuids=[bs])) for i in range(8)),
        return_exceptions=True)
    failed = [r for r in results if isinstance(r, OperationError)]
    assert (len(results) - len(failed), len(failed)) == (5, 3)
    assert all("has not enough capacity" in f.error.details for f in failed)
    assert available(node, bs) == 0
    assert rows(node, ImageVO) == rows(node, ImageBackupStorageRefVO) == 5


# -- changing -------------------------------------------------------------------------

async def test_update_and_change_state(node):
    image = await add_image(node, [add_bs(node)])
    updated = (await node.call(APIUpdateImageMsg(uuid=image.uuid, name="renamed", platform="Windows",
                                                 system=True, format="raw", virtio=False))).inventory
    assert (updated.name, updated.platform, updated.system, updated.format, updated.virtio) == (
        "renamed", "Windows", True, "raw", False)
    assert updated.mediaType == image.mediaType and updated.description == image.description
    for event, state in (("disable", "Disabled"), ("disable", "Disabled"), ("enable", "Enabled")):
        changed = (await node.call(APIChangeImageStateMsg(uuid=image.uuid, stateEvent=event))).inventory
        assert changed.state == state
    err = await failure(node.call(APIUpdateImageMsg(uuid="f" * 32, name="x")))
    assert err.error.code == SysErrors.RESOURCE_NOT_FOUND.value


# -- deleting, recovering, expunging ----------------------------------------------------

async def test_delay_policy_delete_recover_then_expunge(node):
    bs1, bs2 = add_bs(node, "bs1"), add_bs(node, "bs2")
    image = await add_image(node, [bs1, bs2], userTags=["keep"])
    await node.call(APIDeleteImageMsg(uuid=image.uuid))
    with node.db.session() as s:
        assert s.get(ImageVO, image.uuid).status == "Deleted"
        assert {r.status for r in s.scalars(select(ImageBackupStorageRefVO))} == {"Deleted"}
    assert available(node, bs1) == 100 * GiB - 512 * MiB  # still held until expunged

    recovered = (await node.call(APIRecoverImageMsg(imageUuid=image.uuid, backupStorageUuids=[bs2]))).inventory
    assert recovered.status == "Ready"
    assert {r.backupStorageUuid: r.status for r in recovered.backupStorageRefs} == {bs1: "Deleted", bs2: "Ready"}

    await node.intercept_and_call(APIDeleteImageMsg(uuid=image.uuid))
    await node.intercept_and_call(APIExpungeImageMsg(imageUuid=image.uuid, backupStorageUuids=[bs1]))
    assert available(node, bs1) == 100 * GiB and rows(node, ImageVO) == 1
    await node.intercept_and_call(APIExpungeImageMsg(imageUuid=image.uuid))
    assert available(node, bs2) == 100 * GiB
    assert (rows(node, ImageVO), rows(node, ImageBackupStorageRefVO), rows(node, UserTagVO)) == (0, 0, 0)


async def test_delete_from_one_backup_storage_keeps_the_image_ready(node):
    bs1, bs2 = add_bs(node, "bs1"), add_bs(node, "bs2")
    image = await add_image(node, [bs1, bs2])
    await node.call(APIDeleteImageMsg(uuid=image.uuid, backupStorageUuids=[bs1]))
    with node.db.session() as s:
        assert s.get(ImageVO, image.uuid).status == "Ready"
    with node.db.session() as s:
        assert image_backup_storages(s, image.uuid) == [bs2]


async def test_direct_policy_deletes_at_once_and_returns_capacity(node):
    await DELETION_POLICY.update("Direct")
    bs = add_bs(node)
    image = await add_image(node, [bs], userTags=["gone"])
    await node.call(APIDeleteImageMsg(uuid=image.uuid))
    assert (rows(node, ImageVO), rows(node, ImageBackupStorageRefVO), rows(node, UserTagVO)) == (0, 0, 0)
    assert available(node, bs) == 100 * GiB
    await node.call(APIDeleteImageMsg(uuid=image.uuid))  # already gone: still a success


async def test_expunge_and_recover_refuse_what_is_not_deleted(node):
    bs, other = add_bs(node, "bs"), add_bs(node, "other")
    image = await add_image(node, [bs])
    for msg in (APIExpungeImageMsg(imageUuid=image.uuid), APIRecoverImageMsg(imageUuid=image.uuid)):
        err = await failure(node.intercept_and_call(msg))
        assert err.error.code == SysErrors.OPERATION_ERROR.value and "not deleted on any" in err.error.details
    err = await failure(node.intercept_and_call(APIExpungeImageMsg(imageUuid=image.uuid, backupStorageUuids=[bs])))
    assert err.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value and "is not Deleted" in err.error.details
    err = await failure(node.call(APIRecoverImageMsg(imageUuid=image.uuid, backupStorageUuids=[other])))
    assert err.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value and "is not on the backup storage" in (
        err.error.details)
    with node.db.session() as s:
        assert s.get(ImageVO, image.uuid).status == "Ready"


async def test_the_expunger_honours_period_and_policy(node):
    bs = add_bs(node)
    image = await add_image(node, [bs])
    await node.call(APIDeleteImageMsg(uuid=image.uuid))
    expunger = node.services["image"].expunger
    assert await expunger.run_once() == 0  # the 3-day period has not passed
    await EXPUNGE_PERIOD.update(0)
    await DELETION_POLICY.update("Never")
    assert await expunger.run_once() == 0 and rows(node, ImageVO) == 1
    # A policy change wakes the expunger at once, whatever its interval (an hour).
    await DELETION_POLICY.update("Delay")
    for _ in range(100):
        if rows(node, ImageVO) == 0:
            break
        await asyncio.sleep(0.05)
    assert rows(node, ImageVO) == 0 and available(node, bs) == 100 * GiB


# -- backup storage deletion and lookups ----------------------------------------------------

async def test_deleting_a_backup_storage_drops_only_its_copies(node):
    node.cascade.register(TableCascade(BackupStorageVO))
    gone, kept = add_bs(node, "gone"), add_bs(node, "kept")
    only_there = await add_image(node, [gone], name="only", userTags=["x"])
    on_both = await add_image(node, [gone, kept], name="both")
    deleted_elsewhere = await add_image(node, [gone, kept], name="half")
    await node.call(APIDeleteImageMsg(uuid=deleted_elsewhere.uuid, backupStorageUuids=[kept]))

    deleted = await node.cascade.delete("BackupStorageVO", [gone])
    assert deleted["ImageVO"] == [only_there.uuid]
    with node.db.session() as s:
        assert s.get(ImageVO, only_there.uuid) is None
        assert s.get(ImageVO, on_both.uuid).status == "Ready"
        assert s.get(ImageVO, deleted_elsewhere.uuid).status == "Deleted"
        refs = s.execute(select(ImageBackupStorageRefVO.imageUuid, ImageBackupStorageRefVO.backupStorageUuid))
        assert sorted(refs) == sorted([(on_both.uuid, kept), (deleted_elsewhere.uuid, kept)])
    assert rows(node, UserTagVO) == 0
    assert available(node, kept) == 100 * GiB - 2 * 512 * MiB  # copies kept on it still hold their space


async def test_image_backup_storages_lists_usable_ready_copies(node):
    with node.db.session() as s:
        zone = ZoneVO(name="z", type="zstack", state="Enabled", isDefault=False)
        s.add(zone)
    in_zone, elsewhere = add_bs(node, "in", zone_uuid=zone.uuid), add_bs(node, "out")
    disabled = add_bs(node, "disabled", zone_uuid=zone.uuid)
    image = await add_image(node, [in_zone, elsewhere, disabled])
    with node.db.session() as s:
        s.get(BackupStorageVO, disabled).state = "Disabled"
    with node.db.session() as s:
        assert image_backup_storages(s, image.uuid) == sorted([in_zone, elsewhere])
        assert image_backup_storages(s, image.uuid, zone.uuid) == [in_zone]
        assert image_backup_storages(s, "0" * 32) == []
    await node.call(APIDeleteImageMsg(uuid=image.uuid, backupStorageUuids=[in_zone]))
    with node.db.session() as s:
        assert image_backup_storages(s, image.uuid, zone.uuid) == []


async def test_query_shows_copies_and_walks_to_backup_storage(node):
    bs1, bs2 = add_bs(node, "first"), add_bs(node, "second")
    a = await add_image(node, [bs1], name="a")
    b = await add_image(node, [bs1, bs2], name="b")
    engine = QueryEngine(node)
    assert ImageBackupStorageRefInventory.RELATIONS["backupStorage"].target_class() is BackupStorageInventory

    def names(reply):
        return sorted(inv["name"] for inv in reply.inventories)

    reply = await engine.query(APIQueryImageMsg(conditions=[QueryCondition(name="uuid", op="=", value=b.uuid)]))
    [inventory] = reply.inventories
    assert sorted(r["backupStorageUuid"] for r in inventory["backupStorageRefs"]) == sorted([bs1, bs2])
    assert "id" not in inventory["backupStorageRefs"][0]
    by_name = await engine.query(APIQueryImageMsg(conditions=[
        QueryCondition(name="backupStorageRefs.backupStorage.name", op="=", value="second")]))
    assert names(by_name) == ["b"]
    by_uuid = await engine.query(APIQueryImageMsg(conditions=[
        QueryCondition(name="backupStorageRef.backupStorageUuid", op="=", value=bs1)]))
    assert names(by_uuid) == ["a", "b"]
    ready = await engine.query(APIQueryImageMsg(conditions=[QueryCondition(name="status", op="=", value="Ready"),
                                                            QueryCondition(name="size", op=">", value="1")]))
    assert names(ready) == [a.name, b.name]
