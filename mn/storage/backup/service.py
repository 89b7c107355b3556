"""The backup storage service: add, attach/detach to zones, state, update, reconnect, delete.

Operations on one backup storage run on the MN that owns it on the ring
(its APIs are routed by the storage's uuid) and, there, one at a time in
the work queue ``backup-storage-<uuid>``. A backup storage belongs to no
zone (ZStack's BackupStorageCascadeExtension has no parent): deleting a
zone only detaches it (the zone refs go with the zone, by foreign key).
The simulator type needs no agent: it is Connected at once.
"""

from __future__ import annotations

import logging
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mn.api.resource import persist_new
from mn.db.models.storage import (
    SIMULATOR_BACKUP_STORAGE_TYPE,
    STATE_ENABLED,
    STATUS_CONNECTED,
    BackupStorageVO,
    BackupStorageZoneRefVO,
)
from mn.db.models.zone import ZoneVO
from mn.errors import OperationError, SysErrors
from mn.service import Service, handles, intercepts
from mn.storage.backup.inventory import BackupStorageInventory
from mn.storage.backup.messages import (
    SERVICE_ID,
    APIAddBackupStorageEvent,
    APIAddBackupStorageMsg,
    APIAddSimulatorBackupStorageMsg,
    APIAttachBackupStorageToZoneEvent,
    APIAttachBackupStorageToZoneMsg,
    APIChangeBackupStorageStateEvent,
    APIChangeBackupStorageStateMsg,
    APIDeleteBackupStorageEvent,
    APIDeleteBackupStorageMsg,
    APIDetachBackupStorageFromZoneEvent,
    APIDetachBackupStorageFromZoneMsg,
    APIGetBackupStorageCapacityMsg,
    APIGetBackupStorageCapacityReply,
    APIGetBackupStorageTypesMsg,
    APIGetBackupStorageTypesReply,
    APIReconnectBackupStorageEvent,
    APIReconnectBackupStorageMsg,
    APIUpdateBackupStorageEvent,
    APIUpdateBackupStorageMsg,
)
from mn.storage.state import BACKUP_STORAGE_STATE_MACHINE
from mn.zone.cascade import TableCascade
from mn.zone.service import zone_not_found

log = logging.getLogger(__name__)


def queue_of(bs_uuid: str) -> str:
    """The work queue in which one backup storage's operations run one at a time."""
    return f"backup-storage-{bs_uuid}"


def find_backup_storage(session: Session, bs_uuid: str) -> BackupStorageVO:
    """The storage's row; RESOURCE_NOT_FOUND if there is none."""
    vo = session.get(BackupStorageVO, bs_uuid)
    if vo is None:
        raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                                f"unable to find backup storage[uuid:{bs_uuid}], it may have been deleted")
    return vo


def inventory_of(session: Session, vo: BackupStorageVO) -> BackupStorageInventory:
    """The inventory of ``vo`` as the transaction now sees it (zone refs reloaded)."""
    session.flush()
    session.refresh(vo)
    return BackupStorageInventory.from_vo(vo)


def _attached(session: Session, bs_uuid: str, zone_uuid: str) -> bool:
    ref = BackupStorageZoneRefVO
    return session.scalar(select(ref.id).where(ref.backupStorageUuid == bs_uuid,
                                               ref.zoneUuid == zone_uuid)) is not None


def _already_attached(bs_uuid: str, zone_uuid: str) -> OperationError:
    return OperationError.of(SysErrors.OPERATION_ERROR,
                             f"backup storage[uuid:{bs_uuid}] has been attached to zone[uuid:{zone_uuid}]")


def _not_attached(bs_uuid: str, zone_uuid: str) -> OperationError:
    return OperationError.of(SysErrors.OPERATION_ERROR,
                             f"backup storage[uuid:{bs_uuid}] has not been attached to zone[uuid:{zone_uuid}]")


