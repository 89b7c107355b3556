"""Steps of ``vm.destroy``, ``vm.expunge`` and ``vm.migrate``.

Destroy and expunge are resumable chains: once the VM is gone from its
hypervisor there is no way back, so an MN taking over an interrupted one
finishes it. Their steps are idempotent for that reason.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mn.db.models.host import HostVO
from mn.db.models.vm import VmInstanceVO
from mn.db.models.volume import DATA, DELETED, READY, ROOT, VolumeVO
from mn.db.types import utcnow
from mn.errors import OperationError, SysErrors
from mn.flow import Flow, FlowContext, NoRollbackFlow
from mn.host.allocator import allocate_host
from mn.host.capacity import release_host_capacity
from mn.vm import state as vm_state
from mn.vm.config import DELETE_DATA_VOLUME_ON_VM_DESTROY
from mn.vm.flows.common import allocation_spec, backend_of, transitional_state
from mn.vm.nics import nics_of, release_nic_ip, remove_nic
from mn.vm.records import delete_vm_row, find_vm, forget, return_host, run_tx
from mn.volume.placement import unplace_volume

log = logging.getLogger(__name__)


# -- destroy ---------------------------------------------------------------------------------


class VmReleaseNicIpsFlow(NoRollbackFlow):
    """Gives the addresses of the VM's nics back, keeping the nics (ZStack's
    Delay policy: a recovered VM gets addresses again when it starts)."""

    async def run(self, ctx: FlowContext) -> None:
        vm_uuid = ctx.data["vmUuid"]

        def release(session: Session) -> None:
            for nic in nics_of(session, vm_uuid):
                release_nic_ip(session, nic.uuid)

        await run_tx(ctx.node, release)


class VmDetachDataVolumesFlow(NoRollbackFlow):
    """Detaches the VM's data volumes; with ``vm/dataVolume.deleteOnVmDestroy``
    they are also deleted (status Deleted, to be expunged later)."""

    async def run(self, ctx: FlowContext) -> None:
        vm_uuid = ctx.data["vmUuid"]
        delete_them = DELETE_DATA_VOLUME_ON_VM_DESTROY.value

        def detach(session: Session) -> None:
            values = dict(vmInstanceUuid=None, deviceId=None, lastVmInstanceUuid=vm_uuid,
                          lastDetachDate=utcnow())
            if delete_them:
                values["status"] = DELETED
            session.execute(update(VolumeVO).where(VolumeVO.vmInstanceUuid == vm_uuid, VolumeVO.type == DATA)
                            .values(**values), execution_options={"synchronize_session": False})

        await run_tx(ctx.node, detach)


class VmDeleteRootVolumeFlow(NoRollbackFlow):
    """Marks the root volume Deleted: it keeps its storage until the VM is
    expunged, so a recovered VM gets it back as it was."""

    async def run(self, ctx: FlowContext) -> None:
        vm_uuid = ctx.data["vmUuid"]

        def mark(session: Session) -> None:
            session.execute(update(VolumeVO).where(VolumeVO.vmInstanceUuid == vm_uuid, VolumeVO.type == ROOT)
                            .values(status=DELETED), execution_options={"synchronize_session": False})

        await run_tx(ctx.node, mark)


# -- expunge ----------------------------------------------------------------------------------


class VmExpungeBeginFlow(NoRollbackFlow):
    """Moves the VM to Expunging, whatever it was: an expunge always ends with the VM gone."""

    async def run(self, ctx: FlowContext) -> None:
        vm_uuid = ctx.data["vmUuid"]

        def mark(session: Session) -> None:
            vm = session.get(VmInstanceVO, vm_uuid)
            if vm is not None:
                vm.state = vm_state.EXPUNGING

        await run_tx(ctx.node, mark)


class VmExpungeHostFlow(NoRollbackFlow):
    """Gives back what the VM holds on its host, if it still holds anything."""

    async def run(self, ctx: FlowContext) -> None:
        vm_uuid = ctx.data["vmUuid"]

        def leave(session: Session) -> None:
            vm = session.get(VmInstanceVO, vm_uuid)
            if vm is not None and vm.hostUuid is not None:
                return_host(session, vm_uuid, vm.hostUuid, vm.cpuNum, vm.memorySize, lastHostUuid=vm.hostUuid)

        await run_tx(ctx.node, leave)


class VmRemoveNicsFlow(NoRollbackFlow):
    """Gives the nics' addresses back and deletes the nics."""

    async def run(self, ctx: FlowContext) -> None:
        vm_uuid = ctx.data["vmUuid"]

        def remove(session: Session) -> None:
            for nic in nics_of(session, vm_uuid):
                remove_nic(ctx.node, session, nic.uuid)

        await run_tx(ctx.node, remove)


