"""The steps of ``vm.create`` (``flows/vm/create.xml``), in chain order.

The service puts in ``ctx.data``: ``vmUuid``; ``api`` (the create request,
for the VM row's tags and owner; dropped once the row exists); the VM's
columns (``name``, ``description``, ``type``, ``cpuNum``, ``cpuSpeed``, ``memorySize``,
``reservedMemorySize``, ``platform``, ``guestOsType``, ``architecture``,
``imageUuid``, ``instanceOfferingUuid``, ``allocatorStrategy``); where it
may go (``zoneUuid``, ``clusterUuid``, ``requestedHostUuid``,
``l3NetworkUuids``, ``defaultL3NetworkUuid``, ``requiredDiskSize``); its
volumes (``rootVolume`` and ``dataVolumes``: ``{uuid, name, size,
diskOfferingUuid, format}``, plus ``primaryStorageUuidForRootVolume``);
``nicUuids`` (one per L3 network) and ``staticIps`` (L3 uuid -> address);
and ``strategy``. Uuids are chosen before the chain starts so that a
rollback after a crash knows which rows are this chain's.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mn.api.resource import persist_new
from mn.db.models.storage import PrimaryStorageVO
from mn.db.models.vm import VmInstanceVO
from mn.db.models.volume import DATA, READY, ROOT, VolumeVO
from mn.errors import OperationError, SysErrors, error
from mn.flow import Flow, FlowContext, NoRollbackFlow
from mn.identity import ownership
from mn.image.backup import image_backup_storages
from mn.vm import state as vm_state
from mn.vm.flows.common import backend_of
from mn.vm.messages import INSTANT_START, APICreateVmInstanceMsg
from mn.vm.nics import add_nic, remove_nic
from mn.vm.records import (
    delete_vm_row,
    find_vm,
    forget,
    next_internal_id,
    owner_of,
    return_host,
    run_tx,
    set_state,
)
from mn.volume.placement import VOLUME_RESOURCE_TYPE, reserve_on_candidates, unplace_volume

log = logging.getLogger(__name__)

VM_RESOURCE_TYPE = VmInstanceVO.__tablename__


class VmCreateRecordFlow(Flow):
    """Inserts the VM's row in state Created, with its tags and owner, so it is
    visible while it is being made; rollback deletes it (unless the uuid was
    someone else's VM already: then ``vmExisted`` says so)."""

    atomic = True

    async def run(self, ctx: FlowContext) -> None:
        d = ctx.data
        msg = APICreateVmInstanceMsg.model_validate(d["api"])
        # Checked below, where a taken uuid is told from other errors;
        # persist_new would read the row once more.
        msg.resourceUuid = None

        def insert(session: Session) -> None:
            # A taken uuid fails the insert (its primary key), told below.
            vm = VmInstanceVO(
                uuid=d["vmUuid"], name=d["name"], description=d.get("description"), type=d["type"],
                imageUuid=d["imageUuid"], instanceOfferingUuid=d.get("instanceOfferingUuid"),
                cpuNum=d["cpuNum"], cpuSpeed=d.get("cpuSpeed") or 0, memorySize=d["memorySize"],
                reservedMemorySize=d.get("reservedMemorySize") or 0, platform=d.get("platform"),
                guestOsType=d.get("guestOsType"), architecture=d.get("architecture"),
                allocatorStrategy=d.get("allocatorStrategy"), zoneUuid=d.get("zoneUuid"),
                state=vm_state.CREATED, internalId=next_internal_id(session))
            persist_new(ctx.node, session, vm, msg, VM_RESOURCE_TYPE)
            if getattr(ctx.node, "identity", None) is not None:
                # The owner of the VM's volumes and nics, which later steps
                # would otherwise read back.
                d["accountUuid"] = ownership.owner_of(msg.session)
            # The request is needed for the row's tags and owner only: the
            # record, written once per step from now on, need not carry it.
            d.pop("api", None)
            ctx.mark_done(session)

        try:
            await run_tx(ctx.node, insert)
        except IntegrityError as exc:
            if await ctx.db.run(lambda session: session.get(VmInstanceVO, d["vmUuid"]) is not None):
                d["vmExisted"] = True  # another VM's uuid, or a concurrent create of this one won
                raise _taken(d["vmUuid"]) from None
            # A row it names went away meanwhile (the image, the zone...).
            raise OperationError.of(SysErrors.OPERATION_ERROR,
                                    f"could not record vm instance[uuid:{d['vmUuid']}]: {exc.orig}") from None

    async def rollback(self, ctx: FlowContext) -> None:
        if ctx.data.get("vmExisted"):
            return
        vm_uuid = ctx.data["vmUuid"]
        await run_tx(ctx.node, lambda session: delete_vm_row(ctx.node, session, vm_uuid))


def _taken(vm_uuid: str) -> OperationError:
    return OperationError(error(SysErrors.INVALID_ARGUMENT_ERROR,
                            f"resourceUuid {vm_uuid} is already used by a VmInstanceVO"))


class VmImageSelectBackupStorageFlow(NoRollbackFlow):
    """Picks a backup storage of the VM's zone holding a Ready copy of its image
    (``backupStorageUuid``), where the root volume is made from."""

    atomic = True  # it only reads

    async def run(self, ctx: FlowContext) -> None:
        d = ctx.data
        candidates = await ctx.db.run(image_backup_storages, d["imageUuid"], d.get("zoneUuid"))
        if not candidates:
            where = f"zone[uuid:{d['zoneUuid']}]" if d.get("zoneUuid") else "any zone"
            raise OperationError.of(SysErrors.OPERATION_ERROR,
                                    f"no Enabled and Connected backup storage attached to {where} has a Ready "
                                    f"copy of image[uuid:{d['imageUuid']}]")
        d["backupStorageUuid"] = candidates[0]


def _volume_specs(data: dict) -> list[tuple[dict, str]]:
    return [(data["rootVolume"], ROOT)] + [(spec, DATA) for spec in data.get("dataVolumes") or []]


class VmAllocatePrimaryStorageFlow(Flow):
    """Reserves room for the root and data volumes on primary storages of the
    VM's cluster, inserts their rows and makes them there (an install path:
    a KVM host makes the file when it creates the VM), Ready, the root
    volume recorded on the VM; all in one transaction, since a volume row
    with a primary storage is what holds that capacity. Rollback gives the
    room back and deletes the rows."""

    atomic = True

    async def run(self, ctx: FlowContext) -> None:
        d = ctx.data

        def allocate(session: Session) -> None:
            # First: the storage's capacity row, locked by the reservation
            # until the commit, is then held for less time.
            ctx.mark_done(session)
            vm = find_vm(session, d["vmUuid"])
            account = d.get("accountUuid") or owner_of(session, vm.uuid)
            requested = d.get("primaryStorageUuidForRootVolume")
            preferred: list[str] = [requested] if requested else []
            paths: dict[str, Any] = {}
            for device_id, (spec, volume_type) in enumerate(_volume_specs(d)):
                volume = VolumeVO(
                    uuid=spec["uuid"], name=spec["name"], description=spec.get("description"),
                    vmInstanceUuid=vm.uuid, diskOfferingUuid=spec.get("diskOfferingUuid"),
                    rootImageUuid=vm.imageUuid if volume_type == ROOT else None, type=volume_type,
                    status=READY, size=spec["size"], actualSize=0, deviceId=device_id,
                    format=spec.get("format"), lastVmInstanceUuid=vm.uuid)
                # Reserved before the row is written, so the row is written
                # once, on its storage and Ready (an install path: a KVM host
                # makes the file when it creates the VM).
                placed = reserve_on_candidates(session, volume, vm.clusterUuid, vm.hostUuid, preferred)
                if volume_type == ROOT:
                    if requested and placed != requested:
                        raise OperationError.of(
                            SysErrors.OPERATION_ERROR,
                            f"primary storage[uuid:{requested}] asked for the root volume is not attached to "
                            f"cluster[uuid:{vm.clusterUuid}] of host[uuid:{vm.hostUuid}], not Enabled and "
                            f"Connected, or has not {volume.size} bytes available")
                    # Data volumes go with the root volume when it has room.
                    preferred = [placed]
                if placed not in paths:
                    paths[placed] = _paths_of(session, placed)
                volume.primaryStorageUuid = placed
                volume.installPath = install_path(paths[placed], volume)
                session.add(volume)
                if account is not None:
                    ownership.own(session, account, volume.uuid, VOLUME_RESOURCE_TYPE)
            # The volumes before the VM names its root volume (a foreign key).
            session.flush()
            vm.rootVolumeUuid = d["rootVolume"]["uuid"]

        await run_tx(ctx.node, allocate)

    async def rollback(self, ctx: FlowContext) -> None:
        uuids = [spec["uuid"] for spec, _ in _volume_specs(ctx.data)]

        def give_back(session: Session) -> None:
            for uuid in uuids:
                unplace_volume(session, uuid)
            session.execute(update(VmInstanceVO).where(VmInstanceVO.rootVolumeUuid.in_(uuids))
                            .values(rootVolumeUuid=None), execution_options={"synchronize_session": False})
            session.execute(delete(VolumeVO).where(VolumeVO.uuid.in_(uuids)),
                            execution_options={"synchronize_session": False})
            forget(ctx.node, session, uuids)

        await run_tx(ctx.node, give_back)


def _paths_of(session: Session, ps_uuid: str):
    # Two columns: loading the row would load its cluster refs too (selectin).
    return session.execute(select(PrimaryStorageVO.mountPath, PrimaryStorageVO.url)
                           .where(PrimaryStorageVO.uuid == ps_uuid)).one()


def install_path(ps: PrimaryStorageVO | Any, volume: VolumeVO) -> str:
    """Where a volume's file would be on its primary storage (ZStack's layout).

    ``ps``: the storage's row, or anything with its ``mountPath`` and ``url``."""
    base = (ps.mountPath or ps.url or "").rstrip("/")
    kind = "rootVolumes" if volume.type == ROOT else "dataVolumes"
    return f"{base}/{kind}/vol-{volume.uuid}/{volume.uuid}.qcow2"


class VmAllocateNicFlow(Flow):
    """Creates one nic per L3 network with a newly allocated address (all or
    none, in one transaction) and sets the default L3 network; rollback gives
    the addresses back and deletes the nics."""

    atomic = True

    async def run(self, ctx: FlowContext) -> None:
        d = ctx.data
        l3_uuids, nic_uuids = d.get("l3NetworkUuids") or [], d.get("nicUuids") or []
        static_ips = d.get("staticIps") or {}
        if not l3_uuids:
            return

        def allocate(session: Session) -> None:
            # First: the networks' IP ranges, locked by the allocation until
            # the commit, are then held for less time.
            ctx.mark_done(session)
            vm = find_vm(session, d["vmUuid"])
            for device_id, (l3_uuid, nic_uuid) in enumerate(zip(l3_uuids, nic_uuids)):
                add_nic(ctx.node, session, vm, l3_uuid, device_id, nic_uuid=nic_uuid,
                        static_ip=static_ips.get(l3_uuid), account_uuid=d.get("accountUuid"))
            vm.defaultL3NetworkUuid = d.get("defaultL3NetworkUuid") or l3_uuids[0]

        await run_tx(ctx.node, allocate)

    async def rollback(self, ctx: FlowContext) -> None:
        nic_uuids = ctx.data.get("nicUuids") or []

        def give_back(session: Session) -> None:
            for nic_uuid in nic_uuids:
                remove_nic(ctx.node, session, nic_uuid)

        if nic_uuids:
            await run_tx(ctx.node, give_back)


class VmCreateOnHypervisorFlow(Flow):
    """Creates (and boots) the VM on its host; rollback destroys it there."""

    async def run(self, ctx: FlowContext) -> None:
        backend, spec = await backend_of(ctx.node, ctx.data["vmUuid"])
        await backend.create_vm(ctx.node, spec)

    async def rollback(self, ctx: FlowContext) -> None:
        try:
            backend, spec = await backend_of(ctx.node, ctx.data["vmUuid"])
            await backend.destroy_vm(ctx.node, spec)
        except OperationError as exc:
            log.warning("could not destroy vm %s on its host after a failed create: %s", ctx.data["vmUuid"], exc)


class VmCreatedFlow(NoRollbackFlow):
    """The end of a create: Running, or (JustCreate, CreateStopped) stopped on
    the hypervisor and Stopped, its host's CPU and memory given back."""

    atomic = True  # the stop on the hypervisor needs no rollback

    async def run(self, ctx: FlowContext) -> None:
        d = ctx.data
        vm_uuid, host_uuid = d["vmUuid"], d["hostUuid"]
        if d.get("strategy", INSTANT_START) == INSTANT_START:
            def end(session: Session) -> bool:
                return set_state(session, vm_uuid, vm_state.CREATED, vm_state.RUNNING, lastHostUuid=host_uuid)
        else:
            backend, spec = await backend_of(ctx.node, vm_uuid)
            await backend.stop_vm(ctx.node, spec, "cold")

            def end(session: Session) -> bool:
                return _stop_created(session, vm_uuid, host_uuid, d["cpuNum"], d["memorySize"])

        def end_and_record(session: Session) -> bool:
            # The chain's last step: with no handlers, recording it deletes the record.
            done = end(session)
            if done:
                ctx.mark_done(session)
            return done

        ok = await run_tx(ctx.node, end_and_record)
        if not ok:
            raise OperationError.of(SysErrors.OPERATION_ERROR,
                                    f"vm instance[uuid:{vm_uuid}] left state Created while being created")


def _stop_created(session: Session, vm_uuid: str, host_uuid: str, cpu_num: int, memory_size: int) -> bool:
    vm = find_vm(session, vm_uuid)
    if vm.state != vm_state.CREATED:
        return False
    return return_host(session, vm_uuid, host_uuid, cpu_num, memory_size, state=vm_state.STOPPED,
                       lastHostUuid=host_uuid)

