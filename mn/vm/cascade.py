"""VMs and nics in cascade deletions, as ZStack's VmCascadeExtension decides:

* a zone deleted: its VMs are expunged (everything they hold given back);
* a primary storage deleted: the VMs whose root volume is on it are expunged;
* a host deleted (alone or with its cluster): its VMs are stopped, not
  deleted, and stay in the zone without a host;
* an L3 network (or one of its IP ranges) deleted: the nics on it are
  detached from their VMs (their addresses go with the range or network).

Each VM is handled by its owner MN in the VM's work queue (bus messages),
so a cascade never interleaves with an operation on the VM. The ``HostVO``
edge of VmInstanceVO finds nothing by itself (a zone's VMs are found
through the zone): it orders VMs before hosts, so a VM gives back its
host's capacity before the host goes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mn.cascade import CascadeContext, CascadeExtension
from mn.db.models.network import UsedIpVO
from mn.db.models.vm import USER_VM_TYPE, VmInstanceVO, VmNicVO
from mn.db.models.volume import ROOT, VolumeVO
from mn.errors import OperationError, SysErrors, error
from mn.vm import state as vm_state
from mn.vm.messages import DetachNicFromVmMsg, ExpungeVmMsg, StopVmInstanceMsg, call_vm_owner

log = logging.getLogger(__name__)

ZONE, HOST, PRIMARY_STORAGE = "ZoneVO", "HostVO", "PrimaryStorageVO"
L3_NETWORK, IP_RANGE = "L3NetworkVO", "IpRangeVO"

#: VMs handled at once by one cascade step (each a bus call to its owner).
PARALLEL = 16


async def each_bounded(ctx: CascadeContext, items: list[Any], call: Callable[[Any], Awaitable[Any]],
                       what: str) -> None:
    """``call`` every item, ``PARALLEL`` at a time. Permissive: the first failure
    fails the deletion (it can be retried); Enforcing: failures are logged."""
    failures: list[str] = []
    for start in range(0, len(items), PARALLEL):
        batch = items[start:start + PARALLEL]
        results = await asyncio.gather(*(call(item) for item in batch), return_exceptions=True)
        for item, result in zip(batch, results):
            if isinstance(result, BaseException):
                reason = result.error.details if isinstance(result, OperationError) else repr(result)
                failures.append(f"{item}: {reason}")
    if not failures:
        return
    if ctx.forced:
        log.warning("cascade %s: %d failure(s) ignored (Enforcing): %s", what, len(failures), "; ".join(failures))
        return
    raise OperationError(error(SysErrors.DELETE_RESOURCE_ERROR,
                               f"could not {what} {len(failures)} of {len(items)}: {'; '.join(failures)}"))


class VmCascade(CascadeExtension):
    """VmInstanceVO under its zone, its primary storage (root volume) and, for
    ordering, its host. Deleting a VM expunges it."""

    resource_type = VmInstanceVO.__tablename__
    parents = (ZONE, HOST, PRIMARY_STORAGE)

    async def children(self, ctx: CascadeContext, parent_type: str, parent_uuids: list[str]) -> list[str]:
        def find(session: Session) -> list[str]:
            vm = VmInstanceVO
            if parent_type == ZONE:
                stmt = select(vm.uuid).where(vm.zoneUuid.in_(parent_uuids))
            elif parent_type == PRIMARY_STORAGE:
                stmt = (select(vm.uuid).join(VolumeVO, VolumeVO.vmInstanceUuid == vm.uuid)
                        .where(VolumeVO.type == ROOT, VolumeVO.primaryStorageUuid.in_(parent_uuids)))
            else:
                return []  # a host's VMs are stopped (HostVmStopCascade), not deleted
            return list(session.scalars(stmt.where(vm.type == USER_VM_TYPE).distinct().order_by(vm.uuid)))

        return await ctx.node.db.run(find)

    async def delete(self, ctx: CascadeContext, uuids: list[str]) -> None:
        await each_bounded(ctx, uuids, lambda uuid: call_vm_owner(ctx.node, ExpungeVmMsg(vmInstanceUuid=uuid)),
                           "expunge vms")


class VmNicCascade(CascadeExtension):
    """VmNicVO under its L3 network and the IP range its address is in: deleting
    a nic detaches it from its VM."""

    resource_type = VmNicVO.__tablename__
    parents = (L3_NETWORK, IP_RANGE)

    async def children(self, ctx: CascadeContext, parent_type: str, parent_uuids: list[str]) -> list[str]:
        def find(session: Session) -> list[str]:
            nic = VmNicVO
            if parent_type == L3_NETWORK:
                stmt = select(nic.uuid).where(nic.l3NetworkUuid.in_(parent_uuids))
            else:
                stmt = (select(nic.uuid).join(UsedIpVO, UsedIpVO.uuid == nic.usedIpUuid)
                        .where(UsedIpVO.ipRangeUuid.in_(parent_uuids)))
            return list(session.scalars(stmt.order_by(nic.uuid)))

        return await ctx.node.db.run(find)

    async def delete(self, ctx: CascadeContext, uuids: list[str]) -> None:
        def owners(session: Session) -> list[tuple[str, str]]:
            return [(row.uuid, row.vmInstanceUuid) for row in session.execute(
                select(VmNicVO.uuid, VmNicVO.vmInstanceUuid).where(VmNicVO.uuid.in_(uuids)))]

        nics = await ctx.node.db.run(owners)
        await each_bounded(ctx, nics, lambda nic: call_vm_owner(
            ctx.node, DetachNicFromVmMsg(vmInstanceUuid=nic[1], vmNicUuid=nic[0])), "detach nics")


class HostVmStopCascade(CascadeExtension):
    """ZStack's OP_STOP: the VMs of a host deleted with its cluster, or alone, are
    stopped and left without a host.

    Registered as a type of its own under HostVO whose "resources" are the
    deleted hosts themselves (so the cascade deletes no VM): deleting them
    stops their VMs. A zone's deletion expunges its VMs instead.
    """

    resource_type = "VmInstanceVO.onHostDeletion"
    parents = (HOST,)

    async def children(self, ctx: CascadeContext, parent_type: str, parent_uuids: list[str]) -> list[str]:
        if ctx.root_type == ZONE:
            return []

        def hosts_with_vms(session: Session) -> list[str]:
            return list(session.scalars(select(VmInstanceVO.hostUuid).distinct()
                                        .where(VmInstanceVO.hostUuid.in_(parent_uuids))
                                        .order_by(VmInstanceVO.hostUuid)))

        return await ctx.node.db.run(hosts_with_vms)

    async def delete(self, ctx: CascadeContext, uuids: list[str]) -> None:
        def on_hosts(session: Session) -> list[str]:
            return list(session.scalars(select(VmInstanceVO.uuid).where(VmInstanceVO.hostUuid.in_(uuids))
                                        .order_by(VmInstanceVO.uuid)))

        vms = await ctx.node.db.run(on_hosts)
        await each_bounded(ctx, vms, lambda uuid: call_vm_owner(
            ctx.node, StopVmInstanceMsg(vmInstanceUuid=uuid, type="cold")), "stop vms")

        def let_go(session: Session) -> int:
            # VMs a stop could not move (a state no stop is allowed from) leave
            # the host with it: the host and its capacity are going away.
            return session.execute(update(VmInstanceVO).where(VmInstanceVO.hostUuid.in_(uuids))
                                   .values(hostUuid=None, state=vm_state.STOPPED),
                                   execution_options={"synchronize_session": False}).rowcount

        left = await ctx.node.db.run(let_go)
        if left:
            log.warning("cascade: %d vm(s) left deleted host(s) %s as Stopped without a stop", left, uuids)


def cascade_extensions() -> list[CascadeExtension]:
    """In registration order: within one level VMs go before their nics."""
    return [VmCascade(), VmNicCascade(), HostVmStopCascade()]