class VmExpungeRootVolumeFlow(NoRollbackFlow):
    """Deletes the root volume and gives its primary storage capacity back."""

    async def run(self, ctx: FlowContext) -> None:
        vm_uuid = ctx.data["vmUuid"]

        def expunge(session: Session) -> None:
            uuids = list(session.scalars(select(VolumeVO.uuid).where(VolumeVO.vmInstanceUuid == vm_uuid,
                                                                     VolumeVO.type == ROOT)))
            for uuid in uuids:
                unplace_volume(session, uuid)
                volume = session.get(VolumeVO, uuid)
                if volume is not None:
                    session.delete(volume)
            session.flush()
            forget(ctx.node, session, uuids)

        await run_tx(ctx.node, expunge)


class VmDeleteRecordFlow(NoRollbackFlow):
    """Deletes the VM's row, with its tags and owner."""

    async def run(self, ctx: FlowContext) -> None:
        vm_uuid = ctx.data["vmUuid"]
        await run_tx(ctx.node, lambda s: delete_vm_row(ctx.node, s, vm_uuid))


# -- recover (one transaction, no chain) --------------------------------------------------------


def recover(session: Session, vm_uuid: str) -> None:
    """Destroyed -> Stopped: the root volume is Ready again (it kept its storage)."""
    vm = find_vm(session, vm_uuid)
    vm_state.check_operation(vm_state.RECOVER, vm.state, vm_uuid)
    root = session.scalar(select(VolumeVO).where(VolumeVO.vmInstanceUuid == vm_uuid, VolumeVO.type == ROOT))
    if root is None or root.primaryStorageUuid is None:
        raise OperationError.of(SysErrors.OPERATION_ERROR,
                                f"cannot recover vm instance[uuid:{vm_uuid}]: its root volume is gone")
    root.status = READY
    vm.state = vm_state.next_state(vm.state, vm_state.Event.stopped)


# -- migrate -------------------------------------------------------------------------------------


class VmAllocateHostForMigrateFlow(Flow):
    """Reserves the VM's CPU and memory on a destination host other than its own
    (``destHostUuid``); rollback gives them back unless the VM moved there."""

    async def run(self, ctx: FlowContext) -> None:
        d = ctx.data
        d["destHostUuid"] = await allocate_host(ctx.node, allocation_spec(d))

    async def rollback(self, ctx: FlowContext) -> None:
        d = ctx.data
        dest = d.get("destHostUuid")
        if dest is None:
            return

        def give_back(session: Session) -> None:
            moved = session.scalar(select(VmInstanceVO.hostUuid).where(VmInstanceVO.uuid == d["vmUuid"])) == dest
            if not moved:
                release_host_capacity(session, dest, d["cpuNum"], d["memorySize"])

        await run_tx(ctx.node, give_back)
        d.pop("destHostUuid", None)


class VmMigrateOnHypervisorFlow(NoRollbackFlow):
    async def run(self, ctx: FlowContext) -> None:
        backend, spec = await backend_of(ctx.node, ctx.data["vmUuid"])
        await backend.migrate_vm(ctx.node, spec, ctx.data["destHostUuid"])


class VmMigratedFlow(NoRollbackFlow):
    """The VM is on the destination now: it holds that host and gives the source
    back, in one transaction; it ends Running (or Paused, if it was)."""

    async def run(self, ctx: FlowContext) -> None:
        d = ctx.data
        source, dest = d["sourceHostUuid"], d["destHostUuid"]
        migrated = vm_state.next_state(transitional_state(d), vm_state.Event.migrated)
        final = vm_state.PAUSED if d["originState"] == vm_state.PAUSED else migrated

        def move(session: Session) -> None:
            host = session.get(HostVO, dest)
            if host is None:
                raise OperationError.of(SysErrors.OPERATION_ERROR,
                                        f"host[uuid:{dest}] was deleted while vm instance[uuid:{d['vmUuid']}] "
                                        f"migrated to it")
            result = session.execute(
                update(VmInstanceVO).where(VmInstanceVO.uuid == d["vmUuid"], VmInstanceVO.hostUuid == source)
                .values(hostUuid=dest, lastHostUuid=source, clusterUuid=host.clusterUuid, zoneUuid=host.zoneUuid,
                        state=final), execution_options={"synchronize_session": False})
            if result.rowcount != 1:
                raise OperationError.of(SysErrors.OPERATION_ERROR,
                                        f"vm instance[uuid:{d['vmUuid']}] left host[uuid:{source}] while migrating")
            release_host_capacity(session, source, d["cpuNum"], d["memorySize"])

        await run_tx(ctx.node, move)
