"""Steps of ``vm.attachNic`` and ``vm.attachVolume``: devices added to a VM.

``vm.attachNic`` data: ``vmUuid``, ``l3NetworkUuid``, ``nicUuid`` (chosen
before the chain), ``staticIp``, ``mac``, ``driverType``.
``vm.attachVolume`` data: ``vmUuid``, ``volumeUuid``.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mn.db.models.storage import PrimaryStorageVO
from mn.db.models.vm import VmInstanceVO, VmNicVO
from mn.db.models.volume import NOT_INSTANTIATED, READY, ROOT, VolumeVO
from mn.db.types import utcnow
from mn.errors import OperationError, SysErrors
from mn.flow import Flow, FlowContext
from mn.vm.flows.common import backend_of, on_host
from mn.vm.flows.create import install_path
from mn.vm.nics import add_nic, next_device_id, remove_nic
from mn.vm.records import find_vm, run_tx
from mn.vm.spec import nic_spec, volume_spec
from mn.volume.placement import place_on_candidates, unplace_volume

log = logging.getLogger(__name__)


# -- nics -------------------------------------------------------------------------------------


class VmAllocateNicForAttachFlow(Flow):
    """Adds the nic with a new address (and makes its L3 network the VM's default
    if it had none); rollback gives the address back and removes the nic."""

    async def run(self, ctx: FlowContext) -> None:
        d = ctx.data

        def allocate(session: Session) -> None:
            vm = find_vm(session, d["vmUuid"])
            add_nic(ctx.node, session, vm, d["l3NetworkUuid"], next_device_id(session, vm.uuid),
                    nic_uuid=d["nicUuid"], static_ip=d.get("staticIp"), mac=d.get("mac"),
                    driver_type=d.get("driverType"))
            if vm.defaultL3NetworkUuid is None:
                vm.defaultL3NetworkUuid = d["l3NetworkUuid"]

        await run_tx(ctx.node, allocate)

    async def rollback(self, ctx: FlowContext) -> None:
        d = ctx.data

        def give_back(session: Session) -> None:
            remove_nic(ctx.node, session, d["nicUuid"])
            vm = session.get(VmInstanceVO, d["vmUuid"])
            if vm is not None and vm.defaultL3NetworkUuid == d["l3NetworkUuid"]:
                vm.defaultL3NetworkUuid = default_l3_after_detach(session, vm.uuid, d["l3NetworkUuid"])

        await run_tx(ctx.node, give_back)


def default_l3_after_detach(session: Session, vm_uuid: str, l3_uuid: str) -> str | None:
    """The VM's default L3 network once its nic on ``l3_uuid`` is gone: the same
    if another nic is on it, else the L3 network of its first remaining nic."""
    remaining = session.scalars(select(VmNicVO.l3NetworkUuid).where(VmNicVO.vmInstanceUuid == vm_uuid)
                                .order_by(VmNicVO.deviceId)).all()
    if l3_uuid in remaining:
        return l3_uuid
    return remaining[0] if remaining else None


class VmAttachNicOnHypervisorFlow(Flow):
    """Plugs the nic into the running VM; nothing to do for a VM on no host."""

    async def run(self, ctx: FlowContext) -> None:
        if not await on_host(ctx.node, ctx.data["vmUuid"]):
            return
        backend, spec = await backend_of(ctx.node, ctx.data["vmUuid"])
        nic = await ctx.db.run(lambda s: nic_spec(s.get(VmNicVO, ctx.data["nicUuid"])))
        await backend.attach_nic(ctx.node, spec, nic)

    async def rollback(self, ctx: FlowContext) -> None:
        if not await on_host(ctx.node, ctx.data["vmUuid"]):
            return
        try:
            backend, spec = await backend_of(ctx.node, ctx.data["vmUuid"])
            nic = await ctx.db.run(lambda s: s.get(VmNicVO, ctx.data["nicUuid"]))
            if nic is not None:
                await backend.detach_nic(ctx.node, spec, nic_spec(nic))
        except OperationError as exc:
            log.warning("could not unplug nic %s of vm %s after a failed attach: %s", ctx.data["nicUuid"],
                        ctx.data["vmUuid"], exc)


# -- data volumes --------------------------------------------------------------------------------


class VmInstantiateAttachingVolumeFlow(Flow):
    """A data volume created without storage gets it now, on a primary storage
    of the VM's cluster (next to the root volume if there is room); rollback
    gives the storage back."""

    async def run(self, ctx: FlowContext) -> None:
        d = ctx.data

        def instantiate(session: Session) -> bool:
            volume = session.get(VolumeVO, d["volumeUuid"])
            if volume is None:
                raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                                        f"volume[uuid:{d['volumeUuid']}] was deleted while being attached")
            if volume.status != NOT_INSTANTIATED:
                return False
            vm = find_vm(session, d["vmUuid"])
            root_ps = session.scalar(select(VolumeVO.primaryStorageUuid)
                                     .where(VolumeVO.vmInstanceUuid == vm.uuid, VolumeVO.type == ROOT))
            placed = place_on_candidates(session, volume, vm.clusterUuid, vm.hostUuid or vm.lastHostUuid,
                                         [root_ps] if root_ps else [])
            volume.installPath = install_path(session.get(PrimaryStorageVO, placed), volume)
            volume.status = READY
            return True

        d["instantiated"] = await run_tx(ctx.node, instantiate)

    async def rollback(self, ctx: FlowContext) -> None:
        d = ctx.data
        if not d.get("instantiated"):
            return

        def give_back(session: Session) -> None:
            if unplace_volume(session, d["volumeUuid"]):
                session.execute(update(VolumeVO).where(VolumeVO.uuid == d["volumeUuid"])
                                .values(status=NOT_INSTANTIATED, installPath=None),
                                execution_options={"synchronize_session": False})

        await run_tx(ctx.node, give_back)


class VmAssignVolumeFlow(Flow):
    """Records the volume as the VM's, with the next free device id; rollback undoes it."""

    async def run(self, ctx: FlowContext) -> None:
        d = ctx.data

        def assign(session: Session) -> None:
            used = set(session.scalars(select(VolumeVO.deviceId).where(VolumeVO.vmInstanceUuid == d["vmUuid"])))
            device_id = next(i for i in range(len(used) + 1) if i not in used)
            result = session.execute(
                update(VolumeVO)
                .where(VolumeVO.uuid == d["volumeUuid"], VolumeVO.vmInstanceUuid.is_(None),
                       VolumeVO.status == READY)
                .values(vmInstanceUuid=d["vmUuid"], deviceId=device_id, lastVmInstanceUuid=d["vmUuid"],
                        lastAttachDate=utcnow()), execution_options={"synchronize_session": False})
            if result.rowcount != 1:
                raise OperationError.of(SysErrors.OPERATION_ERROR,
                                        f"volume[uuid:{d['volumeUuid']}] was attached, deleted or changed "
                                        f"while being attached to vm instance[uuid:{d['vmUuid']}]")

        await run_tx(ctx.node, assign)

    async def rollback(self, ctx: FlowContext) -> None:
        d = ctx.data

        def unassign(session: Session) -> None:
            session.execute(update(VolumeVO)
                            .where(VolumeVO.uuid == d["volumeUuid"], VolumeVO.vmInstanceUuid == d["vmUuid"])
                            .values(vmInstanceUuid=None, deviceId=None),
                            execution_options={"synchronize_session": False})

        await run_tx(ctx.node, unassign)


class VmAttachVolumeOnHypervisorFlow(Flow):
    """Plugs the volume into the running VM; nothing to do for a VM on no host."""

    async def run(self, ctx: FlowContext) -> None:
        if not await on_host(ctx.node, ctx.data["vmUuid"]):
            return
        backend, spec = await backend_of(ctx.node, ctx.data["vmUuid"])
        volume = await ctx.db.run(lambda s: volume_spec(s.get(VolumeVO, ctx.data["volumeUuid"])))
        await backend.attach_volume(ctx.node, spec, volume)

    async def rollback(self, ctx: FlowContext) -> None:
        if not await on_host(ctx.node, ctx.data["vmUuid"]):
            return
        try:
            backend, spec = await backend_of(ctx.node, ctx.data["vmUuid"])
            volume = await ctx.db.run(lambda s: volume_spec(s.get(VolumeVO, ctx.data["volumeUuid"])))
            await backend.detach_volume(ctx.node, spec, volume)
        except OperationError as exc:
            log.warning("could not unplug volume %s of vm %s after a failed attach: %s", ctx.data["volumeUuid"],
                        ctx.data["vmUuid"], exc)
