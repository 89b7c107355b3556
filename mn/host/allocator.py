"""Choosing a host for a VM, and reserving its capacity (ZStack's HostAllocatorManager).

::

    spec = HostAllocationSpec(cpu_num=2, memory_size=2 << 30, l3_network_uuids=[l3],
                              required_disk_size=image_size)
    host_uuid = await allocate_host(node, spec)   # capacity is reserved and committed
    ...
    # on rollback:
    await node.db.run(lambda s: release_host_capacity(s, host_uuid, 2, 2 << 30))

Candidates are hosts that are Enabled and Connected, in Enabled clusters of
Enabled zones, within the requested zone/cluster/host and hypervisor type,
not avoided, whose cluster has the L2 network of every requested L3 network
attached (L2NetworkClusterRefVO) and, when a disk is needed, some attached
primary storage (PrimaryStorageClusterRefVO) that can hold it, and whose
free CPU and memory fit (overcommit ratios read now). All of that is one
SQL query. The strategy orders the candidates; the first that is still
usable and whose conditional UPDATE succeeds
(:func:`~mn.host.capacity.reserve_host_capacity`) wins, so a host filled
by a concurrent allocation on another MN is simply skipped.

The network and storage tables belong to other services; they are looked
up by name when an allocation runs, and a condition whose tables do not
exist cannot be met (such a spec fails, with the reason).
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, false, func, select
from sqlalchemy.orm import Session

from mn.db.models.base import Base
from mn.db.models.cluster import ClusterVO
from mn.db.models.host import HOST_CONNECTED, HOST_ENABLED, HostCapacityVO, HostVO
from mn.db.models.zone import ZoneVO
from mn.errors import OperationError, SysErrors
from mn.host.capacity import cpu_ratio, fits_condition, memory_ratio, memory_to_reserve, reserve_host_capacity

if TYPE_CHECKING:
    from mn.node import ManagementNode

#: ZStack's HostAllocatorConstant.DEFAULT_HOST_ALLOCATOR_STRATEGY_TYPE: a random fitting host.
DEFAULT_STRATEGY = "DefaultHostAllocatorStrategy"
#: The host with the most free memory (then CPU) first.
LEAST_USED_STRATEGY = "LeastUsedHostAllocatorStrategy"
#: ZStack's strategy for an explicit zone, cluster or host: the spec's scope does that here.
DESIGNATED_STRATEGY = "DesignatedHostAllocatorStrategy"
#: ZStack's LEAST_VM_PREFERRED: the host with the fewest VMs first.
LEAST_VM_PREFERRED_STRATEGY = "LeastVmPreferredHostAllocatorStrategy"

#: Tables of other services the allocator reads (by name, when it runs).
L3_NETWORK_TABLE = "L3NetworkVO"
L2_CLUSTER_REF_TABLE = "L2NetworkClusterRefVO"
PRIMARY_STORAGE_CLUSTER_REF_TABLE = "PrimaryStorageClusterRefVO"
VM_INSTANCE_TABLE = "VmInstanceVO"
#: Where the storage service answers "which primary storage of this cluster can hold this disk".
PRIMARY_STORAGE_CANDIDATES = "mn.storage.primary.capacity:candidate_primary_storages"
#: VM states that do not count as "on the host" for LeastVmPreferred.
VM_STATES_NOT_ON_HOST = ("Destroyed", "Destroying", "Expunging")


@dataclasses.dataclass
class HostAllocationSpec:
    """What a VM needs from a host. ``memory_size`` in bytes, before overcommit.

    ``host_uuid`` is a host the caller requires (ZStack's designated host);
    ``avoid_host_uuids`` are never chosen (a migration's source, hosts that
    failed already). ``required_disk_size`` (bytes) and
    ``primary_storage_uuid`` ask for a primary storage able to hold the root
    disk to be attached to the host's cluster.
    """

    cpu_num: int
    memory_size: int
    l3_network_uuids: Sequence[str] = ()
    zone_uuid: str | None = None
    cluster_uuid: str | None = None
    host_uuid: str | None = None
    avoid_host_uuids: Sequence[str] = ()
    strategy: str | None = DEFAULT_STRATEGY
    hypervisor_type: str | None = None
    primary_storage_uuid: str | None = None
    required_disk_size: int = 0

    @property
    def needs_primary_storage(self) -> bool:
        return self.required_disk_size > 0 or self.primary_storage_uuid is not None


def find_table(name: str) -> Table | None:
    """The table ``name`` of another service's models, if that service is installed."""
    return Base.metadata.tables.get(name)


def primary_storage_candidates() -> Callable[..., list[str]] | None:
    """The storage service's ``candidate_primary_storages(session, cluster_uuid,
    size, host_uuid=None)``, if that service is installed."""
    module_name, _, function = PRIMARY_STORAGE_CANDIDATES.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return getattr(module, function, None)


class RecordRefused(Exception):
    """Raised inside a reservation's transaction when its ``record`` refuses: the
    reservation is rolled back with it."""


async def allocate_host(node: "ManagementNode", spec: HostAllocationSpec,
                        record: Callable[[Session, str], bool] | None = None) -> str:
    """Choose a host for ``spec``, reserve its capacity, commit; return its uuid.

    ``record(session, host_uuid)``, if given, runs in the transaction that
    reserves, so that whoever holds the capacity is written with it (a crash
    cannot leave a reservation nobody knows of); when it returns False
    nothing is reserved and :class:`RecordRefused` is raised.

    Raises OperationError SYS.1007 for a bad spec and SYS.1006 ("no host
    has enough capacity ...", with what ruled the hosts out) when no host
    fits. Release with :func:`~mn.host.capacity.release_host_capacity`.

    The candidates are read in the transaction of the first reservation
    attempt; every other attempt is a transaction of its own. An UPDATE
    that finds a host full keeps that row locked until its transaction ends
    (InnoDB), so trying several hosts in one transaction would let two
    allocations wait for each other.
    """
    _check_spec(spec)
    # The ratios once, so the candidates and the error agree.
    cpu_r, memory_r = cpu_ratio(), memory_ratio()
    stages = _stages(spec, cpu_r, memory_r)
    storage_check = _storage_check(spec)
    candidates, first = await node.db.run(_candidates_and_first_try, spec, stages, storage_check, record)
    storage_refusals = changed = 0
    for index, (host_uuid, cluster_uuid) in enumerate(candidates):
        outcome, tries = (first, 1) if index == 0 else (None, 0)
        # A host that lost a race may still have room (another allocation
        # held its row at that moment): try it again before the next one.
        while outcome is None or (outcome is _CHANGED and tries < ATTEMPTS_PER_HOST):
            if tries:
                await asyncio.sleep(0.005 * tries)
            outcome = await node.db.run(_try_host, spec, host_uuid, cluster_uuid, storage_check, record)
            tries += 1
        if outcome is _RESERVED:
            return host_uuid
        if outcome is _NO_STORAGE:
            storage_refusals += 1
        else:
            changed += 1  # filled by other allocations, or disabled, meanwhile
    raise await node.db.run(_no_host, spec, stages, memory_r, storage_refusals, changed)


#: Tries of one candidate whose reservation did not go through (a race).
ATTEMPTS_PER_HOST = 3


_RESERVED, _NO_STORAGE, _CHANGED = object(), object(), object()


def _candidates(session: Session, spec: HostAllocationSpec, stages: list["Stage"]) -> list[tuple[str, str]]:
    """(host, cluster) of the hosts meeting every condition, best first."""
    conditions = [c for _, conds in stages for c in conds]
    rows = session.execute(
        select(HostVO.uuid, HostVO.clusterUuid, HostCapacityVO.availableMemory, HostCapacityVO.availableCpu)
        .select_from(HostVO).join(HostCapacityVO, HostCapacityVO.uuid == HostVO.uuid)
        .join(ClusterVO, ClusterVO.uuid == HostVO.clusterUuid).join(ZoneVO, ZoneVO.uuid == HostVO.zoneUuid)
        .where(*conditions)).all()
    return _order(session, spec, rows)


def _candidates_and_first_try(session: Session, spec: HostAllocationSpec, stages: list["Stage"],
                              storage_check: Callable[[Session, str, str], bool] | None,
                              record: Callable[[Session, str], bool] | None) -> tuple[list[tuple[str, str]], object]:
    """The candidates, and the outcome of trying the best one in the same
    transaction (most allocations need no other): one transaction fewer.
    Reading takes no lock, so this transaction still tries one host only."""
    candidates = _candidates(session, spec, stages)
    if not candidates:
        return candidates, None
    host_uuid, cluster_uuid = candidates[0]
    return candidates, _try_host(session, spec, host_uuid, cluster_uuid, storage_check, record)


def _try_host(session: Session, spec: HostAllocationSpec, host_uuid: str, cluster_uuid: str,
              storage_check: Callable[[Session, str, str], bool] | None,
              record: Callable[[Session, str], bool] | None = None) -> object:
    if storage_check is not None and not storage_check(session, cluster_uuid, host_uuid):
        return _NO_STORAGE
    # Only while the host is still usable: it may have been disabled or put
    # into maintenance since the candidates were read.
    if reserve_host_capacity(session, host_uuid, spec.cpu_num, spec.memory_size, usable_only=True):
        if record is not None and not record(session, host_uuid):
            raise RecordRefused(host_uuid)
        return _RESERVED
    return _CHANGED


# -- the conditions ------------------------------------------------------------------


Stage = tuple[str, list[Any]]


def _stages(spec: HostAllocationSpec, cpu_r: int, memory_r: float) -> list[Stage]:
    """Conditions in the order they rule hosts out, each with what it means (for errors)."""
    scope = []
    if spec.zone_uuid is not None:
        scope.append(HostVO.zoneUuid == spec.zone_uuid)
    if spec.cluster_uuid is not None:
        scope.append(HostVO.clusterUuid == spec.cluster_uuid)
    if spec.host_uuid is not None:
        scope.append(HostVO.uuid == spec.host_uuid)
    if spec.hypervisor_type is not None:
        scope.append(HostVO.hypervisorType == spec.hypervisor_type)
    if spec.avoid_host_uuids:
        scope.append(HostVO.uuid.not_in(list(spec.avoid_host_uuids)))
    usable = [HostVO.state == HOST_ENABLED, HostVO.status == HOST_CONNECTED,
              ClusterVO.state == HOST_ENABLED, ZoneVO.state == HOST_ENABLED]
    stages: list[Stage] = [
        (_describe_scope(spec), scope),
        ("Enabled and Connected, in an Enabled cluster of an Enabled zone", usable),
    ]
    if spec.l3_network_uuids:
        stages.append((f"in a cluster attached to the L2 networks of L3 networks "
                       f"{', '.join(spec.l3_network_uuids)}", [_networks_attached(spec.l3_network_uuids)]))
    if spec.needs_primary_storage:
        which = f" {spec.primary_storage_uuid}" if spec.primary_storage_uuid else ""
        stages.append((f"in a cluster with primary storage{which} attached",
                       [_primary_storage_attached(spec.primary_storage_uuid)]))
    stages.append((f"with {spec.cpu_num} CPUs and {spec.memory_size} bytes of memory free "
                   f"(CPU overcommit ratio {cpu_r}, memory overcommit ratio {memory_r})",
                   [fits_condition(spec.cpu_num, spec.memory_size, cpu_ratio_now=cpu_r,
                                   memory_ratio_now=memory_r)]))
    return stages


def _networks_attached(l3_network_uuids: Sequence[str]) -> Any:
    l3, ref = find_table(L3_NETWORK_TABLE), find_table(L2_CLUSTER_REF_TABLE)
    if l3 is None or ref is None:
        return false()  # no network service: no cluster has any network
    condition = None
    for l3_uuid in dict.fromkeys(l3_network_uuids):
        l2_of_l3 = select(l3.c.l2NetworkUuid).where(l3.c.uuid == l3_uuid).scalar_subquery()
        attached = HostVO.clusterUuid.in_(select(ref.c.clusterUuid).where(ref.c.l2NetworkUuid == l2_of_l3))
        condition = attached if condition is None else condition & attached
    return condition


def _primary_storage_attached(primary_storage_uuid: str | None) -> Any:
    ref = find_table(PRIMARY_STORAGE_CLUSTER_REF_TABLE)
    if ref is None:
        return false()  # no storage service: no cluster has primary storage
    clusters = select(ref.c.clusterUuid)
    if primary_storage_uuid is not None:
        clusters = clusters.where(ref.c.primaryStorageUuid == primary_storage_uuid)
    return HostVO.clusterUuid.in_(clusters)


def _storage_check(spec: HostAllocationSpec) -> Callable[[Session, str, str], bool] | None:
    """Per candidate: can an Enabled, Connected primary storage of its cluster
    hold the disk (on that host, for local storage)? None when no disk is needed."""
    if not spec.needs_primary_storage:
        return None
    candidates = primary_storage_candidates()
    if candidates is None:
        return None  # the attachment condition is all that can be checked

    def check(session: Session, cluster_uuid: str, host_uuid: str) -> bool:
        found = candidates(session, cluster_uuid, spec.required_disk_size, host_uuid=host_uuid)
        return spec.primary_storage_uuid in found if spec.primary_storage_uuid else bool(found)

    return check


# -- the strategies ------------------------------------------------------------------


def _random(session: Session, spec: HostAllocationSpec, rows: list[Any]) -> list[Any]:
    # Random, so concurrent allocations spread over the hosts instead of
    # queueing on the same row.
    rows = list(rows)
    random.shuffle(rows)
    return rows


def _least_used(session: Session, spec: HostAllocationSpec, rows: list[Any]) -> list[Any]:
    return sorted(rows, key=lambda r: (-r.availableMemory, -r.availableCpu, r.uuid))


def _least_vms(session: Session, spec: HostAllocationSpec, rows: list[Any]) -> list[Any]:
    vms = find_table(VM_INSTANCE_TABLE)
    counts: dict[str, int] = {}
    if vms is not None and rows:
        counts = dict(session.execute(
            select(vms.c.hostUuid, func.count()).where(vms.c.hostUuid.in_([r.uuid for r in rows]),
                                                       vms.c.state.not_in(VM_STATES_NOT_ON_HOST))
            .group_by(vms.c.hostUuid)).all())
    shuffled = _random(session, spec, rows)  # ties broken at random
    return sorted(shuffled, key=lambda r: counts.get(r.uuid, 0))


#: Strategy name -> how it orders the fitting hosts (best first).
STRATEGIES: dict[str, Callable[[Session, HostAllocationSpec, list[Any]], list[Any]]] = {
    DEFAULT_STRATEGY: _random,
    DESIGNATED_STRATEGY: _random,
    LEAST_USED_STRATEGY: _least_used,
    LEAST_VM_PREFERRED_STRATEGY: _least_vms,
}
#: The strategy names an instance offering may carry.
HOST_ALLOCATOR_STRATEGIES = tuple(STRATEGIES)


def _order(session: Session, spec: HostAllocationSpec, rows: list[Any]) -> list[tuple[str, str]]:
    ordered = STRATEGIES[spec.strategy or DEFAULT_STRATEGY](session, spec, list(rows))
    return [(row.uuid, row.clusterUuid) for row in ordered]


# -- errors --------------------------------------------------------------------------


def _check_spec(spec: HostAllocationSpec) -> None:
    problems = []
    if spec.cpu_num < 0 or spec.memory_size < 0 or spec.required_disk_size < 0:
        problems.append(f"cpuNum ({spec.cpu_num}), memorySize ({spec.memory_size}) and required disk "
                        f"size ({spec.required_disk_size}) must not be negative")
    if (spec.strategy or DEFAULT_STRATEGY) not in STRATEGIES:
        problems.append(f"unknown host allocator strategy {spec.strategy}; valid strategies are "
                        f"{', '.join(STRATEGIES)}")
    if isinstance(spec.l3_network_uuids, str) or isinstance(spec.avoid_host_uuids, str):
        problems.append("l3_network_uuids and avoid_host_uuids must be lists of uuids")
    if problems:
        raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR, "; ".join(problems))


