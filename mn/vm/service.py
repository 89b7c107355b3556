"""The VM service (ZStack's VmInstanceManager and VmInstanceBase).

Every operation on a VM runs on the MN that owns the VM on the ring (APIs
are routed by the VM's uuid; a create by the ``resourceUuid`` its
interceptor picks) and, there, in the VM's work queue ``vm-<uuid>``: two
operations on one VM never interleave. Operations that touch more than one
row are durable flow chains (``flows/vm/*.xml``) with the VM's uuid as
their resource, so the MN that takes over a dead MN's VMs finishes or
rolls them back; nothing is left in a transitional state.

Interceptors answer what can be checked before a job exists (a wrong
state: 409; bad input: 400); handlers check again in the queue, since
things change in between.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Awaitable, Callable, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mn.db.models.offering import InstanceOfferingVO
from mn.db.models.vm import VmInstanceVO, VmNicVO
from mn.db.models.volume import VolumeVO
from mn.db.types import utcnow
from mn.errors import ErrorCode, OperationError, SysErrors, error
from mn.flow import FlowError
from mn.host.capacity import release_host_capacity, reserve_host_capacity
from mn.host.messages import SERVICE_ID as HOST_SERVICE_ID
from mn.ids import new_uuid
from mn.service import Service, handles, intercepts
from mn.vm import state as vm_state
from mn.vm.cascade import cascade_extensions
from mn.vm.config import DELETION_POLICY, DIRECT
from mn.vm.creation import creation_data
from mn.vm.flows.common import backend_of, on_host
from mn.vm.flows.devices import default_l3_after_detach
from mn.vm.flows.lifecycle import recover
from mn.vm.inventory import VmInstanceInventory
from mn.vm.expunger import VM_EXPUNGE_INTERVAL, VM_EXPUNGE_PERIOD, Expunger, deleted_before
from mn.vm.maintenance import VmHostMaintenance
from mn.vm.messages import (
    SERVICE_ID,
    APIChangeInstanceOfferingEvent,
    APIChangeInstanceOfferingMsg,
    APIAttachL3NetworkToVmEvent,
    APIAttachL3NetworkToVmMsg,
    APICreateVmInstanceEvent,
    APICreateVmInstanceMsg,
    APIDeleteVmHostnameEvent,
    APIDeleteVmHostnameMsg,
    APIDestroyVmInstanceEvent,
    APIDestroyVmInstanceMsg,
    APIDetachL3NetworkFromVmEvent,
    APIDetachL3NetworkFromVmMsg,
    APIExpungeVmInstanceEvent,
    APIExpungeVmInstanceMsg,
    APIGetVmHostnameMsg,
    APIGetVmHostnameReply,
    APIMigrateVmEvent,
    APIMigrateVmMsg,
    APIPauseVmInstanceEvent,
    APIPauseVmInstanceMsg,
    APIRebootVmInstanceEvent,
    APIRebootVmInstanceMsg,
    APIRecoverVmInstanceEvent,
    APIRecoverVmInstanceMsg,
    APIResumeVmInstanceEvent,
    APIResumeVmInstanceMsg,
    APISetVmHostnameEvent,
    APISetVmHostnameMsg,
    APIStartVmInstanceEvent,
    APIStartVmInstanceMsg,
    APIStopVmInstanceEvent,
    APIStopVmInstanceMsg,
    APIUpdateVmInstanceEvent,
    APIUpdateVmInstanceMsg,
    AttachDataVolumeToVmMsg,
    DetachDataVolumeFromVmMsg,
    DetachNicFromVmMsg,
    ExpungeVmMsg,
    MigrateVmMsg,
    StopVmInstanceMsg,
    VmReply,
    VolumeReply,
    call_vm_owner,
)
from mn.vm.nics import remove_nic
from mn.vm.operations import (
    attach_nic_data,
    check,
    check_volume_attachable,
    destroy_data,
    migrate_data,
    refused,
    simple_data,
    start_data,
    stop_data,
)
from mn.vm.records import find_vm, run_tx, vm_inventory
from mn.vm.spec import volume_spec
from mn.vm.sync import HA_LEVEL, VmHostStatusExtension, VmStateChangedOnHostMsg, VmStateChangedOnHostReply, reconcile
from mn.vm.state import Event
from mn.vm.tags import HOSTNAME, PATTERNS
from mn.volume.inventory import VolumeInventory

if TYPE_CHECKING:
    from mn.node import ManagementNode

log = logging.getLogger(__name__)

T = TypeVar("T")

VM_RESOURCE_TYPE = VmInstanceVO.__tablename__
#: A create's handler uses its interceptor's checks when they are younger than
#: this (the message did not leave the process); older ones are done again.
CHECK_REUSE_SECONDS = 5.0

#: ZStack's VmErrors: the code of a failed operation, its cause the step's error.
VM_ERRORS = {
    "vm.create": ("VM.1000", "create"), "vm.start": ("VM.1001", "start"), "vm.stop": ("VM.1002", "stop"),
    "vm.reboot": ("VM.1003", "reboot"), "vm.destroy": ("VM.1004", "destroy"),
    "vm.expunge": ("VM.1004", "expunge"), "vm.attachVolume": ("VM.1005", "attach a volume to"),
    "vm.attachNic": ("VM.1007", "attach a L3 network to"), "vm.migrate": ("VM.1008", "migrate"),
    "vm.pause": ("VM.1012", "pause"), "vm.resume": ("VM.1013", "resume"),
}
DETACH_VOLUME_ERROR = "VM.1006"


def queue_of(vm_uuid: str) -> str:
    """The work queue in which one VM's operations run one at a time."""
    return f"vm-{vm_uuid}"


