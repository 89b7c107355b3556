"""Steps shared by the VM chains: state changes, hosts, hypervisor calls.

Data keys read here:

* ``vmUuid``; ``cpuNum`` and ``memorySize`` (what the VM holds on a host);
* ``originState`` and ``event``: the state the operation started from and
  the VmInstanceStateEvent that moved it to its transitional state;
* ``doneEvent``: the event that ends the operation (``running``...);
* for host allocation: ``l3NetworkUuids``, ``zoneUuid``, ``clusterUuid``,
  ``requestedHostUuid``, ``avoidHostUuids``, ``allocatorStrategy``,
  ``primaryStorageUuid``, ``requiredDiskSize`` (all optional but the first);
* ``stopType`` (grace or cold) for stops.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from mn.db.models.host import HostVO
from mn.db.models.vm import VmInstanceVO, VmNicVO
from mn.errors import OperationError, SysErrors
from mn.flow import Flow, FlowContext, NoRollbackFlow
from mn.host.allocator import DEFAULT_STRATEGY, HostAllocationSpec, RecordRefused, allocate_host
from mn.vm import state as vm_state
from mn.vm.hypervisor import HypervisorBackend, VmSpec, hypervisor_for
from mn.vm.nics import give_nic_ip, release_nic_ip
from mn.vm.records import find_vm, return_host, run_tx, set_state, take_host
from mn.vm.spec import build_vm_spec
from mn.vm.tags import static_ips_in_session

log = logging.getLogger(__name__)


async def backend_of(node: Any, vm_uuid: str, host_uuid: str | None = None) -> tuple[HypervisorBackend, VmSpec]:
    """The VM's spec on ``host_uuid`` (default: its host) and that host's backend."""
    spec = await node.db.run(build_vm_spec, vm_uuid, host_uuid)
    return hypervisor_for(spec.hypervisorType), spec


def transitional_state(data: dict) -> str:
    return vm_state.next_state(data["originState"], data["event"])


# -- states ----------------------------------------------------------------------------


class VmBeginOperationFlow(Flow):
    """Moves the VM from ``originState`` to the transitional state of ``event``
    (Stopped -> Starting); rollback moves it back."""

    async def run(self, ctx: FlowContext) -> None:
        d = ctx.data
        transitional = transitional_state(d)
        # Already there: a resumed chain running this step again.
        if not await run_tx(ctx.node, set_state, d["vmUuid"], [d["originState"], transitional], transitional):
            now = await ctx.db.run(lambda s: find_vm(s, d["vmUuid"]).state)
            raise OperationError.of(SysErrors.OPERATION_ERROR,
                                    f"vm instance[uuid:{d['vmUuid']}] changed from {d['originState']} to "
                                    f"{now} meanwhile; {d['event']} refused")

    async def rollback(self, ctx: FlowContext) -> None:
        d = ctx.data
        await run_tx(ctx.node, set_state, d["vmUuid"], transitional_state(d), d["originState"])


class VmEndOperationFlow(NoRollbackFlow):
    """Moves the VM from its transitional state by ``doneEvent`` (Starting -> Running)
    and records the host it is on as its last host."""

    async def run(self, ctx: FlowContext) -> None:
        d = ctx.data
        transitional = transitional_state(d)
        final = vm_state.next_state(transitional, d["doneEvent"])

        def end(session: Session) -> bool:
            result = session.execute(
                update(VmInstanceVO)
                .where(VmInstanceVO.uuid == d["vmUuid"], VmInstanceVO.state == transitional)
                .values(state=final, lastHostUuid=func.coalesce(VmInstanceVO.hostUuid,
                                                                VmInstanceVO.lastHostUuid)),
                execution_options={"synchronize_session": False})
            return result.rowcount == 1

        if not await run_tx(ctx.node, end):
            raise OperationError.of(SysErrors.OPERATION_ERROR,
                                    f"vm instance[uuid:{d['vmUuid']}] left {transitional} during the operation")


# -- hosts -------------------------------------------------------------------------------


def allocation_spec(data: dict) -> HostAllocationSpec:
    return HostAllocationSpec(
        cpu_num=data["cpuNum"], memory_size=data["memorySize"],
        l3_network_uuids=list(data.get("l3NetworkUuids") or []),
        zone_uuid=data.get("zoneUuid"), cluster_uuid=data.get("clusterUuid"),
        host_uuid=data.get("requestedHostUuid"), avoid_host_uuids=tuple(data.get("avoidHostUuids") or ()),
        strategy=data.get("allocatorStrategy") or DEFAULT_STRATEGY,
        hypervisor_type=data.get("hypervisorType"), primary_storage_uuid=data.get("primaryStorageUuid"),
        required_disk_size=data.get("requiredDiskSize") or 0)


class VmAllocateHostFlow(Flow):
    """Picks a host with room (the allocator reserves the VM's CPU and memory
    there) and records it as the VM's ``hostUuid``.

    Used where the VM holds no host before the chain (create, start), so a
    ``hostUuid`` found on the row at rollback is this step's and is given
    back. The reservation and the record are one transaction: an MN dying
    at any moment leaves either both or neither, and the rollback of the
    MN taking over finds what to give back on the VM's row. The step's own
    record is written in that transaction too (``atomic``).
    """

    atomic = True

    async def run(self, ctx: FlowContext) -> None:
        d = ctx.data

        def record(session: Session, host_uuid: str) -> bool:
            if not take_host(session, d["vmUuid"], host_uuid):
                return False
            d["hostUuid"] = host_uuid  # before mark_done, so the record has it
            ctx.mark_done(session)
            return True

        try:
            host_uuid = await allocate_host(ctx.node, allocation_spec(d), record=record)
        except RecordRefused:
            raise OperationError.of(SysErrors.OPERATION_ERROR,
                                    f"vm instance[uuid:{d['vmUuid']}] was deleted while a host was "
                                    "allocated to it") from None
        d["hostUuid"] = host_uuid

    async def rollback(self, ctx: FlowContext) -> None:
        d = ctx.data

        def give_back(session: Session) -> None:
            host_uuid = session.scalar(select(VmInstanceVO.hostUuid).where(VmInstanceVO.uuid == d["vmUuid"]))
            if host_uuid is not None:
                return_host(session, d["vmUuid"], host_uuid, d["cpuNum"], d["memorySize"])

        await run_tx(ctx.node, give_back)
        d.pop("hostUuid", None)


class VmReturnHostFlow(NoRollbackFlow):
    """Ends an operation that leaves the host (stop, destroy): the VM moves by
    ``doneEvent`` and gives its host's CPU and memory back, in one transaction."""

    async def run(self, ctx: FlowContext) -> None:
        d = ctx.data
        final = vm_state.next_state(transitional_state(d), d["doneEvent"])

        def leave(session: Session) -> None:
            vm = find_vm(session, d["vmUuid"])
            host_uuid = vm.hostUuid
            if host_uuid is None or not return_host(session, vm.uuid, host_uuid, vm.cpuNum, vm.memorySize,
                                                    state=final, lastHostUuid=host_uuid):
                vm.state = final

        await run_tx(ctx.node, leave)