def _describe_scope(spec: HostAllocationSpec) -> str:
    parts = [f"{what} {value}" for what, value in (
        ("in zone", spec.zone_uuid), ("in cluster", spec.cluster_uuid), ("being host", spec.host_uuid),
        ("of hypervisor type", spec.hypervisor_type)) if value is not None]
    if spec.avoid_host_uuids:
        parts.append(f"not {', '.join(spec.avoid_host_uuids)}")
    return " ".join(parts) if parts else "in total"


def _no_host(session: Session, spec: HostAllocationSpec, stages: list[Stage], memory_r: float,
             storage_refusals: int, changed: int) -> OperationError:
    # Only on failure: count the hosts each further condition leaves, so the
    # error says what ruled them out.
    counts, conditions = [], []
    base = (select(func.count()).select_from(HostVO)
            .join(HostCapacityVO, HostCapacityVO.uuid == HostVO.uuid)
            .join(ClusterVO, ClusterVO.uuid == HostVO.clusterUuid).join(ZoneVO, ZoneVO.uuid == HostVO.zoneUuid))
    for what, conds in stages:
        conditions.extend(conds)
        count = session.scalar(base.where(*conditions))
        counts.append(f"{count} {'is' if count == 1 else 'are'} {what}" if counts else f"{count} hosts {what}")
        if count == 0:
            break
    if storage_refusals:
        counts.append(f"{storage_refusals} had no Enabled and Connected primary storage with "
                      f"{spec.required_disk_size} bytes free")
    if changed:
        counts.append(f"{changed} were filled by concurrent allocations or became unusable meanwhile")
    memory = memory_to_reserve(spec.memory_size, memory_r)
    return OperationError.of(
        SysErrors.OPERATION_ERROR,
        f"no host has enough capacity for a VM of {spec.cpu_num} CPUs and {spec.memory_size} bytes of "
        f"memory ({memory} bytes after overcommit): {'; '.join(counts)}")
