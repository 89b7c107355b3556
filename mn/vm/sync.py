"""Making the database agree with what hosts say their VMs are doing.

A host reports VM states when it connects (a full list, :func:`sync_host_vms`)
and when a VM changes by itself (a stop inside the guest, ``virsh destroy``
behind our back: one :class:`VmStateChangedOnHostMsg`). A host that stops
answering leaves its VMs Unknown (:class:`VmHostStatusExtension`) until it
reports again. This is ZStack's VmTracer and VmInstanceBase's handling of
VmStateChangedOnHostMsg; it knows no hypervisor: backends translate their
states into VmInstanceState names first.

Each change runs in the VM's work queue on the VM's owner, so it never
interleaves with an operation on the VM. A VM in a transitional state is
left alone: the operation that moved it there (or its takeover) decides
where it ends.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mn.bus import Message, Reply
from mn.db.models.host import HOST_DISCONNECTED
from mn.db.models.vm import VmInstanceVO
from mn.host.capacity import reserve_host_capacity
from mn.tags import PatternedSystemTag
from mn.tags import validators as token
from mn.tags.store import tags_of_pattern
from mn.vm import state as vm_state
from mn.vm.messages import SERVICE_ID
from mn.vm.records import return_host, take_host
from mn.vm.tags import VM_RESOURCE_TYPE

if TYPE_CHECKING:
    from mn.host.inventory import HostInventory

log = logging.getLogger(__name__)

#: ZStack's VmHaLevel: NeverStop VMs are started again whenever they are found stopped.
NEVER_STOP = "NeverStop"
ON_HOST_FAILURE = "OnHostFailure"

#: A VM's HA level (ZStack's ``ha::{level}`` system tag).
HA_LEVEL = PatternedSystemTag("ha::{haLevel}", VM_RESOURCE_TYPE,
                              validators={"haLevel": token.one_of(NEVER_STOP, ON_HOST_FAILURE)},
                              description="the VM's high-availability level")

#: States a host can report, as VmInstanceState names.
REPORTABLE = frozenset({vm_state.RUNNING, vm_state.STOPPED, vm_state.PAUSED, vm_state.CRASHED,
                        vm_state.NO_STATE, vm_state.UNKNOWN})

#: States in which a VM is expected to be on its host, so a host saying
#: otherwise is news.
_LIVE = frozenset({vm_state.RUNNING, vm_state.PAUSED, vm_state.UNKNOWN, vm_state.CRASHED, vm_state.NO_STATE})


class VmStateChangedOnHostReply(Reply):
    TYPE = "vm.VmStateChangedOnHostReply"
    #: The state the VM has now (after a NeverStop restart, if any).
    state: str | None = None


class VmStateChangedOnHostMsg(Message):
    """A host says what one VM is doing (ZStack's VmStateChangedOnHostMsg)."""

    TYPE = "vm.VmStateChangedOnHostMsg"
    SERVICE = SERVICE_ID
    ROUTE_BY = "vmInstanceUuid"

    vmInstanceUuid: str
    hostUuid: str
    #: A VmInstanceState name: Running, Stopped, Paused, Crashed, NoState or Unknown.
    stateOnHost: str


def ha_level(session: Session, vm_uuid: str) -> str | None:
    tags = tags_of_pattern(session, HA_LEVEL, vm_uuid)
    return HA_LEVEL.tokens(tags[0].tag)["haLevel"] if tags else None


def reconcile(session: Session, vm_uuid: str, host_uuid: str, state_on_host: str) -> tuple[str | None, bool]:
    """Apply what ``host_uuid`` says of the VM. Returns the VM's state now
    (None if it is gone) and whether it must be started again (NeverStop)."""
    vm = session.get(VmInstanceVO, vm_uuid)
    if vm is None:
        return None, False
    current = vm.state
    if current in vm_state.INTERMEDIATE_STATES or current not in _LIVE | {vm_state.STOPPED}:
        return current, False
    here = vm.hostUuid == host_uuid
    if state_on_host == vm_state.STOPPED:
        if here and current in _LIVE:
            return_host(session, vm_uuid, host_uuid, vm.cpuNum, vm.memorySize, state=vm_state.STOPPED,
                        lastHostUuid=host_uuid)
            log.info("vm %s was %s but host %s has it stopped: now Stopped", vm_uuid, current, host_uuid)
            return vm_state.STOPPED, ha_level(session, vm_uuid) == NEVER_STOP
        return current, False
    if state_on_host == vm_state.UNKNOWN:
        if here and current in _LIVE and current != vm_state.UNKNOWN:
            vm.state = vm_state.UNKNOWN
            log.info("vm %s on host %s: %s -> Unknown (the host does not answer)", vm_uuid, host_uuid, current)
            return vm_state.UNKNOWN, False
        return current, False
    # Running, Paused, Crashed or NoState on the host.
    if here:
        if current != state_on_host:
            vm.state = state_on_host
            log.info("vm %s on host %s: %s -> %s (as the host reports)", vm_uuid, host_uuid, current, state_on_host)
        return state_on_host, False
    if vm.hostUuid is None and current == vm_state.STOPPED:
        # Started behind our back (or a stop we recorded never happened):
        # it holds the host's capacity whether or not it fits.
        if not reserve_host_capacity(session, host_uuid, vm.cpuNum, vm.memorySize, force=True):
            log.warning("vm %s runs on host %s, which is not on record", vm_uuid, host_uuid)
            return current, False
        take_host(session, vm_uuid, host_uuid)
        vm.state = state_on_host
        log.info("vm %s was Stopped but runs on host %s: now %s", vm_uuid, host_uuid, state_on_host)
        return state_on_host, False
    log.warning("host %s reports vm %s %s, but the vm is %s on host %s: ignored", host_uuid, vm_uuid,
                state_on_host, current, vm.hostUuid)
    return current, False


def changes_for_host(session: Session, host_uuid: str, states: dict[str, str]) -> list[tuple[str, str]]:
    """``(vm uuid, state on host)`` for every VM whose record disagrees with a
    host's full report ``states`` (VmInstanceState names by VM uuid).

    A VM recorded on the host but missing from the report is Stopped there.
    """
    changes: list[tuple[str, str]] = []
    recorded = dict(session.execute(select(VmInstanceVO.uuid, VmInstanceVO.state)
                                    .where(VmInstanceVO.hostUuid == host_uuid)).all())
    for vm_uuid, current in recorded.items():
        reported = states.get(vm_uuid, vm_state.STOPPED)
        if reported != current and current not in vm_state.INTERMEDIATE_STATES:
            changes.append((vm_uuid, reported))
    strays = [uuid for uuid in states if uuid not in recorded and states[uuid] != vm_state.STOPPED]
    if strays:
        known = set(session.scalars(select(VmInstanceVO.uuid).where(VmInstanceVO.uuid.in_(strays))))
        changes.extend((uuid, states[uuid]) for uuid in strays if uuid in known)
    return changes


async def sync_host_vms(node: Any, host_uuid: str, states: dict[str, str]) -> int:
    """Bring every VM of a host's full report in line (on each VM's owner); the
    number of VMs that needed it."""
    changes = await node.db.run(changes_for_host, host_uuid, states)
    for vm_uuid, state_on_host in changes:
        try:
            await node.bus.call(VmStateChangedOnHostMsg(vmInstanceUuid=vm_uuid, hostUuid=host_uuid,
                                                        stateOnHost=state_on_host))
        except Exception as exc:
            log.warning("could not sync vm %s with host %s: %s", vm_uuid, host_uuid, exc)
    return len(changes)


class VmHostStatusExtension:
    """Host extension: the VMs of a host that stopped answering become Unknown."""

    def __init__(self, node: Any):
        self.node = node

    async def after_status_changed(self, host: "HostInventory", old_status: str) -> None:
        if host.status != HOST_DISCONNECTED:
            return
        vm_uuids = await self.node.db.run(lambda s: list(s.scalars(
            select(VmInstanceVO.uuid).where(VmInstanceVO.hostUuid == host.uuid,
                                            VmInstanceVO.state.in_(_LIVE - {vm_state.UNKNOWN})))))
        for vm_uuid in vm_uuids:
            # Sent, not awaited: the VM's queue may be busy with an operation
            # that itself waits for this disconnected host.
            await self.node.bus.send(VmStateChangedOnHostMsg(vmInstanceUuid=vm_uuid, hostUuid=host.uuid,
                                                             stateOnHost=vm_state.UNKNOWN))
