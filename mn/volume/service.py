"""The volume service: data volumes (ZStack's VolumeManager and VolumeBase).

A data volume's own operations (create, delete, expunge, recover) run on
the MN that owns the volume on the ring, in its work queue
``volume-<uuid>``. Attaching and detaching are operations on the VM too:
they run on the VM's owner, in the VM's queue (the VM service's
AttachDataVolumeToVmMsg / DetachDataVolumeFromVmMsg), so they never
interleave with the VM's other operations.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from mn.api.resource import persist_new
from mn.db.models.offering import DiskOfferingVO
from mn.db.models.storage import STATE_ENABLED, STATUS_CONNECTED, PrimaryStorageVO
from mn.db.models.volume import DATA, DELETED, NOT_INSTANTIATED, READY, VolumeVO
from mn.errors import OperationError, SysErrors
from mn.globalconfig import GlobalConfig, valid_values
from mn.ids import new_uuid
from mn.service import Service, handles, intercepts
from mn.tags import PatternedSystemTag
from mn.tags import validators as token
from mn.vm.flows.create import install_path
from mn.vm.expunger import VOLUME_EXPUNGE_INTERVAL, VOLUME_EXPUNGE_PERIOD, Expunger, deleted_before
from mn.vm.messages import AttachDataVolumeToVmMsg, DetachDataVolumeFromVmMsg, call_vm_owner
from mn.vm.records import run_tx
from mn.vm.operations import check_volume_attachable
from mn.volume.cascade import VolumeCascade
from mn.volume.inventory import VolumeInventory
from mn.volume.messages import (
    SERVICE_ID,
    APIAttachDataVolumeToVmEvent,
    APIAttachDataVolumeToVmMsg,
    APICreateDataVolumeEvent,
    APICreateDataVolumeMsg,
    APIDeleteDataVolumeEvent,
    APIDeleteDataVolumeMsg,
    APIDetachDataVolumeFromVmEvent,
    APIDetachDataVolumeFromVmMsg,
    APIExpungeDataVolumeEvent,
    APIExpungeDataVolumeMsg,
    APIRecoverDataVolumeEvent,
    APIRecoverDataVolumeMsg,
)
from mn.volume.placement import expunge_volume, is_local, place_volume

if TYPE_CHECKING:
    from mn.node import ManagementNode

log = logging.getLogger(__name__)

VOLUME_RESOURCE_TYPE = VolumeVO.__tablename__

#: The host of a data volume created on LocalStorage
#: (ZStack's LocalStorageSystemTags.DEST_HOST_FOR_CREATING_DATA_VOLUME).
LOCAL_STORAGE_HOST = PatternedSystemTag("localStorage::hostUuid::{hostUuid}", VOLUME_RESOURCE_TYPE,
                                        validators={"hostUuid": token.uuid},
                                        description="the host whose local storage gets a new data volume")

DELAY, DIRECT = "Delay", "Direct"
DELETION_POLICY = GlobalConfig(
    "volume", "deletionPolicy", str, DELAY, validators=[valid_values(DIRECT, DELAY)],
    description="the behavior of deleting a data volume: Direct expunges it at once; Delay changes its "
                "status to Deleted, recoverable until expunged")


def queue_of(volume_uuid: str) -> str:
    """The work queue in which one volume's own operations run one at a time."""
    return f"volume-{volume_uuid}"


def volume_not_found(volume_uuid: str) -> OperationError:
    return OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                             f"unable to find volume[uuid:{volume_uuid}], it may have been deleted")


def find_volume(session: Session, volume_uuid: str) -> VolumeVO:
    vo = session.get(VolumeVO, volume_uuid, populate_existing=True)
    if vo is None:
        raise volume_not_found(volume_uuid)
    return vo


def refused(details: str) -> OperationError:
    return OperationError.of(SysErrors.OPERATION_ERROR, details)


