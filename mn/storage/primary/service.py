"""The primary storage service: add, attach/detach, state, update, reconnect, delete.

Operations on one primary storage run on the MN that owns it on the ring
(its APIs are routed by the storage's uuid) and, there, one at a time in
the work queue ``primary-storage-<uuid>``. Attaching and detaching also
lock the cluster's row in their transaction, first, which orders them
against hosts joining the cluster (see :mod:`mn.storage.primary.local`).

Simulator and LocalStorage need no agent: a new storage is Connected at
once and reconnecting only marks it Connected again (and, for LocalStorage,
repairs the hosts' shares).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mn.api.resource import persist_new
from mn.db.models.base import Base
from mn.db.models.cluster import ClusterVO
from mn.db.models.storage import (
    LOCAL_STORAGE_TYPE,
    SIMULATOR_PRIMARY_STORAGE_TYPE,
    STATE_ENABLED,
    STATUS_CONNECTED,
    LocalStorageHostRefVO,
    LocalStorageResourceRefVO,
    PrimaryStorageCapacityVO,
    PrimaryStorageClusterRefVO,
    PrimaryStorageVO,
)
from mn.db.models.zone import ZoneVO
from mn.errors import OperationError, SysErrors, error
from mn.service import Service, handles, intercepts
from mn.storage.primary.cascade import LocalStorageHostShareCascade, primary_storage_cascade
from mn.storage.primary.extensions import PrimaryStorageStateExtension
from mn.storage.primary.host_extension import LocalStorageHostExtension
from mn.storage.primary.inventory import PrimaryStorageInventory
from mn.storage.primary.local import (
    attach_local_storage,
    detach_local_storage,
    hosts_of_cluster,
    sync_local_storage,
)
from mn.storage.primary.messages import (
    SERVICE_ID,
    APIAddLocalPrimaryStorageMsg,
    APIAddPrimaryStorageEvent,
    APIAddPrimaryStorageMsg,
    APIAddSimulatorPrimaryStorageMsg,
    APIAttachPrimaryStorageToClusterEvent,
    APIAttachPrimaryStorageToClusterMsg,
    APIChangePrimaryStorageStateEvent,
    APIChangePrimaryStorageStateMsg,
    APIDeletePrimaryStorageEvent,
    APIDeletePrimaryStorageMsg,
    APIDetachPrimaryStorageFromClusterEvent,
    APIDetachPrimaryStorageFromClusterMsg,
    APIGetLocalStorageHostDiskCapacityMsg,
    APIGetLocalStorageHostDiskCapacityReply,
    APIGetPrimaryStorageCapacityMsg,
    APIGetPrimaryStorageCapacityReply,
    APIGetPrimaryStorageTypesMsg,
    APIGetPrimaryStorageTypesReply,
    APIReconnectPrimaryStorageEvent,
    APIReconnectPrimaryStorageMsg,
    APIUpdatePrimaryStorageEvent,
    APIUpdatePrimaryStorageMsg,
    HostDiskCapacity,
)
from mn.storage.state import PRIMARY_STORAGE_STATE_MACHINE
from mn.zone.service import zone_not_found

if TYPE_CHECKING:
    from mn.node import ManagementNode

#: The host service's id (mn.host.messages.SERVICE_ID), which may not be installed.
HOST_SERVICE_ID = "host"

log = logging.getLogger(__name__)

#: Uuids named in a refusal before it abbreviates.
_SHOWN = 5


def queue_of(ps_uuid: str) -> str:
    """The work queue in which one primary storage's operations run one at a time."""
    return f"primary-storage-{ps_uuid}"


def find_primary_storage(session: Session, ps_uuid: str) -> PrimaryStorageVO:
    """The storage's row; RESOURCE_NOT_FOUND if there is none."""
    vo = session.get(PrimaryStorageVO, ps_uuid)
    if vo is None:
        raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                                f"unable to find primary storage[uuid:{ps_uuid}], it may have been deleted")
    return vo


def inventory_of(session: Session, vo: PrimaryStorageVO) -> PrimaryStorageInventory:
    """The inventory of ``vo`` as the transaction now sees it (capacity and refs reloaded)."""
    session.flush()
    session.refresh(vo)
    return PrimaryStorageInventory.from_vo(vo)


def _invalid(details: str) -> OperationError:
    return OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR, details)