class VmInstanceService(Service):
    """ZStack's VmInstanceManager and VmInstanceBase for every VM this MN owns."""

    SERVICE_ID = SERVICE_ID

    def __init__(self, node: "ManagementNode"):
        super().__init__(node)
        node.tags.register(*PATTERNS, HA_LEVEL)
        #: Expunges Destroyed VMs once ``vm/expungePeriod`` has passed.
        self.expunger = Expunger(node, "vm", VM_EXPUNGE_INTERVAL, self._due_for_expunge, self._expunge_destroyed)

    async def start(self) -> None:
        for extension in cascade_extensions():
            self.node.cascade.register(extension)
        hosts = self.node.services.get(HOST_SERVICE_ID)
        if hosts is not None:
            hosts.add_maintenance_extension(VmHostMaintenance(self.node))
            hosts.add_extension(VmHostStatusExtension(self.node))
        self.expunger.start()

    async def stop(self) -> None:
        await self.expunger.stop()

    # -- helpers -------------------------------------------------------------------------------

    async def _queued(self, vm_uuid: str, fn: Callable[[], Awaitable[T]]) -> T:
        return await self.node.queues.run(queue_of(vm_uuid), fn)

    async def inventory(self, vm_uuid: str) -> VmInstanceInventory:
        return await self.node.db.run(vm_inventory, vm_uuid)

    async def _chain(self, chain: str, data: dict) -> dict:
        """Run ``chain`` for the VM ``data["vmUuid"]``; a failure is ZStack's VmErrors code
        for the operation, caused by the failing step's error."""
        vm_uuid = data["vmUuid"]
        try:
            return await self.node.flows.run(chain, data, resource_uuid=vm_uuid, resource_type=VM_RESOURCE_TYPE)
        except FlowError as exc:
            code, verb = VM_ERRORS[chain]
            cause = exc.step_error or exc.error
            name = data.get("name")
            what = f"vm instance[uuid:{vm_uuid}{', name:' + name if name else ''}]"
            raise OperationError(ErrorCode(code, f"failed to {verb} the vm",
                                           f"failed to {verb} {what}: {cause.details or cause.description}",
                                           cause=cause)) from exc

    async def _check_state(self, vm_uuid: str, operation: str) -> None:
        await self.node.db.run(check, vm_uuid, operation)

    # -- create ----------------------------------------------------------------------------------

    @intercepts(APICreateVmInstanceMsg)
    async def check_create(self, msg: APICreateVmInstanceMsg) -> None:
        given = msg.resourceUuid is not None
        if not given:
            # Chosen here so the job is routed to the MN that will own the VM.
            msg.resourceUuid = new_uuid()

        def check(session: Session) -> dict:
            if given and session.get(VmInstanceVO, msg.resourceUuid) is not None:
                raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                        f"resourceUuid {msg.resourceUuid} is already used by a VmInstanceVO")
            return creation_data(session, msg, msg.resourceUuid)

        msg._checked = (time.monotonic(), await self.node.db.run(check))

    @handles(APICreateVmInstanceMsg)
    async def create_vm(self, msg: APICreateVmInstanceMsg) -> APICreateVmInstanceEvent:
        vm_uuid = msg.resourceUuid or new_uuid()
        checked = msg._checked
        if checked is not None and time.monotonic() - checked[0] < CHECK_REUSE_SECONDS \
                and checked[1]["vmUuid"] == vm_uuid:
            # The interceptor checked it in this process a moment ago (what
            # ZStack does: it does not check a create twice). Later changes
            # race with the chain's steps either way.
            data = checked[1]
        else:
            data = await self.node.db.run(creation_data, msg, vm_uuid)

        async def create() -> VmInstanceInventory:
            await self._chain("vm.create", data)
            return await self.inventory(vm_uuid)

        inventory = await self._queued(vm_uuid, create)
        log.info("created vm %s (%s) on host %s", vm_uuid, msg.name, inventory.hostUuid or inventory.lastHostUuid)
        return APICreateVmInstanceEvent(inventory=inventory)

    # -- start, stop, reboot, pause, resume ------------------------------------------------------------

    @intercepts(APIStartVmInstanceMsg)
    async def check_start(self, msg: APIStartVmInstanceMsg) -> None:
        await self._check_state(msg.uuid, vm_state.START)

    @handles(APIStartVmInstanceMsg)
    async def start_vm(self, msg: APIStartVmInstanceMsg) -> APIStartVmInstanceEvent:
        async def start() -> VmInstanceInventory:
            data = await self.node.db.run(start_data, msg.uuid, msg.hostUuid, msg.clusterUuid)
            if data is not None:
                await self._chain("vm.start", data)
            return await self.inventory(msg.uuid)

        return APIStartVmInstanceEvent(inventory=await self._queued(msg.uuid, start))

    @handles(VmStateChangedOnHostMsg)
    async def state_changed_on_host(self, msg: VmStateChangedOnHostMsg) -> VmStateChangedOnHostReply:
        state, restart = await self._queued(msg.vmInstanceUuid, lambda: run_tx(
            self.node, reconcile, msg.vmInstanceUuid, msg.hostUuid, msg.stateOnHost))
        if restart:
            # A separate turn in the queue: an operation queued meanwhile goes first.
            async def start_again() -> str:
                data = await self.node.db.run(start_data, msg.vmInstanceUuid, None, None)
                if data is not None:
                    await self._chain("vm.start", data)
                return (await self.inventory(msg.vmInstanceUuid)).state

            try:
                state = await self._queued(msg.vmInstanceUuid, start_again)
                log.info("vm %s has HA level NeverStop: started again (%s)", msg.vmInstanceUuid, state)
            except OperationError as exc:
                log.warning("could not start NeverStop vm %s again: %s", msg.vmInstanceUuid, exc)
        return VmStateChangedOnHostReply(state=state)

    @intercepts(APIStopVmInstanceMsg)
    async def check_stop(self, msg: APIStopVmInstanceMsg) -> None:
        await self._check_state(msg.uuid, vm_state.STOP)

    @handles(APIStopVmInstanceMsg)
    async def stop_vm(self, msg: APIStopVmInstanceMsg) -> APIStopVmInstanceEvent:
        return APIStopVmInstanceEvent(inventory=await self._queued(msg.uuid, lambda: self._stop(msg.uuid, msg.type)))

    async def _stop(self, vm_uuid: str, stop_type: str, *, cascade: bool = False) -> VmInstanceInventory:
        data = await self.node.db.run(lambda s: stop_data(s, vm_uuid, stop_type, cascade=cascade))
        if data is not None:
            await self._chain("vm.stop", data)
        return await self.inventory(vm_uuid)

    @handles(StopVmInstanceMsg)
    async def stop_for_cascade(self, msg: StopVmInstanceMsg) -> VmReply:
        async def stop() -> VmInstanceInventory | None:
            if not await self.node.db.run(lambda s: s.get(VmInstanceVO, msg.vmInstanceUuid) is not None):
                return None
            return await self._stop(msg.vmInstanceUuid, msg.type, cascade=True)

        return VmReply(inventory=await self._queued(msg.vmInstanceUuid, stop))

    async def _simple(self, vm_uuid: str, chain: str, operation: str, event: str, done: str) -> VmInstanceInventory:
        async def run() -> VmInstanceInventory:
            data = await self.node.db.run(simple_data, vm_uuid, operation, event, done)
            await self._chain(chain, data)
            return await self.inventory(vm_uuid)

        return await self._queued(vm_uuid, run)

    @intercepts(APIRebootVmInstanceMsg)
    async def check_reboot(self, msg: APIRebootVmInstanceMsg) -> None:
        await self._check_state(msg.uuid, vm_state.REBOOT)

    @handles(APIRebootVmInstanceMsg)
    async def reboot_vm(self, msg: APIRebootVmInstanceMsg) -> APIRebootVmInstanceEvent:
        return APIRebootVmInstanceEvent(inventory=await self._simple(
            msg.uuid, "vm.reboot", vm_state.REBOOT, Event.rebooting, Event.running))

    @intercepts(APIPauseVmInstanceMsg)
    async def check_pause(self, msg: APIPauseVmInstanceMsg) -> None:
        await self._check_state(msg.uuid, vm_state.PAUSE)

    @handles(APIPauseVmInstanceMsg)
    async def pause_vm(self, msg: APIPauseVmInstanceMsg) -> APIPauseVmInstanceEvent:
        return APIPauseVmInstanceEvent(inventory=await self._simple(
            msg.uuid, "vm.pause", vm_state.PAUSE, Event.pausing, Event.paused))

    @intercepts(APIResumeVmInstanceMsg)
    async def check_resume(self, msg: APIResumeVmInstanceMsg) -> None:
        await self._check_state(msg.uuid, vm_state.RESUME)

    @handles(APIResumeVmInstanceMsg)
    async def resume_vm(self, msg: APIResumeVmInstanceMsg) -> APIResumeVmInstanceEvent:
        return APIResumeVmInstanceEvent(inventory=await self._simple(
            msg.uuid, "vm.resume", vm_state.RESUME, Event.resuming, Event.running))

    # -- destroy, recover, expunge ----------------------------------------------------------------

    @intercepts(APIDestroyVmInstanceMsg)
    async def check_destroy(self, msg: APIDestroyVmInstanceMsg) -> None:
        def state_of(session: Session) -> str | None:
            return session.scalar(select(VmInstanceVO.state).where(VmInstanceVO.uuid == msg.uuid))

        current = await self.node.db.run(state_of)
        if current is not None and current != vm_state.DESTROYED:
            vm_state.check_operation(vm_state.DESTROY, current, msg.uuid)

    @handles(APIDestroyVmInstanceMsg)
    async def destroy_vm(self, msg: APIDestroyVmInstanceMsg) -> APIDestroyVmInstanceEvent:
        async def destroy() -> None:
            data = await self.node.db.run(destroy_data, msg.uuid)
            if data is not None:
                await self._chain("vm.destroy", data)
                log.info("destroyed vm %s", msg.uuid)
            if DELETION_POLICY.value == DIRECT:
                await self._expunge(msg.uuid)

        await self._queued(msg.uuid, destroy)
        return APIDestroyVmInstanceEvent()

    @intercepts(APIRecoverVmInstanceMsg)
    async def check_recover(self, msg: APIRecoverVmInstanceMsg) -> None:
        await self._check_state(msg.uuid, vm_state.RECOVER)

    @handles(APIRecoverVmInstanceMsg)
    async def recover_vm(self, msg: APIRecoverVmInstanceMsg) -> APIRecoverVmInstanceEvent:
        async def run() -> VmInstanceInventory:
            await run_tx(self.node, recover, msg.uuid)
            return await self.inventory(msg.uuid)

        return APIRecoverVmInstanceEvent(inventory=await self._queued(msg.uuid, run))

    @intercepts(APIExpungeVmInstanceMsg)
    async def check_expunge(self, msg: APIExpungeVmInstanceMsg) -> None:
        await self._check_state(msg.uuid, vm_state.EXPUNGE)

    @handles(APIExpungeVmInstanceMsg)
    async def expunge_vm(self, msg: APIExpungeVmInstanceMsg) -> APIExpungeVmInstanceEvent:
        await self._expunge_destroyed(msg.uuid)
        return APIExpungeVmInstanceEvent()

    @handles(ExpungeVmMsg)
    async def expunge_for_cascade(self, msg: ExpungeVmMsg) -> VmReply:
        await self._queued(msg.vmInstanceUuid, lambda: self._expunge(msg.vmInstanceUuid))
        return VmReply()

    async def _due_for_expunge(self) -> list[str]:
        return await self.node.db.run(deleted_before(VmInstanceVO, VM_EXPUNGE_PERIOD.value,
                                                     VmInstanceVO.state == vm_state.DESTROYED))

    async def _expunge_destroyed(self, vm_uuid: str) -> None:
        """Expunge a VM that is (still) Destroyed, in its queue."""

        async def run() -> None:
            await self._check_state(vm_uuid, vm_state.EXPUNGE)  # recovered meanwhile: refused
            await self._expunge(vm_uuid)

        await self._queued(vm_uuid, run)

    async def _expunge(self, vm_uuid: str) -> None:
        if not await self.node.db.run(lambda s: s.get(VmInstanceVO, vm_uuid) is not None):
            return
        await self._chain("vm.expunge", {"vmUuid": vm_uuid})
        log.info("expunged vm %s", vm_uuid)

    # -- update, migrate, change offering ------------------------------------------------------------

    @handles(APIUpdateVmInstanceMsg)
    async def update_vm(self, msg: APIUpdateVmInstanceMsg) -> APIUpdateVmInstanceEvent:
        def change(session: Session) -> VmInstanceInventory:
            vm = find_vm(session, msg.uuid)
            if msg.defaultL3NetworkUuid is not None:
                l3s = session.scalars(select(VmNicVO.l3NetworkUuid).where(VmNicVO.vmInstanceUuid == vm.uuid)).all()
                if msg.defaultL3NetworkUuid not in l3s:
                    raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                            f"the vm[uuid:{vm.uuid}] has no nic on L3 network"
                                            f"[uuid:{msg.defaultL3NetworkUuid}]")
                vm.defaultL3NetworkUuid = msg.defaultL3NetworkUuid
            for field in ("name", "description", "platform", "guestOsType"):
                value = getattr(msg, field)
                if value is not None:
                    setattr(vm, field, value)
            session.flush()
            return vm_inventory(session, vm.uuid)

        return APIUpdateVmInstanceEvent(inventory=await self._queued(msg.uuid, lambda: run_tx(self.node, change)))

    @intercepts(APIMigrateVmMsg)
    async def check_migrate(self, msg: APIMigrateVmMsg) -> None:
        await self.node.db.run(migrate_data, msg.vmInstanceUuid, msg.hostUuid)

    @handles(APIMigrateVmMsg)
    async def migrate_vm(self, msg: APIMigrateVmMsg) -> APIMigrateVmEvent:
        return APIMigrateVmEvent(inventory=await self._queued(
            msg.vmInstanceUuid, lambda: self._migrate(msg.vmInstanceUuid, msg.hostUuid)))

    @handles(MigrateVmMsg)
    async def migrate_for_maintenance(self, msg: MigrateVmMsg) -> VmReply:
        async def migrate() -> VmInstanceInventory | None:
            on_a_host = await self.node.db.run(
                lambda s: s.scalar(select(VmInstanceVO.hostUuid).where(VmInstanceVO.uuid == msg.vmInstanceUuid)))
            return await self._migrate(msg.vmInstanceUuid, msg.hostUuid) if on_a_host else None

        return VmReply(inventory=await self._queued(msg.vmInstanceUuid, migrate))

    async def _migrate(self, vm_uuid: str, host_uuid: str | None) -> VmInstanceInventory:
        data = await self.node.db.run(migrate_data, vm_uuid, host_uuid)
        await self._chain("vm.migrate", data)
        return await self.inventory(vm_uuid)

    @intercepts(APIChangeInstanceOfferingMsg)
    async def check_change_offering(self, msg: APIChangeInstanceOfferingMsg) -> None:
        await self.node.db.run(_check_offering_change, msg.vmInstanceUuid, msg.instanceOfferingUuid)

    @handles(APIChangeInstanceOfferingMsg)
    async def change_instance_offering(self, msg: APIChangeInstanceOfferingMsg) -> APIChangeInstanceOfferingEvent:
        async def change() -> VmInstanceInventory:
            await run_tx(self.node, _change_offering, msg.vmInstanceUuid, msg.instanceOfferingUuid)
            return await self.inventory(msg.vmInstanceUuid)

        return APIChangeInstanceOfferingEvent(inventory=await self._queued(msg.vmInstanceUuid, change))

    # -- nics ------------------------------------------------------------------------------------------

    @intercepts(APIAttachL3NetworkToVmMsg)
    async def check_attach_l3(self, msg: APIAttachL3NetworkToVmMsg) -> None:
        await self.node.db.run(attach_nic_data, msg.vmInstanceUuid, msg.l3NetworkUuid, msg.staticIp,
                               msg.customMac, msg.driverType)

    @handles(APIAttachL3NetworkToVmMsg)
    async def attach_l3(self, msg: APIAttachL3NetworkToVmMsg) -> APIAttachL3NetworkToVmEvent:
        async def attach() -> VmInstanceInventory:
            data = await self.node.db.run(attach_nic_data, msg.vmInstanceUuid, msg.l3NetworkUuid, msg.staticIp,
                                          msg.customMac, msg.driverType)
            await self._chain("vm.attachNic", data)
            return await self.inventory(msg.vmInstanceUuid)

        return APIAttachL3NetworkToVmEvent(inventory=await self._queued(msg.vmInstanceUuid, attach))

    @intercepts(APIDetachL3NetworkFromVmMsg)
    async def check_detach_l3(self, msg: APIDetachL3NetworkFromVmMsg) -> None:
        vm = await self.node.db.run(_vm_of_nic, msg.vmNicUuid)
        if not vm_state.is_allowed(vm_state.DETACH_L3, vm.state):
            raise refused(f"unable to detach a L3 network. The vm[uuid: {vm.uuid}] is not Running or Stopped; "
                          f"the current state is {vm.state}")

    @handles(APIDetachL3NetworkFromVmMsg)
    async def detach_l3(self, msg: APIDetachL3NetworkFromVmMsg) -> APIDetachL3NetworkFromVmEvent:
        # Routed by the nic: the VM's owner does the work, in the VM's queue.
        vm = await self.node.db.run(_vm_of_nic, msg.vmNicUuid)
        reply = await call_vm_owner(self.node, DetachNicFromVmMsg(vmInstanceUuid=vm.uuid, vmNicUuid=msg.vmNicUuid,
                                                                  checkState=True))
        return APIDetachL3NetworkFromVmEvent(inventory=reply.inventory)

    @handles(DetachNicFromVmMsg)
    async def detach_nic(self, msg: DetachNicFromVmMsg) -> VmReply:
        async def detach() -> VmInstanceInventory | None:
            return await self._detach_nic(msg.vmInstanceUuid, msg.vmNicUuid, msg.checkState)

        return VmReply(inventory=await self._queued(msg.vmInstanceUuid, detach))

    async def _detach_nic(self, vm_uuid: str, nic_uuid: str, check_state: bool) -> VmInstanceInventory | None:
        found = await self.node.db.run(lambda s: (s.get(VmInstanceVO, vm_uuid), s.get(VmNicVO, nic_uuid)))
        vm, nic = found
        if vm is None:
            return None
        if nic is not None and nic.vmInstanceUuid == vm_uuid:
            if check_state and not vm_state.is_allowed(vm_state.DETACH_L3, vm.state):
                raise refused(f"unable to detach a L3 network. The vm[uuid: {vm_uuid}] is not Running or "
                              f"Stopped; the current state is {vm.state}")
            if await on_host(self.node, vm_uuid):
                backend, spec = await backend_of(self.node, vm_uuid)
                nic_spec = next(n for n in spec.nics if n.uuid == nic_uuid)
                await backend.detach_nic(self.node, spec, nic_spec)

            def remove(session: Session) -> None:
                l3_uuid = nic.l3NetworkUuid
                remove_nic(self.node, session, nic_uuid)
                vm_row = find_vm(session, vm_uuid)
                if vm_row.defaultL3NetworkUuid == l3_uuid or vm_row.defaultL3NetworkUuid is None:
                    vm_row.defaultL3NetworkUuid = default_l3_after_detach(session, vm_uuid, l3_uuid)

            await run_tx(self.node, remove)
            log.info("detached nic %s from vm %s", nic_uuid, vm_uuid)
        return await self.inventory(vm_uuid)

    # -- hostname --------------------------------------------------------------------------------------

    @intercepts(APISetVmHostnameMsg)
    async def check_set_hostname(self, msg: APISetVmHostnameMsg) -> None:
        HOSTNAME.instantiate(hostname=msg.hostname)

    @handles(APISetVmHostnameMsg)
    async def set_hostname(self, msg: APISetVmHostnameMsg) -> APISetVmHostnameEvent:
        tag = HOSTNAME.instantiate(hostname=msg.hostname)

        async def set_tag() -> None:
            await self.node.db.run(find_vm, msg.uuid)
            await self.node.tags.delete(HOSTNAME, msg.uuid)
            await self.node.tags.create_system_tag(msg.uuid, VM_RESOURCE_TYPE, tag)

        await self._queued(msg.uuid, set_tag)
        return APISetVmHostnameEvent()

    @handles(APIGetVmHostnameMsg)
    async def get_hostname(self, msg: APIGetVmHostnameMsg) -> APIGetVmHostnameReply:
        tokens = await self.node.tags.get_tokens(HOSTNAME, msg.uuid)
        return APIGetVmHostnameReply(hostname=tokens["hostname"] if tokens else None)

    @handles(APIDeleteVmHostnameMsg)
    async def delete_hostname(self, msg: APIDeleteVmHostnameMsg) -> APIDeleteVmHostnameEvent:
        await self._queued(msg.uuid, lambda: self.node.tags.delete(HOSTNAME, msg.uuid))
        return APIDeleteVmHostnameEvent()

    # -- data volumes (asked by the volume service) -----------------------------------------------------

    @handles(AttachDataVolumeToVmMsg)
    async def attach_volume(self, msg: AttachDataVolumeToVmMsg) -> VolumeReply:
        async def attach() -> VolumeInventory:
            await self.node.db.run(check_volume_attachable, msg.vmInstanceUuid, msg.volumeUuid)
            await self._chain("vm.attachVolume", {"vmUuid": msg.vmInstanceUuid, "volumeUuid": msg.volumeUuid})
            return await self.node.db.run(lambda s: VolumeInventory.from_vo(s.get(VolumeVO, msg.volumeUuid)))

        return VolumeReply(inventory=await self._queued(msg.vmInstanceUuid, attach))

    @handles(DetachDataVolumeFromVmMsg)
    async def detach_volume(self, msg: DetachDataVolumeFromVmMsg) -> VolumeReply:
        async def detach() -> VolumeInventory | None:
            return await self._detach_volume(msg.vmInstanceUuid, msg.volumeUuid)

        return VolumeReply(inventory=await self._queued(msg.vmInstanceUuid, detach))

    async def _detach_volume(self, vm_uuid: str, volume_uuid: str) -> VolumeInventory | None:
        volume = await self.node.db.run(lambda s: s.get(VolumeVO, volume_uuid))
        if volume is None:
            return None
        if volume.vmInstanceUuid == vm_uuid:
            vm = await self.node.db.run(lambda s: s.get(VmInstanceVO, vm_uuid))
            if vm is not None and not vm_state.is_allowed(vm_state.DETACH_VOLUME, vm.state) \
                    and vm.state not in (vm_state.DESTROYED,):
                raise OperationError(error(
                    SysErrors.OPERATION_ERROR,
                    f"cannot detach volume[uuid:{volume_uuid}] from vm[uuid:{vm_uuid}] in state {vm.state}",
                    ErrorCode(DETACH_VOLUME_ERROR, "failed to detach the volume",
                              f"vm instance[uuid:{vm_uuid}] is {vm.state}")))
            if await on_host(self.node, vm_uuid):
                backend, spec = await backend_of(self.node, vm_uuid)
                await backend.detach_volume(self.node, spec, volume_spec(volume))

            def unassign(session: Session) -> None:
                session.execute(update(VolumeVO)
                                .where(VolumeVO.uuid == volume_uuid, VolumeVO.vmInstanceUuid == vm_uuid)
                                .values(vmInstanceUuid=None, deviceId=None, lastVmInstanceUuid=vm_uuid,
                                        lastDetachDate=utcnow()),
                                execution_options={"synchronize_session": False})

            await run_tx(self.node, unassign)
            log.info("detached volume %s from vm %s", volume_uuid, vm_uuid)
        return await self.node.db.run(lambda s: VolumeInventory.from_vo(s.get(VolumeVO, volume_uuid)))