class VolumeService(Service):
    """ZStack's VolumeManager and VolumeBase for data volumes."""

    SERVICE_ID = SERVICE_ID

    def __init__(self, node: "ManagementNode"):
        super().__init__(node)
        node.tags.register(LOCAL_STORAGE_HOST)
        #: Expunges Deleted data volumes once ``volume/expungePeriod`` has passed.
        self.expunger = Expunger(node, "data volume", VOLUME_EXPUNGE_INTERVAL, self._due_for_expunge,
                                 self._expunge_deleted)

    async def start(self) -> None:
        self.node.cascade.register(VolumeCascade())
        self.expunger.start()

    async def stop(self) -> None:
        await self.expunger.stop()

    async def _due_for_expunge(self) -> list[str]:
        return await self.node.db.run(deleted_before(VolumeVO, VOLUME_EXPUNGE_PERIOD.value,
                                                     VolumeVO.status == DELETED, VolumeVO.type == DATA))

    async def _expunge_deleted(self, volume_uuid: str) -> None:
        async def expunge() -> None:
            if await self.node.db.run(_check_expungeable, volume_uuid) is not None:
                await run_tx(self.node, expunge_volume, self.node, volume_uuid)

        await self.node.queues.run(queue_of(volume_uuid), expunge)

    async def inventory(self, volume_uuid: str) -> VolumeInventory:
        return await self.node.db.run(lambda s: VolumeInventory.from_vo(find_volume(s, volume_uuid)))

    # -- create --------------------------------------------------------------------------

    @intercepts(APICreateDataVolumeMsg)
    async def check_create(self, msg: APICreateDataVolumeMsg) -> None:
        if msg.resourceUuid is None:
            msg.resourceUuid = new_uuid()  # routes the job to the volume's owner
        await self.node.db.run(_creation_size, msg)

    @handles(APICreateDataVolumeMsg)
    async def create_data_volume(self, msg: APICreateDataVolumeMsg) -> APICreateDataVolumeEvent:
        volume_uuid = msg.resourceUuid or new_uuid()
        host_uuid = next((LOCAL_STORAGE_HOST.tokens(t)["hostUuid"] for t in msg.systemTags or ()
                          if LOCAL_STORAGE_HOST.matches(t)), None)

        def create(session: Session) -> VolumeInventory:
            size = _creation_size(session, msg)
            volume = VolumeVO(uuid=volume_uuid, name=msg.name, description=msg.description,
                              diskOfferingUuid=msg.diskOfferingUuid, type=DATA, status=NOT_INSTANTIATED,
                              size=size, actualSize=0, format="qcow2", isShareable=False)
            persist_new(self.node, session, volume, msg, VOLUME_RESOURCE_TYPE)
            if msg.primaryStorageUuid is not None:
                if not place_volume(session, volume, msg.primaryStorageUuid, host_uuid):
                    raise refused(f"primary storage[uuid:{msg.primaryStorageUuid}] has not {size} bytes "
                                  f"available" + (f" on host[uuid:{host_uuid}]" if host_uuid else "")
                                  + " or is not Enabled and Connected")
                volume.installPath = install_path(session.get(PrimaryStorageVO, msg.primaryStorageUuid), volume)
                volume.status = READY
            session.flush()
            return VolumeInventory.from_vo(volume)

        inventory = await self.node.queues.run(queue_of(volume_uuid), lambda: run_tx(self.node, create))
        log.info("created data volume %s (%s, %s)", volume_uuid, msg.name, inventory.status)
        return APICreateDataVolumeEvent(inventory=inventory)

    # -- attach and detach ----------------------------------------------------------------------

    @intercepts(APIAttachDataVolumeToVmMsg)
    async def check_attach(self, msg: APIAttachDataVolumeToVmMsg) -> None:
        await self.node.db.run(check_volume_attachable, msg.vmInstanceUuid, msg.volumeUuid)

    @handles(APIAttachDataVolumeToVmMsg)
    async def attach(self, msg: APIAttachDataVolumeToVmMsg) -> APIAttachDataVolumeToVmEvent:
        reply = await call_vm_owner(self.node, AttachDataVolumeToVmMsg(vmInstanceUuid=msg.vmInstanceUuid,
                                                                       volumeUuid=msg.volumeUuid))
        return APIAttachDataVolumeToVmEvent(inventory=reply.inventory)

    @intercepts(APIDetachDataVolumeFromVmMsg)
    async def check_detach(self, msg: APIDetachDataVolumeFromVmMsg) -> None:
        await self.node.db.run(_attached_vm, msg.uuid, msg.vmUuid)

    @handles(APIDetachDataVolumeFromVmMsg)
    async def detach(self, msg: APIDetachDataVolumeFromVmMsg) -> APIDetachDataVolumeFromVmEvent:
        vm_uuid = await self.node.db.run(_attached_vm, msg.uuid, msg.vmUuid)
        reply = await call_vm_owner(self.node, DetachDataVolumeFromVmMsg(vmInstanceUuid=vm_uuid, volumeUuid=msg.uuid))
        return APIDetachDataVolumeFromVmEvent(inventory=reply.inventory)

    # -- delete, expunge, recover --------------------------------------------------------------------

    @intercepts(APIDeleteDataVolumeMsg)
    async def check_delete(self, msg: APIDeleteDataVolumeMsg) -> None:
        await self.node.db.run(_check_deletable, msg.uuid)

    @handles(APIDeleteDataVolumeMsg)
    async def delete(self, msg: APIDeleteDataVolumeMsg) -> APIDeleteDataVolumeEvent:
        async def delete() -> None:
            volume = await self.node.db.run(_check_deletable, msg.uuid)
            if volume is None:
                return
            if volume.vmInstanceUuid is not None:
                await call_vm_owner(self.node, DetachDataVolumeFromVmMsg(vmInstanceUuid=volume.vmInstanceUuid,
                                                                         volumeUuid=msg.uuid))
            if DELETION_POLICY.value == DIRECT:
                await run_tx(self.node, expunge_volume, self.node, msg.uuid)
            else:
                await run_tx(self.node, _mark_deleted, msg.uuid)
            log.info("deleted data volume %s (%s)", msg.uuid, DELETION_POLICY.value)

        await self.node.queues.run(queue_of(msg.uuid), delete)
        return APIDeleteDataVolumeEvent()

    @intercepts(APIExpungeDataVolumeMsg)
    async def check_expunge(self, msg: APIExpungeDataVolumeMsg) -> None:
        await self.node.db.run(_check_expungeable, msg.uuid)

    @handles(APIExpungeDataVolumeMsg)
    async def expunge(self, msg: APIExpungeDataVolumeMsg) -> APIExpungeDataVolumeEvent:
        async def expunge() -> None:
            if await self.node.db.run(_check_expungeable, msg.uuid) is not None:
                await run_tx(self.node, expunge_volume, self.node, msg.uuid)
                log.info("expunged data volume %s", msg.uuid)

        await self.node.queues.run(queue_of(msg.uuid), expunge)
        return APIExpungeDataVolumeEvent()

    @intercepts(APIRecoverDataVolumeMsg)
    async def check_recover(self, msg: APIRecoverDataVolumeMsg) -> None:
        await self.node.db.run(_check_recoverable, msg.uuid)

    @handles(APIRecoverDataVolumeMsg)
    async def recover(self, msg: APIRecoverDataVolumeMsg) -> APIRecoverDataVolumeEvent:
        def recover(session: Session) -> VolumeInventory:
            volume = _check_recoverable(session, msg.uuid)
            volume.status = READY if volume.primaryStorageUuid is not None else NOT_INSTANTIATED
            session.flush()
            return VolumeInventory.from_vo(volume)

        inventory = await self.node.queues.run(queue_of(msg.uuid), lambda: run_tx(self.node, recover))
        return APIRecoverDataVolumeEvent(inventory=inventory)