def _refused(details: str) -> OperationError:
    return OperationError.of(SysErrors.OPERATION_ERROR, details)


def _attached(session: Session, ps_uuid: str, cluster_uuid: str) -> bool:
    ref = PrimaryStorageClusterRefVO
    return session.scalar(select(ref.id).where(ref.primaryStorageUuid == ps_uuid,
                                               ref.clusterUuid == cluster_uuid)) is not None


def _attached_clusters(session: Session, ps_uuid: str) -> list[str]:
    ref = PrimaryStorageClusterRefVO
    return list(session.scalars(select(ref.clusterUuid).where(ref.primaryStorageUuid == ps_uuid)
                                .order_by(ref.id)))


def attach_refusal(session: Session, ps_uuid: str, cluster_uuid: str) -> OperationError | None:
    """Why the storage cannot be attached to the cluster (ZStack's checks), or None."""
    storage = find_primary_storage(session, ps_uuid)
    zone_uuid = session.scalar(select(ClusterVO.zoneUuid).where(ClusterVO.uuid == cluster_uuid))
    if zone_uuid is None:
        return OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                                 f"unable to find cluster[uuid:{cluster_uuid}], it may have been deleted")
    if _attached(session, ps_uuid, cluster_uuid):
        return _refused(f"primary storage[uuid:{ps_uuid}] has been attached to cluster[uuid:{cluster_uuid}]")
    if zone_uuid != storage.zoneUuid:
        return _invalid(f"primary storage[uuid:{ps_uuid}] and cluster[uuid:{cluster_uuid}] are not in the "
                        f"same zone")
    ref = PrimaryStorageClusterRefVO
    same_url = session.scalar(
        select(func.count()).select_from(PrimaryStorageVO)
        .join(ref, ref.primaryStorageUuid == PrimaryStorageVO.uuid)
        .where(ref.clusterUuid == cluster_uuid, PrimaryStorageVO.url == storage.url))
    if same_url:
        return _invalid(f"url[{storage.url}] has been occupied, it cannot be duplicate in same cluster")
    return None


def detach_refusal(session: Session, ps_uuid: str, cluster_uuid: str) -> OperationError | None:
    """Why the storage cannot be detached from the cluster, or None.

    Not attached: SYS.1007 (as ZStack). VMs of the cluster with volumes on
    the storage (or, for LocalStorage, volumes on hosts of the cluster):
    SYS.1006, since detaching would strand them.
    """
    storage = find_primary_storage(session, ps_uuid)
    if not _attached(session, ps_uuid, cluster_uuid):
        return _invalid(f"primary storage[uuid:{ps_uuid}] has not been attached to cluster"
                        f"[uuid:{cluster_uuid}] yet")
    vms = _vms_with_volumes_on(session, ps_uuid, cluster_uuid)
    if vms:
        return _refused(f"primary storage[uuid:{ps_uuid}] cannot be detached from cluster[uuid:{cluster_uuid}]: "
                        f"VMs {_list(vms)} of the cluster have volumes on it; delete them or migrate "
                        f"their volumes first")
    if storage.type == LOCAL_STORAGE_TYPE:
        record = LocalStorageResourceRefVO
        held = list(session.scalars(
            select(record.resourceUuid).where(record.primaryStorageUuid == ps_uuid,
                                              record.hostUuid.in_(hosts_of_cluster(session, cluster_uuid)))
            .order_by(record.resourceUuid).limit(_SHOWN + 1)))
        if held:
            return _refused(f"primary storage[uuid:{ps_uuid}] cannot be detached from cluster"
                            f"[uuid:{cluster_uuid}]: resources {_list(held)} are on the local disks of "
                            f"the cluster's hosts")
    return None


def _vms_with_volumes_on(session: Session, ps_uuid: str, cluster_uuid: str) -> list[str]:
    # By table name: VMs and volumes belong to the VM service, which may
    # not be installed (then nothing can be on the storage).
    vms, volumes = Base.metadata.tables.get("VmInstanceVO"), Base.metadata.tables.get("VolumeVO")
    if vms is None or volumes is None:
        return []
    return list(session.scalars(
        select(vms.c.uuid).distinct().join(volumes, volumes.c.vmInstanceUuid == vms.c.uuid)
        .where(vms.c.clusterUuid == cluster_uuid, volumes.c.primaryStorageUuid == ps_uuid)
        .order_by(vms.c.uuid).limit(_SHOWN + 1)))


