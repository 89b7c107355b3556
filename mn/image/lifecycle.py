"""An image's life in the database: added, deleted, recovered, expunged, removed.

Each function runs inside the caller's transaction (``await node.db.run``)
and raises OperationError before anything is written when it refuses, so
a refused call changes nothing.

Deleting follows ZStack's ImageBase: with the Direct policy a copy goes at
once (its capacity back to the backup storage); with Delay or Never it is
marked Deleted and keeps its capacity until expunged (the image is Deleted
once all its copies are). An image left with no copy is removed, with its
tags and owner.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from mn.api.resource import persist_new
from mn.db.models.image import ImageBackupStorageRefVO, ImageVO
from mn.errors import OperationError, SysErrors
from mn.image import constants as c
from mn.image.backup import add_copy, copies_of, download_targets, drop_copy
from mn.image.config import DELETE_REFERENCE, DIRECT
from mn.image.download import install_path
from mn.image.inventory import ImageBackupStorageRefInventory, ImageInventory
from mn.image.messages import APIAddImageMsg
from mn.image.spec import ImageSpec
from mn.tags import TagManager

if TYPE_CHECKING:
    from mn.node import ManagementNode

RESOURCE_TYPE = ImageVO.__tablename__


def image_not_found(image_uuid: str) -> OperationError:
    return OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                             f"unable to find image[uuid:{image_uuid}], it may have been deleted")


def find_image(session: Session, image_uuid: str) -> ImageVO:
    """The image's row; RESOURCE_NOT_FOUND if there is none."""
    vo = session.get(ImageVO, image_uuid)
    if vo is None:
        raise image_not_found(image_uuid)
    return vo


def inventory_of(session: Session, vo: ImageVO) -> ImageInventory:
    """The image's inventory with its copies."""
    session.flush()
    refs = [ImageBackupStorageRefInventory.from_vo(ref) for ref in copies_of(session, vo.uuid)]
    return ImageInventory.from_vo(vo, backupStorageRefs=refs)


# -- adding --------------------------------------------------------------------------

def add_image(node: "ManagementNode", session: Session, msg: APIAddImageMsg, spec: ImageSpec) -> ImageInventory:
    """Create the image and download it to the backup storages of ``msg`` (simulated: at once).

    The image is Downloading until every copy is placed, then Ready; all of
    it is one transaction, so a backup storage that is full or disabled
    leaves no image, no copy and no reserved capacity behind.
    """
    targets = download_targets(session, msg.backupStorageUuids, spec.download.actual_size)
    vo = ImageVO(name=msg.name, description=msg.description, status=c.DOWNLOADING, state=c.ENABLED,
                 size=spec.download.size, actualSize=spec.download.actual_size, md5Sum=spec.download.md5,
                 platform=spec.platform, type=spec.type, format=spec.format, url=spec.url,
                 system=msg.system, mediaType=spec.media_type, guestOsType=spec.guest_os_type,
                 architecture=spec.architecture, virtio=msg.virtio)
    persist_new(node, session, vo, msg, RESOURCE_TYPE)
    for bs in targets:
        add_copy(session, vo, bs, install_path(bs.url, vo.mediaType, vo.uuid))
    vo.status = c.READY
    return inventory_of(session, vo)


# -- deleting, recovering, expunging ------------------------------------------------------

def delete_image(node: Any, session: Session, image_uuid: str, backup_storage_uuids: list[str] | None,
                 policy: str) -> None:
    """Delete the image's copies on ``backup_storage_uuids`` (all when None) by ``policy``.

    A missing image, or a backup storage not holding it, is no error (as ZStack).
    """
    image = session.get(ImageVO, image_uuid)
    if image is None:
        return
    refs = copies_of(session, image_uuid)
    wanted = set(backup_storage_uuids) if backup_storage_uuids is not None else None
    remaining = []
    for ref in refs:
        if wanted is not None and ref.backupStorageUuid not in wanted:
            remaining.append(ref)
        elif policy in (DIRECT, DELETE_REFERENCE):
            drop_copy(session, image, ref, release_capacity=policy == DIRECT)
        else:
            ref.status = c.DELETED
            remaining.append(ref)
    if not remaining:
        remove_images(node, session, [image_uuid])
    elif all(ref.status == c.DELETED for ref in remaining):
        image.status = c.DELETED
    session.flush()