class BackupStorageService(Service):
    """ZStack's BackupStorageManager and BackupStorageBase, for the simulator type."""

    SERVICE_ID = SERVICE_ID

    #: Types this MN can add (ZStack's BackupStorageFactory types).
    STORAGE_TYPES = (SIMULATOR_BACKUP_STORAGE_TYPE,)

    async def start(self) -> None:
        # A root of cascades, as in ZStack: image copies register under it.
        self.node.cascade.register(TableCascade(BackupStorageVO))

    async def get_inventory(self, bs_uuid: str) -> BackupStorageInventory:
        """The storage's inventory; RESOURCE_NOT_FOUND if there is no such storage."""
        return await self.node.db.run(lambda s: BackupStorageInventory.from_vo(find_backup_storage(s, bs_uuid)))

    @handles(APIAddSimulatorBackupStorageMsg)
    async def add_backup_storage(self, msg: APIAddBackupStorageMsg) -> APIAddBackupStorageEvent:
        def create(session: Session) -> BackupStorageInventory:
            vo = BackupStorageVO(name=msg.name, description=msg.description, url=msg.url,
                                 type=msg.STORAGE_TYPE, state=STATE_ENABLED, status=STATUS_CONNECTED,
                                 totalCapacity=msg.totalCapacity, availableCapacity=msg.availableCapacity)
            persist_new(self.node, session, vo, msg, BackupStorageVO.__tablename__)
            return inventory_of(session, vo)

        inventory = await self.node.db.run(create)
        log.info("added %s %s (%s)", inventory.type, inventory.uuid, inventory.name)
        return APIAddBackupStorageEvent(inventory=inventory)

    @handles(APIUpdateBackupStorageMsg)
    async def update_backup_storage(self, msg: APIUpdateBackupStorageMsg) -> APIUpdateBackupStorageEvent:
        def change(session: Session) -> BackupStorageInventory:
            vo = find_backup_storage(session, msg.uuid)
            if msg.name is not None:
                vo.name = msg.name
            if msg.description is not None:
                vo.description = msg.description
            return inventory_of(session, vo)

        inventory = await self.node.queues.run(queue_of(msg.uuid), lambda: self.node.db.run(change))
        return APIUpdateBackupStorageEvent(inventory=inventory)

    @handles(APIChangeBackupStorageStateMsg)
    async def change_backup_storage_state(self, msg: APIChangeBackupStorageStateMsg
                                          ) -> APIChangeBackupStorageStateEvent:
        def change(session: Session) -> BackupStorageInventory:
            vo = find_backup_storage(session, msg.uuid)
            previous = vo.state
            vo.state = BACKUP_STORAGE_STATE_MACHINE.next_state(vo.state, msg.stateEvent)
            log.info("backup storage %s: %s -> %s by event %s", vo.uuid, previous, vo.state, msg.stateEvent)
            return inventory_of(session, vo)

        inventory = await self.node.queues.run(queue_of(msg.uuid), lambda: self.node.db.run(change))
        return APIChangeBackupStorageStateEvent(inventory=inventory)

    @handles(APIReconnectBackupStorageMsg)
    async def reconnect_backup_storage(self, msg: APIReconnectBackupStorageMsg) -> APIReconnectBackupStorageEvent:
        def reconnect(session: Session) -> BackupStorageInventory:
            vo = find_backup_storage(session, msg.uuid)
            vo.status = STATUS_CONNECTED
            return inventory_of(session, vo)

        inventory = await self.node.queues.run(queue_of(msg.uuid), lambda: self.node.db.run(reconnect))
        return APIReconnectBackupStorageEvent(inventory=inventory)

    @handles(APIDeleteBackupStorageMsg)
    async def delete_backup_storage(self, msg: APIDeleteBackupStorageMsg) -> APIDeleteBackupStorageEvent:
        async def run() -> None:
            exists = await self.node.db.run(lambda s: s.get(BackupStorageVO, msg.uuid) is not None)
            if not exists:
                return  # already gone: deleting succeeds, as in ZStack
            deleted = await self.node.cascade.delete(BackupStorageVO.__tablename__, [msg.uuid],
                                                     mode=msg.deleteMode, request=msg)
            log.info("deleted backup storage %s (%s mode) and %s", msg.uuid, msg.deleteMode,
                     {t: len(u) for t, u in deleted.items() if t != BackupStorageVO.__tablename__}
                     or "nothing on it")

        await self.node.queues.run(queue_of(msg.uuid), run)
        return APIDeleteBackupStorageEvent()

    @intercepts(APIAttachBackupStorageToZoneMsg)
    async def check_attach(self, msg: APIAttachBackupStorageToZoneMsg) -> None:
        if await self.node.db.run(_attached, msg.backupStorageUuid, msg.zoneUuid):
            raise _already_attached(msg.backupStorageUuid, msg.zoneUuid)

    @handles(APIAttachBackupStorageToZoneMsg)
    async def attach_to_zone(self, msg: APIAttachBackupStorageToZoneMsg) -> APIAttachBackupStorageToZoneEvent:
        def attach(session: Session) -> BackupStorageInventory:
            # A shared lock on the zone: its deletion waits for this attachment, then removes it.
            zone = session.scalar(select(ZoneVO.uuid).where(ZoneVO.uuid == msg.zoneUuid).with_for_update(read=True))
            if zone is None:
                raise zone_not_found(msg.zoneUuid)
            vo = find_backup_storage(session, msg.backupStorageUuid)
            if _attached(session, vo.uuid, msg.zoneUuid):
                raise _already_attached(vo.uuid, msg.zoneUuid)
            session.add(BackupStorageZoneRefVO(backupStorageUuid=vo.uuid, zoneUuid=msg.zoneUuid))
            try:
                session.flush()
            except IntegrityError:
                raise _already_attached(vo.uuid, msg.zoneUuid) from None
            return inventory_of(session, vo)

        inventory = await self.node.queues.run(queue_of(msg.backupStorageUuid), lambda: self.node.db.run(attach))
        log.info("attached backup storage %s to zone %s", msg.backupStorageUuid, msg.zoneUuid)
        return APIAttachBackupStorageToZoneEvent(inventory=inventory)

    @intercepts(APIDetachBackupStorageFromZoneMsg)
    async def check_detach(self, msg: APIDetachBackupStorageFromZoneMsg) -> None:
        if not await self.node.db.run(_attached, msg.backupStorageUuid, msg.zoneUuid):
            raise _not_attached(msg.backupStorageUuid, msg.zoneUuid)

    @handles(APIDetachBackupStorageFromZoneMsg)
    async def detach_from_zone(self, msg: APIDetachBackupStorageFromZoneMsg
                               ) -> APIDetachBackupStorageFromZoneEvent:
        def detach(session: Session) -> BackupStorageInventory:
            vo = find_backup_storage(session, msg.backupStorageUuid)
            ref = session.scalar(select(BackupStorageZoneRefVO).where(
                BackupStorageZoneRefVO.backupStorageUuid == vo.uuid,
                BackupStorageZoneRefVO.zoneUuid == msg.zoneUuid))
            if ref is None:
                raise _not_attached(vo.uuid, msg.zoneUuid)
            session.delete(ref)
            return inventory_of(session, vo)

        inventory = await self.node.queues.run(queue_of(msg.backupStorageUuid), lambda: self.node.db.run(detach))
        log.info("detached backup storage %s from zone %s", msg.backupStorageUuid, msg.zoneUuid)
        return APIDetachBackupStorageFromZoneEvent(inventory=inventory)

    @handles(APIGetBackupStorageCapacityMsg)
    async def get_capacity(self, msg: APIGetBackupStorageCapacityMsg) -> APIGetBackupStorageCapacityReply:
        def read(session: Session) -> APIGetBackupStorageCapacityReply:
            bs, ref = BackupStorageVO, BackupStorageZoneRefVO
            stmt = select(func.sum(bs.totalCapacity), func.sum(bs.availableCapacity))
            # ZStack's order: storage named, else zones named, else all.
            if msg.backupStorageUuids:
                stmt = stmt.where(bs.uuid.in_(msg.backupStorageUuids))
            elif msg.zoneUuids:
                stmt = stmt.where(bs.uuid.in_(select(ref.backupStorageUuid).where(ref.zoneUuid.in_(msg.zoneUuids))))
            total, available = session.execute(stmt).one()
            return APIGetBackupStorageCapacityReply(totalCapacity=int(total or 0),
                                                    availableCapacity=int(available or 0))

        return await self.node.db.run(read)

    @handles(APIGetBackupStorageTypesMsg)
    async def get_types(self, msg: APIGetBackupStorageTypesMsg) -> APIGetBackupStorageTypesReply:
        return APIGetBackupStorageTypesReply(backupStorageTypes=list(self.STORAGE_TYPES))