def _list(uuids: list[str]) -> str:
    shown = ", ".join(uuids[:_SHOWN])
    return f"[{shown}, ...]" if len(uuids) > _SHOWN else f"[{shown}]"


def _initial_capacity(msg: APIAddPrimaryStorageMsg) -> dict[str, Any]:
    if isinstance(msg, APIAddSimulatorPrimaryStorageMsg):
        return {"totalCapacity": msg.totalCapacity, "availableCapacity": msg.availableCapacity,
                "totalPhysicalCapacity": msg.totalPhysicalCapacity,
                "availablePhysicalCapacity": msg.availablePhysicalCapacity, "systemUsedCapacity": None}
    # LocalStorage: nothing until hosts bring their disks.
    return {"totalCapacity": 0, "availableCapacity": 0, "totalPhysicalCapacity": 0,
            "availablePhysicalCapacity": 0, "systemUsedCapacity": 0}


def _mount_path(msg: APIAddPrimaryStorageMsg, ps_uuid: str) -> str:
    if isinstance(msg, APIAddSimulatorPrimaryStorageMsg):
        return f"/primarystoragesimulator/{ps_uuid}"  # ZStack's SimulatorPrimaryStorageFactory
    return msg.url  # LocalStorage: the directory on each host


class PrimaryStorageService(Service):
    """ZStack's PrimaryStorageManager and PrimaryStorageBase, for the simulator and LocalStorage types."""

    SERVICE_ID = SERVICE_ID

    #: Types this MN can add (ZStack's PrimaryStorageFactory types).
    STORAGE_TYPES = (LOCAL_STORAGE_TYPE, SIMULATOR_PRIMARY_STORAGE_TYPE)

    def __init__(self, node: "ManagementNode"):
        super().__init__(node)
        self._state_extensions: list[PrimaryStorageStateExtension] = []

    def add_state_extension(self, extension: PrimaryStorageStateExtension) -> None:
        """Have ``extension`` take part in every primary storage state change on this MN."""
        self._state_extensions.append(extension)

    async def start(self) -> None:
        self.node.cascade.register(primary_storage_cascade())
        self.node.cascade.register(LocalStorageHostShareCascade())
        hosts = self.node.services.get(HOST_SERVICE_ID)
        if hosts is not None:
            hosts.add_extension(LocalStorageHostExtension(self.node))

    async def get_inventory(self, ps_uuid: str) -> PrimaryStorageInventory:
        """The storage's inventory; RESOURCE_NOT_FOUND if there is no such storage."""
        return await self.node.db.run(lambda s: PrimaryStorageInventory.from_vo(find_primary_storage(s, ps_uuid)))

    # -- adding ----------------------------------------------------------------------

    @handles(APIAddSimulatorPrimaryStorageMsg, APIAddLocalPrimaryStorageMsg)
    async def add_primary_storage(self, msg: APIAddPrimaryStorageMsg) -> APIAddPrimaryStorageEvent:
        def create(session: Session) -> PrimaryStorageInventory:
            # A shared lock on the zone: a zone deletion cannot pass between
            # this check and our insert (it waits, then finds our storage).
            zone = session.scalars(select(ZoneVO.uuid).where(ZoneVO.uuid == msg.zoneUuid)
                                   .with_for_update(read=True)).first()
            if zone is None:
                raise zone_not_found(msg.zoneUuid)
            vo = PrimaryStorageVO(name=msg.name, description=msg.description, zoneUuid=msg.zoneUuid,
                                  url=msg.url, type=msg.STORAGE_TYPE, state=STATE_ENABLED,
                                  status=STATUS_CONNECTED)
            persist_new(self.node, session, vo, msg, PrimaryStorageVO.__tablename__)
            vo.mountPath = _mount_path(msg, vo.uuid)
            session.add(PrimaryStorageCapacityVO(uuid=vo.uuid, **_initial_capacity(msg)))
            return inventory_of(session, vo)

        inventory = await self.node.db.run(create)
        log.info("added %s %s (%s) in zone %s", inventory.type, inventory.uuid, inventory.name,
                 inventory.zoneUuid)
        return APIAddPrimaryStorageEvent(inventory=inventory)

    # -- changing one storage ------------------------------------------------------------

    @handles(APIUpdatePrimaryStorageMsg)
    async def update_primary_storage(self, msg: APIUpdatePrimaryStorageMsg) -> APIUpdatePrimaryStorageEvent:
        def change(session: Session) -> PrimaryStorageInventory:
            vo = find_primary_storage(session, msg.uuid)
            for field in ("name", "description", "url"):
                value = getattr(msg, field)
                if value is not None:
                    setattr(vo, field, value)
            return inventory_of(session, vo)

        inventory = await self.node.queues.run(queue_of(msg.uuid), lambda: self.node.db.run(change))
        return APIUpdatePrimaryStorageEvent(inventory=inventory)

    @handles(APIChangePrimaryStorageStateMsg)
    async def change_primary_storage_state(self, msg: APIChangePrimaryStorageStateMsg
                                           ) -> APIChangePrimaryStorageStateEvent:
        inventory = await self.node.queues.run(queue_of(msg.uuid),
                                               lambda: self._change_state(msg.uuid, msg.stateEvent))
        return APIChangePrimaryStorageStateEvent(inventory=inventory)

    @handles(APIReconnectPrimaryStorageMsg)
    async def reconnect_primary_storage(self, msg: APIReconnectPrimaryStorageMsg
                                        ) -> APIReconnectPrimaryStorageEvent:
        def reconnect(session: Session) -> PrimaryStorageInventory:
            vo = find_primary_storage(session, msg.uuid)
            vo.status = STATUS_CONNECTED
            session.flush()
            if vo.type == LOCAL_STORAGE_TYPE:
                added = sync_local_storage(session, vo.uuid)
                if added:
                    log.info("local storage %s: gave hosts %s their shares on reconnect", vo.uuid, added)
            return inventory_of(session, vo)

        inventory = await self.node.queues.run(queue_of(msg.uuid), lambda: self.node.db.run(reconnect))
        return APIReconnectPrimaryStorageEvent(inventory=inventory)

    @intercepts(APIDeletePrimaryStorageMsg)
    async def check_delete(self, msg: APIDeletePrimaryStorageMsg) -> None:
        await self.node.db.run(self._delete_refusal, msg.uuid)

    @handles(APIDeletePrimaryStorageMsg)
    async def delete_primary_storage(self, msg: APIDeletePrimaryStorageMsg) -> APIDeletePrimaryStorageEvent:
        async def run() -> None:
            exists = await self.node.db.run(self._delete_refusal, msg.uuid)
            if not exists:
                return  # already gone: deleting succeeds, as in ZStack
            deleted = await self.node.cascade.delete(PrimaryStorageVO.__tablename__, [msg.uuid],
                                                     mode=msg.deleteMode, request=msg)
            log.info("deleted primary storage %s (%s mode) and %s", msg.uuid, msg.deleteMode,
                     {t: len(u) for t, u in deleted.items() if t != PrimaryStorageVO.__tablename__}
                     or "nothing on it")

        await self.node.queues.run(queue_of(msg.uuid), run)
        return APIDeletePrimaryStorageEvent()

    @staticmethod
    def _delete_refusal(session: Session, ps_uuid: str) -> bool:
        """Whether the storage exists; refuses (SYS.1006) while it is attached (ZStack's rule)."""
        if session.get(PrimaryStorageVO, ps_uuid) is None:
            return False
        clusters = _attached_clusters(session, ps_uuid)
        if clusters:
            raise _refused(f"primary storage[uuid:{ps_uuid}] cannot be deleted for still being attached to "
                           f"cluster[uuid:{', '.join(clusters)}]; detach it first")
        return True

    # -- attaching -----------------------------------------------------------------------

    @intercepts(APIAttachPrimaryStorageToClusterMsg)
    async def check_attach(self, msg: APIAttachPrimaryStorageToClusterMsg) -> None:
        refusal = await self.node.db.run(attach_refusal, msg.primaryStorageUuid, msg.clusterUuid)
        if refusal is not None:
            raise refusal

    @handles(APIAttachPrimaryStorageToClusterMsg)
    async def attach_to_cluster(self, msg: APIAttachPrimaryStorageToClusterMsg
                                ) -> APIAttachPrimaryStorageToClusterEvent:
        def attach(session: Session) -> PrimaryStorageInventory:
            self._lock_cluster(session, msg.clusterUuid)
            refusal = attach_refusal(session, msg.primaryStorageUuid, msg.clusterUuid)
            if refusal is not None:
                raise refusal
            session.add(PrimaryStorageClusterRefVO(clusterUuid=msg.clusterUuid,
                                                   primaryStorageUuid=msg.primaryStorageUuid))
            try:
                session.flush()
            except IntegrityError:
                raise _refused(f"primary storage[uuid:{msg.primaryStorageUuid}] has been attached to "
                               f"cluster[uuid:{msg.clusterUuid}]") from None
            vo = find_primary_storage(session, msg.primaryStorageUuid)
            if vo.type == LOCAL_STORAGE_TYPE:
                attach_local_storage(session, vo.uuid, msg.clusterUuid)
            return inventory_of(session, vo)

        inventory = await self.node.queues.run(queue_of(msg.primaryStorageUuid),
                                               lambda: self.node.db.run(attach))
        log.info("attached primary storage %s to cluster %s", msg.primaryStorageUuid, msg.clusterUuid)
        return APIAttachPrimaryStorageToClusterEvent(inventory=inventory)

    @intercepts(APIDetachPrimaryStorageFromClusterMsg)
    async def check_detach(self, msg: APIDetachPrimaryStorageFromClusterMsg) -> None:
        refusal = await self.node.db.run(detach_refusal, msg.primaryStorageUuid, msg.clusterUuid)
        if refusal is not None:
            raise refusal

    @handles(APIDetachPrimaryStorageFromClusterMsg)
    async def detach_from_cluster(self, msg: APIDetachPrimaryStorageFromClusterMsg
                                  ) -> APIDetachPrimaryStorageFromClusterEvent:
        def detach(session: Session) -> PrimaryStorageInventory:
            self._lock_cluster(session, msg.clusterUuid)
            refusal = detach_refusal(session, msg.primaryStorageUuid, msg.clusterUuid)
            if refusal is not None:
                raise refusal
            vo = find_primary_storage(session, msg.primaryStorageUuid)
            ref = session.scalars(select(PrimaryStorageClusterRefVO).where(
                PrimaryStorageClusterRefVO.primaryStorageUuid == vo.uuid,
                PrimaryStorageClusterRefVO.clusterUuid == msg.clusterUuid)).one()
            session.delete(ref)
            if vo.type == LOCAL_STORAGE_TYPE:
                detach_local_storage(session, vo.uuid, msg.clusterUuid)
            return inventory_of(session, vo)

        inventory = await self.node.queues.run(queue_of(msg.primaryStorageUuid),
                                               lambda: self.node.db.run(detach))
        log.info("detached primary storage %s from cluster %s", msg.primaryStorageUuid, msg.clusterUuid)
        return APIDetachPrimaryStorageFromClusterEvent(inventory=inventory)

    @staticmethod
    def _lock_cluster(session: Session, cluster_uuid: str) -> None:
        # First statement of the transaction: hosts joining the cluster wait
        # for us or are seen by us (mn.storage.primary.local).
        found = session.scalar(select(ClusterVO.uuid).where(ClusterVO.uuid == cluster_uuid).with_for_update())
        if found is None:
            raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                                    f"unable to find cluster[uuid:{cluster_uuid}], it may have been deleted")

    # -- reading -------------------------------------------------------------------------

    @handles(APIGetPrimaryStorageCapacityMsg)
    async def get_capacity(self, msg: APIGetPrimaryStorageCapacityMsg) -> APIGetPrimaryStorageCapacityReply:
        def read(session: Session) -> APIGetPrimaryStorageCapacityReply:
            capacity, ref = PrimaryStorageCapacityVO, PrimaryStorageClusterRefVO
            stmt = select(func.sum(capacity.totalCapacity), func.sum(capacity.availableCapacity),
                          func.sum(capacity.totalPhysicalCapacity),
                          func.sum(capacity.availablePhysicalCapacity))
            # ZStack's order: storage named, else clusters named, else zones named (or all).
            if msg.primaryStorageUuids:
                stmt = stmt.where(capacity.uuid.in_(msg.primaryStorageUuids))
            elif msg.clusterUuids:
                stmt = stmt.where(capacity.uuid.in_(select(ref.primaryStorageUuid)
                                                    .where(ref.clusterUuid.in_(msg.clusterUuids))))
            elif msg.zoneUuids:
                stmt = stmt.where(capacity.uuid.in_(select(PrimaryStorageVO.uuid)
                                                    .where(PrimaryStorageVO.zoneUuid.in_(msg.zoneUuids))))
            total, available, physical, available_physical = session.execute(stmt).one()
            return APIGetPrimaryStorageCapacityReply(
                totalCapacity=int(total or 0), availableCapacity=int(available or 0),
                totalPhysicalCapacity=int(physical or 0),
                availablePhysicalCapacity=int(available_physical or 0))

        return await self.node.db.run(read)

    @handles(APIGetPrimaryStorageTypesMsg)
    async def get_types(self, msg: APIGetPrimaryStorageTypesMsg) -> APIGetPrimaryStorageTypesReply:
        return APIGetPrimaryStorageTypesReply(primaryStorageTypes=list(self.STORAGE_TYPES))

    @intercepts(APIGetLocalStorageHostDiskCapacityMsg)
    async def check_host_disk_capacity(self, msg: APIGetLocalStorageHostDiskCapacityMsg) -> None:
        await self.node.db.run(self._local_storage, msg.primaryStorageUuid)

    @handles(APIGetLocalStorageHostDiskCapacityMsg)
    async def get_host_disk_capacity(self, msg: APIGetLocalStorageHostDiskCapacityMsg
                                     ) -> APIGetLocalStorageHostDiskCapacityReply:
        def read(session: Session) -> APIGetLocalStorageHostDiskCapacityReply:
            self._local_storage(session, msg.primaryStorageUuid)
            share = LocalStorageHostRefVO
            stmt = select(share).where(share.primaryStorageUuid == msg.primaryStorageUuid)
            if msg.hostUuid is not None:
                stmt = stmt.where(share.hostUuid == msg.hostUuid)
            return APIGetLocalStorageHostDiskCapacityReply(inventories=[
                HostDiskCapacity(hostUuid=row.hostUuid, totalCapacity=row.totalCapacity,
                                 availableCapacity=row.availableCapacity,
                                 totalPhysicalCapacity=row.totalPhysicalCapacity,
                                 availablePhysicalCapacity=row.availablePhysicalCapacity)
                for row in session.scalars(stmt.order_by(share.hostUuid))])

        return await self.node.db.run(read)

    @staticmethod
    def _local_storage(session: Session, ps_uuid: str) -> PrimaryStorageVO:
        vo = find_primary_storage(session, ps_uuid)
        if vo.type != LOCAL_STORAGE_TYPE:
            raise _invalid(f"primary storage[uuid:{ps_uuid}] is a {vo.type}, not a {LOCAL_STORAGE_TYPE}")
        return vo

    # -- internals -----------------------------------------------------------------------

    async def _change_state(self, ps_uuid: str, event: str) -> PrimaryStorageInventory:
        storage = await self.get_inventory(ps_uuid)
        next_state = PRIMARY_STORAGE_STATE_MACHINE.next_state(storage.state, event)
        for extension in list(self._state_extensions):
            try:
                await extension.pre_change(storage, event, next_state)
            except OperationError as exc:
                if exc.error.code == SysErrors.CHANGE_RESOURCE_STATE_ERROR.value:
                    raise
                raise OperationError(error(
                    SysErrors.CHANGE_RESOURCE_STATE_ERROR,
                    f"cannot {event} primary storage[uuid:{ps_uuid}]: "
                    f"{exc.error.details or exc.error.description}", exc.error)) from exc
        for extension in list(self._state_extensions):
            await _tolerant(extension.before_change(storage, event, next_state), extension, ps_uuid)

        def store(session: Session) -> PrimaryStorageInventory:
            vo = find_primary_storage(session, ps_uuid)
            vo.state = next_state
            return inventory_of(session, vo)

        changed = await self.node.db.run(store)
        for extension in list(self._state_extensions):
            await _tolerant(extension.after_change(changed, event, storage.state), extension, ps_uuid)
        log.info("primary storage %s: %s -> %s by event %s", ps_uuid, storage.state, changed.state, event)
        return changed


async def _tolerant(call, extension: PrimaryStorageStateExtension, ps_uuid: str) -> None:
    # Past pre_change nothing may stop the change: a failing extension is logged.
    try:
        await call
    except Exception:
        log.exception("primary storage state extension %r failed for %s; the change goes on",
                      extension, ps_uuid)