def deleted_copies(session: Session, image: ImageVO, backup_storage_uuids: list[str] | None,
                   action: str) -> list[ImageBackupStorageRefVO]:
    """The copies an expunge or a recover (``action``) works on, checked as ZStack does:
    the named ones must exist and be Deleted; with none named, every Deleted
    copy, of which there must be one."""
    refs = copies_of(session, image.uuid)
    if not backup_storage_uuids:
        chosen = [ref for ref in refs if ref.status == c.DELETED]
        if not chosen:
            raise OperationError.of(
                SysErrors.OPERATION_ERROR,
                f"the image[uuid:{image.uuid}, name:{image.name}] is not deleted on any backup storage, "
                f"there is nothing to {action}")
        return chosen
    by_bs = {ref.backupStorageUuid: ref for ref in refs}
    chosen = []
    for bs_uuid in dict.fromkeys(backup_storage_uuids):
        ref = by_bs.get(bs_uuid)
        if ref is None:
            raise OperationError.of(
                SysErrors.INVALID_ARGUMENT_ERROR,
                f"the image[uuid:{image.uuid}, name:{image.name}] is not on the backup storage[uuid:{bs_uuid}]")
        if ref.status != c.DELETED:
            raise OperationError.of(
                SysErrors.INVALID_ARGUMENT_ERROR,
                f"the image[uuid:{image.uuid}, name:{image.name}]'s status[{ref.status}] is not Deleted on "
                f"the backup storage[uuid:{bs_uuid}]")
        chosen.append(ref)
    return chosen


def recover_image(session: Session, image_uuid: str, backup_storage_uuids: list[str] | None) -> ImageInventory:
    """Make the deleted copies Ready again, and the image Ready."""
    image = find_image(session, image_uuid)
    for ref in deleted_copies(session, image, backup_storage_uuids, "recover"):
        ref.status = c.READY
    image.status = c.READY
    return inventory_of(session, image)


def expunge_image(node: Any, session: Session, image_uuid: str, backup_storage_uuids: list[str] | None) -> None:
    """Remove the deleted copies for good, their capacity back to their backup storages;
    an image left with no copy is removed."""
    image = find_image(session, image_uuid)
    for ref in deleted_copies(session, image, backup_storage_uuids, "expunge"):
        drop_copy(session, image, ref)
    session.flush()
    if not copies_of(session, image_uuid):
        remove_images(node, session, [image_uuid])


def remove_images(node: Any, session: Session, image_uuids: Iterable[str]) -> None:
    """Delete the images' rows, copies, tags and owners (capacity is the caller's business)."""
    uuids = list(image_uuids)
    if not uuids:
        return
    session.flush()
    session.execute(delete(ImageBackupStorageRefVO).where(ImageBackupStorageRefVO.imageUuid.in_(uuids)),
                    execution_options={"synchronize_session": False})
    session.execute(delete(ImageVO).where(ImageVO.uuid.in_(uuids)),
                    execution_options={"synchronize_session": False})
    # The rows are gone: later flushes must not write the loaded objects back.
    for obj in [o for o in session if isinstance(o, (ImageVO, ImageBackupStorageRefVO))]:
        if getattr(obj, "uuid", None) in uuids or getattr(obj, "imageUuid", None) in uuids:
            session.expunge(obj)
    TagManager.delete_tags_of_in_session(session, uuids)
    identity = getattr(node, "identity", None)
    if identity is not None:
        identity.delete_refs_in_session(session, uuids)
