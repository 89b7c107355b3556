"""Images in backup storage deletions (ZStack's ImageCascadeExtension).

Deleting a backup storage drops the images' copies on it without touching
their bits or capacity (ZStack's DeleteReference policy: the storage is
going away). Two extensions share the work:

* :class:`ImageCopyCascade` (``ImageBackupStorageRefVO``, ids as uuids):
  the copies on the storages being deleted; an image keeping other copies
  becomes Deleted if all of those are;
* :class:`ImageCascade` (``ImageVO``): the images left with no copy at
  all, removed with their tags and owners.

Neither refuses a deletion, as in ZStack.
"""

from __future__ import annotations

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session, aliased

from mn.cascade import CascadeContext, CascadeExtension
from mn.db.models.image import ImageBackupStorageRefVO, ImageVO
from mn.image import constants as c
from mn.image.backup import copies_of, drop_copy
from mn.image.lifecycle import remove_images

BACKUP_STORAGE = "BackupStorageVO"
Ref = ImageBackupStorageRefVO


def _deleted_storages(ctx: CascadeContext, parent_uuids: list[str]) -> list[str]:
    return list(ctx.tree.get(BACKUP_STORAGE, parent_uuids))


class ImageCopyCascade(CascadeExtension):
    """Copies of images on backup storages being deleted."""

    resource_type = Ref.__tablename__
    parents = (BACKUP_STORAGE,)

    async def children(self, ctx: CascadeContext, parent_type: str, parent_uuids: list[str]) -> list[str]:
        def find(session: Session) -> list[str]:
            ids = session.scalars(select(Ref.id).where(Ref.backupStorageUuid.in_(parent_uuids)).order_by(Ref.id))
            return [str(i) for i in ids]

        return await ctx.node.db.run(find)

    async def delete(self, ctx: CascadeContext, uuids: list[str]) -> None:
        ids = [int(i) for i in uuids]

        def drop(session: Session) -> None:
            images = set(session.scalars(select(Ref.imageUuid).where(Ref.id.in_(ids))))
            session.execute(delete(Ref).where(Ref.id.in_(ids)), execution_options={"synchronize_session": False})
            for image in session.scalars(select(ImageVO).where(ImageVO.uuid.in_(images))):
                left = copies_of(session, image.uuid)
                # An image with no copy left is ImageCascade's to remove.
                if left and all(ref.status == c.DELETED for ref in left):
                    image.status = c.DELETED

        await ctx.node.db.run(drop)


class ImageCascade(CascadeExtension):
    """Images whose every copy is on backup storages being deleted (or, as a root,
    images deleted outright: their copies go and give their capacity back)."""

    resource_type = ImageVO.__tablename__
    parents = (BACKUP_STORAGE,)

    async def children(self, ctx: CascadeContext, parent_type: str, parent_uuids: list[str]) -> list[str]:
        going = _deleted_storages(ctx, parent_uuids)

        def find(session: Session) -> list[str]:
            other = aliased(Ref)
            elsewhere = exists().where(other.imageUuid == Ref.imageUuid, other.backupStorageUuid.not_in(going))
            stmt = (select(Ref.imageUuid).where(Ref.backupStorageUuid.in_(parent_uuids), ~elsewhere)
                    .distinct().order_by(Ref.imageUuid))
            return list(session.scalars(stmt))

        return await ctx.node.db.run(find)

    async def delete(self, ctx: CascadeContext, uuids: list[str]) -> None:
        going = set(ctx.tree.get(BACKUP_STORAGE, ()))

        def remove(session: Session) -> None:
            for image in session.scalars(select(ImageVO).where(ImageVO.uuid.in_(uuids))).all():
                for ref in copies_of(session, image.uuid):
                    drop_copy(session, image, ref, release_capacity=ref.backupStorageUuid not in going)
            remove_images(ctx.node, session, uuids)

        await ctx.node.db.run(remove)