# -- in-transaction checks and changes ----------------------------------------------------------------


def _creation_size(session: Session, msg: APICreateDataVolumeMsg) -> int:
    """The new volume's size, after ZStack's checks of the request."""
    if msg.diskOfferingUuid is not None:
        offering = session.get(DiskOfferingVO, msg.diskOfferingUuid)
        if offering is None:
            raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                                    f"disk offering[uuid:{msg.diskOfferingUuid}] is not found")
        if offering.state != "Enabled":
            raise refused(f"disk offering[uuid:{offering.uuid}] is Disabled, can't create a volume from it")
        size = offering.diskSize
    elif msg.diskSize > 0:
        size = msg.diskSize
    else:
        raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                "unexpected disk size settings: give diskOfferingUuid or a positive diskSize")
    if msg.primaryStorageUuid is not None:
        ps = session.get(PrimaryStorageVO, msg.primaryStorageUuid)
        if ps is None:
            raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                                    f"primary storage[uuid:{msg.primaryStorageUuid}] is not found")
        if ps.state != STATE_ENABLED or ps.status != STATUS_CONNECTED:
            raise refused(f"primary storage[uuid:{ps.uuid}] is {ps.state} and {ps.status}; a volume can be "
                          f"created only on an Enabled and Connected one")
        if is_local(session, ps.uuid) and not any(LOCAL_STORAGE_HOST.matches(t) for t in msg.systemTags or ()):
            raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                    f"primary storage[uuid:{ps.uuid}] is a LocalStorage: name the host with the "
                                    f"system tag localStorage::hostUuid::<host uuid>")
    return size