# -- addresses ----------------------------------------------------------------------------


class VmAllocateNicIpFlow(Flow):
    """Gives an address to each nic listed in ``nicsWithoutIp`` (a recovered VM's
    nics lost theirs when it was destroyed); rollback gives them back."""

    async def run(self, ctx: FlowContext) -> None:
        nic_uuids = ctx.data.get("nicsWithoutIp") or []
        if not nic_uuids:
            return
        vm_uuid = ctx.data["vmUuid"]

        def allocate(session: Session) -> None:
            static_ips = static_ips_in_session(session, vm_uuid)
            for nic in session.scalars(select(VmNicVO).where(VmNicVO.uuid.in_(nic_uuids))):
                if nic.usedIpUuid is None:
                    give_nic_ip(session, nic, static_ips.get(nic.l3NetworkUuid))

        await run_tx(ctx.node, allocate)

    async def rollback(self, ctx: FlowContext) -> None:
        nic_uuids = ctx.data.get("nicsWithoutIp") or []

        def give_back(session: Session) -> None:
            for nic_uuid in nic_uuids:
                release_nic_ip(session, nic_uuid)

        if nic_uuids:
            await run_tx(ctx.node, give_back)


# -- the hypervisor ---------------------------------------------------------------------------


class VmStartOnHypervisorFlow(Flow):
    """Starts the VM on its host; rollback stops it there (cold)."""

    async def run(self, ctx: FlowContext) -> None:
        backend, spec = await backend_of(ctx.node, ctx.data["vmUuid"])
        await backend.start_vm(ctx.node, spec)

    async def rollback(self, ctx: FlowContext) -> None:
        try:
            backend, spec = await backend_of(ctx.node, ctx.data["vmUuid"])
            await backend.stop_vm(ctx.node, spec, "cold")
        except OperationError as exc:
            log.warning("could not stop vm %s on its host after a failed start: %s", ctx.data["vmUuid"], exc)


class VmStopOnHypervisorFlow(NoRollbackFlow):
    """Stops the VM on its host (``stopType``); nothing to do if it is on none."""

    async def run(self, ctx: FlowContext) -> None:
        if await on_host(ctx.node, ctx.data["vmUuid"]):
            backend, spec = await backend_of(ctx.node, ctx.data["vmUuid"])
            await backend.stop_vm(ctx.node, spec, ctx.data.get("stopType") or "grace")


class VmRebootOnHypervisorFlow(NoRollbackFlow):
    async def run(self, ctx: FlowContext) -> None:
        backend, spec = await backend_of(ctx.node, ctx.data["vmUuid"])
        await backend.reboot_vm(ctx.node, spec)


class VmPauseOnHypervisorFlow(NoRollbackFlow):
    async def run(self, ctx: FlowContext) -> None:
        backend, spec = await backend_of(ctx.node, ctx.data["vmUuid"])
        await backend.pause_vm(ctx.node, spec)


class VmResumeOnHypervisorFlow(NoRollbackFlow):
    async def run(self, ctx: FlowContext) -> None:
        backend, spec = await backend_of(ctx.node, ctx.data["vmUuid"])
        await backend.resume_vm(ctx.node, spec)


class VmDestroyOnHypervisorFlow(NoRollbackFlow):
    """Destroys the VM on its host, if it is on one whose row still exists."""

    async def run(self, ctx: FlowContext) -> None:
        if await on_host(ctx.node, ctx.data["vmUuid"]):
            backend, spec = await backend_of(ctx.node, ctx.data["vmUuid"])
            await backend.destroy_vm(ctx.node, spec)


async def on_host(node: Any, vm_uuid: str) -> bool:
    """Whether the VM is on a host that still exists."""

    def read(session: Session) -> bool:
        host_uuid = session.scalar(select(VmInstanceVO.hostUuid).where(VmInstanceVO.uuid == vm_uuid))
        return host_uuid is not None and session.get(HostVO, host_uuid) is not None

    return await node.db.run(read)
