"""Host capacity: what HostCapacityVO says is used equals what the VMs on the host hold.

The rule mirrors :mod:`mn.host.capacity` and the VM code that calls it: a
VM holds its host's capacity exactly while its ``hostUuid`` is set
(``take_host`` and ``return_host`` change that column in the transaction
that reserves or releases), whatever its state; it holds ``cpuNum`` CPUs
and ``ceil(memorySize / ratio)`` bytes of memory, the ratio being the
``mevoco/overProvisioning.memory`` global config.

Two reservations are legitimately not (yet) on any VM row, both inside a
VM chain that is still running (a FlowChainVO row):

* the allocator commits a reservation before ``VmAllocateHostFlow`` (or
  ``VmAllocateHostForMigrateFlow``) records which host it took, so while a
  chain is at one of those steps some host may hold one VM more than its
  rows say;
* a migration holds the destination from its reservation until the VM
  row moves there.

So hosts named in a running VM chain's data are not compared, and other
hosts may hold up to the VMs of chains at an allocation step more.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Iterator

from sqlalchemy import select

from mn.check.base import CheckContext, Problem, check
from mn.db.models.flow_chain import FlowChainVO
from mn.db.models.host import HostCapacityVO, HostVO
from mn.db.models.vm import VmInstanceVO
from mn.flow.persistence import FlowState
from mn.host.capacity import memory_to_reserve
from mn.host.config import MEMORY_OVERPROVISIONING_RATIO

NAME = "host-capacity"

#: Steps during which a reservation may be committed on a host the chain's data does not name yet.
ALLOCATION_STEPS = frozenset({"VmAllocateHostFlow", "VmAllocateHostForMigrateFlow"})
#: Keys of a VM chain's data that name hosts it reserves on or releases.
HOST_KEYS = ("hostUuid", "destHostUuid", "sourceHostUuid")


@dataclasses.dataclass
class InFlight:
    """What running VM chains may hold beyond the VM rows."""

    hosts: set[str] = dataclasses.field(default_factory=set)
    pending_cpu: int = 0
    pending_memory: int = 0


@dataclasses.dataclass
class Held:
    cpu: int = 0
    memory: int = 0
    vms: int = 0


def in_flight(ctx: CheckContext, ratio: float) -> InFlight:
    """The hosts running VM chains name, and what their pending allocations may hold."""
    found = InFlight()
    rows = ctx.session.execute(select(FlowChainVO.currentStep, FlowChainVO.data)
                               .where(FlowChainVO.state.in_(FlowState.UNFINISHED)))
    for current_step, data_json in rows:
        try:
            data = json.loads(data_json or "{}")
        except ValueError:
            continue
        if not isinstance(data, dict) or "vmUuid" not in data:
            continue
        found.hosts.update(str(data[key]) for key in HOST_KEYS if data.get(key))
        step_class = (current_step or "").rsplit(".", 1)[-1]
        if step_class in ALLOCATION_STEPS:
            found.pending_cpu += int(data.get("cpuNum") or 0)
            found.pending_memory += memory_to_reserve(int(data.get("memorySize") or 0), ratio)
    return found


def held_by_vms(ctx: CheckContext, ratio: float) -> tuple[dict[str, Held], list[tuple[str, str]]]:
    """What the VMs hold per host, and the (vm, host) pairs whose host does not exist."""
    hosts = set(ctx.session.scalars(select(HostVO.uuid)))
    held: dict[str, Held] = defaultdict(Held)
    missing = []
    rows = ctx.session.execute(select(VmInstanceVO.uuid, VmInstanceVO.hostUuid, VmInstanceVO.cpuNum,
                                      VmInstanceVO.memorySize).where(VmInstanceVO.hostUuid.is_not(None)))
    for vm_uuid, host_uuid, cpu_num, memory_size in rows:
        if host_uuid not in hosts:
            missing.append((vm_uuid, host_uuid))
            continue
        h = held[host_uuid]
        h.cpu += cpu_num
        h.memory += memory_to_reserve(memory_size, ratio)
        h.vms += 1
    return held, missing


@check(NAME)
def host_capacity(ctx: CheckContext) -> Iterator[Problem]:
    """Each host's used CPU and memory equal what the VMs on it hold.

    used CPU = totalCpu - availableCpu must equal the sum of cpuNum of the
    VMs whose hostUuid is the host; used memory = totalMemory -
    availableMemory the sum of ceil(memorySize / mevoco/overProvisioning.memory)
    (with a ratio other than 1, each VM may be a byte off: resizes reserve
    the difference rounded on its own). availableCpu and availableMemory
    never exceed their totals. A VM's host must exist and have a capacity
    row. Hosts named by a running VM chain are skipped, and other hosts may
    hold the VMs of chains at an allocation step more (see the module).
    Below zero is not a problem: lowering a ratio, or a host reporting less
    memory, legitimately leaves a host overcommitted.
    """
    ratio = ctx.config(MEMORY_OVERPROVISIONING_RATIO)
    held, missing = held_by_vms(ctx, ratio)
    for vm_uuid, host_uuid in missing:
        yield Problem(NAME, "VmInstanceVO", vm_uuid,
                      f"vm {vm_uuid} is on host {host_uuid}, which does not exist")
    flight = in_flight(ctx, ratio)
    capacities = {row.uuid: row for row in ctx.session.scalars(select(HostCapacityVO))}
    for host_uuid in sorted(set(ctx.session.scalars(select(HostVO.uuid)))):
        h = held.get(host_uuid, Held())
        cap = capacities.get(host_uuid)
        if cap is None:
            # Hosts get their row when added; without one a host holds nothing, so only VMs on it matter.
            if h.vms:
                yield Problem(NAME, "HostVO", host_uuid,
                              f"host {host_uuid} has no HostCapacityVO row but its {h.vms} VM(s) hold "
                              f"{h.cpu} cpu and {h.memory} bytes of memory")
            continue
        yield from _bounds(host_uuid, cap)
        if host_uuid in flight.hosts:
            continue
        yield from _usage(host_uuid, cap, h, flight, ratio)


def _bounds(host_uuid: str, cap: HostCapacityVO) -> Iterator[Problem]:
    if cap.availableCpu > cap.totalCpu:
        yield Problem(NAME, "HostVO", host_uuid,
                      f"host {host_uuid}: availableCpu {cap.availableCpu} is above totalCpu {cap.totalCpu}")
    if cap.availableMemory > cap.totalMemory:
        yield Problem(NAME, "HostVO", host_uuid,
                      f"host {host_uuid}: availableMemory {cap.availableMemory} is above totalMemory "
                      f"{cap.totalMemory}")


def _usage(host_uuid: str, cap: HostCapacityVO, h: Held, flight: InFlight, ratio: float) -> Iterator[Problem]:
    used_cpu = cap.totalCpu - cap.availableCpu
    used_memory = cap.totalMemory - cap.availableMemory
    pending = ""
    if flight.pending_cpu or flight.pending_memory:
        pending = (f" (allowing {flight.pending_cpu} cpu and {flight.pending_memory} bytes more for "
                   f"allocations in flight)")
    if not 0 <= used_cpu - h.cpu <= flight.pending_cpu:
        yield Problem(NAME, "HostVO", host_uuid,
                      f"host {host_uuid}: used cpu {used_cpu} (totalCpu {cap.totalCpu} - availableCpu "
                      f"{cap.availableCpu}) but its {h.vms} VM(s) hold {h.cpu}{pending}")
    # Resizes reserve the difference, rounded up on its own: one byte per VM at most.
    slack = h.vms if ratio != 1 else 0
    if not -slack <= used_memory - h.memory <= flight.pending_memory + slack:
        yield Problem(NAME, "HostVO", host_uuid,
                      f"host {host_uuid}: used memory {used_memory} bytes (totalMemory {cap.totalMemory} - "
                      f"availableMemory {cap.availableMemory}) but its {h.vms} VM(s) hold {h.memory} bytes "
                      f"at memory overcommit ratio {ratio:g}{pending}")
