"""The image service: add images to backup storage, update, enable/disable,
delete, recover and expunge them.

Operations on one image run on the MN that owns it on the ring (the APIs
are routed by its uuid) and, there, one at a time in the work queue
``image-<uuid>``. Adding an image runs where the request arrived: the image
does not exist yet, and its one transaction (row, copies, capacity) needs
no queue.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from mn.image import constants as c
from mn.image.backup import download_targets
from mn.image.cascade import ImageCascade, ImageCopyCascade
from mn.image.config import DELETION_POLICY
from mn.image.expunger import ImageExpunger
from mn.image.inventory import ImageInventory
from mn.image import lifecycle
from mn.image.lifecycle import deleted_copies, find_image, inventory_of
from mn.image.messages import (
    SERVICE_ID,
    APIAddImageEvent,
    APIAddImageMsg,
    APIChangeImageStateEvent,
    APIChangeImageStateMsg,
    APIDeleteImageEvent,
    APIDeleteImageMsg,
    APIExpungeImageEvent,
    APIExpungeImageMsg,
    APIRecoverImageEvent,
    APIRecoverImageMsg,
    APIUpdateImageEvent,
    APIUpdateImageMsg,
)
from mn.image.spec import image_spec
from mn.service import Service, handles, intercepts

if TYPE_CHECKING:
    from mn.node import ManagementNode

log = logging.getLogger(__name__)

#: ZStack's ImageStateEvent -> ImageState (either event from either state).
STATE_OF_EVENT = {"enable": c.ENABLED, "disable": c.DISABLED}


def queue_of(image_uuid: str) -> str:
    """The work queue in which one image's operations run one at a time."""
    return f"image-{image_uuid}"


class ImageService(Service):
    """ZStack's ImageManager and ImageBase."""

    SERVICE_ID = SERVICE_ID

    def __init__(self, node: "ManagementNode"):
        super().__init__(node)
        self.expunger = ImageExpunger(self)

    async def start(self) -> None:
        self.node.cascade.register(ImageCopyCascade())
        self.node.cascade.register(ImageCascade())
        self.expunger.start()

    async def stop(self) -> None:
        await self.expunger.stop()

    async def get_inventory(self, image_uuid: str) -> ImageInventory:
        """The image's inventory; RESOURCE_NOT_FOUND if there is no such image."""
        return await self.node.db.run(lambda s: inventory_of(s, find_image(s, image_uuid)))

    async def expunge(self, image_uuid: str, backup_storage_uuids: list[str] | None = None) -> None:
        """Expunge the image's deleted copies (on ``backup_storage_uuids``, or all) in its queue."""
        await self.node.queues.run(queue_of(image_uuid), lambda: self.node.db.run(
            lambda s: lifecycle.expunge_image(self.node, s, image_uuid, backup_storage_uuids)))
        log.info("expunged image %s from %s", image_uuid, backup_storage_uuids or "every backup storage")

    # -- APIs ------------------------------------------------------------------------

    @intercepts(APIAddImageMsg)
    async def check_add(self, msg: APIAddImageMsg) -> None:
        spec = image_spec(msg)
        await self.node.db.run(download_targets, msg.backupStorageUuids, spec.download.actual_size)

    @handles(APIAddImageMsg)
    async def add_image(self, msg: APIAddImageMsg) -> APIAddImageEvent:
        spec = image_spec(msg)
        inventory = await self.node.db.run(lambda s: lifecycle.add_image(self.node, s, msg, spec))
        log.info("added image %s (%s, %d bytes) to backup storage %s", inventory.uuid, inventory.name,
                 inventory.actualSize, [r.backupStorageUuid for r in inventory.backupStorageRefs])
        return APIAddImageEvent(inventory=inventory)

    @handles(APIUpdateImageMsg)
    async def update_image(self, msg: APIUpdateImageMsg) -> APIUpdateImageEvent:
        changes = msg.model_dump(include={"name", "description", "guestOsType", "mediaType", "format",
                                          "system", "platform", "architecture", "virtio"}, exclude_none=True)

        def change(session: Session) -> ImageInventory:
            vo = find_image(session, msg.uuid)
            for name, value in changes.items():
                setattr(vo, name, value)
            return inventory_of(session, vo)

        inventory = await self.node.queues.run(queue_of(msg.uuid), lambda: self.node.db.run(change))
        return APIUpdateImageEvent(inventory=inventory)

    @handles(APIChangeImageStateMsg)
    async def change_image_state(self, msg: APIChangeImageStateMsg) -> APIChangeImageStateEvent:
        def change(session: Session) -> ImageInventory:
            vo = find_image(session, msg.uuid)
            vo.state = STATE_OF_EVENT[msg.stateEvent]
            return inventory_of(session, vo)

        inventory = await self.node.queues.run(queue_of(msg.uuid), lambda: self.node.db.run(change))
        log.info("image %s is %s", msg.uuid, inventory.state)
        return APIChangeImageStateEvent(inventory=inventory)

    @handles(APIDeleteImageMsg)
    async def delete_image(self, msg: APIDeleteImageMsg) -> APIDeleteImageEvent:
        policy = DELETION_POLICY.value
        await self.node.queues.run(queue_of(msg.uuid), lambda: self.node.db.run(
            lambda s: lifecycle.delete_image(self.node, s, msg.uuid, msg.backupStorageUuids, policy)))
        log.info("deleted image %s from %s (policy %s)", msg.uuid,
                 msg.backupStorageUuids or "every backup storage", policy)
        return APIDeleteImageEvent()

    @intercepts(APIExpungeImageMsg)
    async def check_expunge(self, msg: APIExpungeImageMsg) -> None:
        await self.node.db.run(lambda s: deleted_copies(s, find_image(s, msg.imageUuid),
                                                        msg.backupStorageUuids, "expunge"))

    @handles(APIExpungeImageMsg)
    async def expunge_image(self, msg: APIExpungeImageMsg) -> APIExpungeImageEvent:
        await self.expunge(msg.imageUuid, msg.backupStorageUuids)
        return APIExpungeImageEvent()

    @intercepts(APIRecoverImageMsg)
    async def check_recover(self, msg: APIRecoverImageMsg) -> None:
        await self.node.db.run(lambda s: deleted_copies(s, find_image(s, msg.imageUuid),
                                                        msg.backupStorageUuids, "recover"))

    @handles(APIRecoverImageMsg)
    async def recover_image(self, msg: APIRecoverImageMsg) -> APIRecoverImageEvent:
        inventory = await self.node.queues.run(queue_of(msg.imageUuid), lambda: self.node.db.run(
            lambda s: lifecycle.recover_image(s, msg.imageUuid, msg.backupStorageUuids)))
        log.info("recovered image %s on %s", msg.imageUuid,
                 [r.backupStorageUuid for r in inventory.backupStorageRefs if r.status == c.READY])
        return APIRecoverImageEvent(inventory=inventory)