def _attached_vm(session: Session, volume_uuid: str, vm_uuid: str | None) -> str:
    volume = find_volume(session, volume_uuid)
    if volume.vmInstanceUuid is None:
        raise refused(f"data volume[uuid:{volume_uuid}] is not attached to any vm, can't detach")
    if volume.type != DATA:
        raise refused(f"the volume[uuid:{volume_uuid}, name:{volume.name}, type:{volume.type}] can't detach it")
    if vm_uuid is not None and vm_uuid != volume.vmInstanceUuid:
        raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                f"data volume[uuid:{volume_uuid}] is attached to vm[uuid:{volume.vmInstanceUuid}], "
                                f"not to vm[uuid:{vm_uuid}]")
    return volume.vmInstanceUuid


def _check_deletable(session: Session, volume_uuid: str) -> VolumeVO | None:
    volume = session.get(VolumeVO, volume_uuid, populate_existing=True)
    if volume is None:
        return None  # ZStack: deleting what does not exist succeeds
    if volume.type != DATA:
        raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                f"volume[uuid:{volume_uuid}, type:{volume.type}] can't be deleted")
    if volume.status == DELETED:
        raise refused(f"volume[uuid:{volume_uuid}] is already in status of deleted")
    return volume


def _check_expungeable(session: Session, volume_uuid: str) -> VolumeVO | None:
    volume = session.get(VolumeVO, volume_uuid, populate_existing=True)
    if volume is None:
        return None
    if volume.type != DATA:
        raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                f"volume[uuid:{volume_uuid}, type:{volume.type}] can't be expunged")
    if volume.status != DELETED:
        raise refused(f"the volume[uuid:{volume_uuid}] is not deleted yet, can't expunge it")
    return volume


def _check_recoverable(session: Session, volume_uuid: str) -> VolumeVO:
    volume = find_volume(session, volume_uuid)
    if volume.status != DELETED:
        raise refused(f"the volume[uuid:{volume_uuid}] is not in status of deleted. This is operation is to "
                      f"recover a deleted data volume")
    return volume


def _mark_deleted(session: Session, volume_uuid: str) -> None:
    find_volume(session, volume_uuid).status = DELETED