# -- in-transaction checks and changes ---------------------------------------------------------------


def _vm_of_nic(session: Session, nic_uuid: str) -> VmInstanceVO:
    nic = session.get(VmNicVO, nic_uuid)
    if nic is None or nic.vmInstanceUuid is None:
        raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND, f"vm nic[uuid:{nic_uuid}] is not found")
    return find_vm(session, nic.vmInstanceUuid)


def _offering(session: Session, offering_uuid: str) -> InstanceOfferingVO:
    offering = session.get(InstanceOfferingVO, offering_uuid)
    if offering is None:
        raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                                f"instance offering[uuid:{offering_uuid}] is not found")
    if offering.state != "Enabled":
        raise refused(f"instance offering[uuid:{offering_uuid}] is {offering.state}")
    return offering


def _check_offering_change(session: Session, vm_uuid: str, offering_uuid: str) -> None:
    check(session, vm_uuid, vm_state.CHANGE_INSTANCE_OFFERING)
    _offering(session, offering_uuid)


def _change_offering(session: Session, vm_uuid: str, offering_uuid: str) -> None:
    """New CPU and memory; a VM on a host takes (or gives back) the difference there, now."""
    vm = check(session, vm_uuid, vm_state.CHANGE_INSTANCE_OFFERING)
    offering = _offering(session, offering_uuid)
    if vm.hostUuid is not None:
        cpu_more, memory_more = offering.cpuNum - vm.cpuNum, offering.memorySize - vm.memorySize
        if (cpu_more > 0 or memory_more > 0) and not reserve_host_capacity(
                session, vm.hostUuid, max(cpu_more, 0), max(memory_more, 0)):
            raise refused(f"host[uuid:{vm.hostUuid}] of vm instance[uuid:{vm_uuid}] has not {max(cpu_more, 0)} "
                          f"more CPUs and {max(memory_more, 0)} more bytes of memory for instance offering"
                          f"[uuid:{offering_uuid}]")
        if cpu_more < 0 or memory_more < 0:
            release_host_capacity(session, vm.hostUuid, max(-cpu_more, 0), max(-memory_more, 0))
    vm.cpuNum, vm.cpuSpeed, vm.memorySize = offering.cpuNum, offering.cpuSpeed, offering.memorySize
    vm.reservedMemorySize = offering.reservedMemorySize
    vm.instanceOfferingUuid, vm.allocatorStrategy = offering.uuid, offering.allocatorStrategy
