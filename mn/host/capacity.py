"""Reserving and releasing the CPU and memory of a host, safe across MNs.

Every function takes an SQLAlchemy session and runs in the caller's
transaction, so a VM's host, storage and IPs can be reserved together.
Each change is one conditional UPDATE of the host's HostCapacityVO row:
the database checks and changes the row atomically, so concurrent
reservations on any number of MNs can never take more than the host has.

Accounting, as ZStack's (HostCapacityReserveManager, HostCpuOverProvisioningManager):

* CPU: ``totalCpu = cpuNum * ratio`` with the ``host/cpu.overProvisioning.ratio``
  global config; a VM takes its ``cpuNum`` from ``availableCpu``. A reservation
  fits when ``used + cpu <= cpuNum * ratio`` (``used = totalCpu - availableCpu``),
  with the ratio read when the reservation is made.
* Memory: a VM takes ``ceil(memorySize / ratio)`` bytes from ``availableMemory``
  with the ``mevoco/overProvisioning.memory`` ratio read at that moment
  (ZStack rounds; rounding up guarantees the sum of the VMs' memory never
  exceeds ``totalMemory * ratio``). A reservation fits when
  ``availableMemory`` covers it.

Release with the same ``cpu_num`` and ``memory_size`` as the reservation.
"""

from __future__ import annotations

import math
from fractions import Fraction

from sqlalchemy import case, exists, func, select, update
from sqlalchemy.orm import Session

from mn.db.models.host import HOST_CONNECTED, HOST_ENABLED, HostCapacityVO, HostVO
from mn.errors import OperationError, SysErrors
from mn.host.config import CPU_OVERPROVISIONING_RATIO, MEMORY_OVERPROVISIONING_RATIO

_CAP = HostCapacityVO


def cpu_ratio() -> int:
    """The CPU overcommit ratio now."""
    return CPU_OVERPROVISIONING_RATIO.value


def memory_ratio() -> float:
    """The memory overcommit ratio now."""
    return MEMORY_OVERPROVISIONING_RATIO.value


def memory_to_reserve(memory_size: int, ratio: float | None = None) -> int:
    """Bytes of ``availableMemory`` that a VM of ``memory_size`` bytes takes."""
    ratio = memory_ratio() if ratio is None else ratio
    # Exact arithmetic: a float division loses bytes above 2**53.
    return math.ceil(Fraction(memory_size) / Fraction(str(ratio)))


def capacity_row(host_uuid: str, cpu_num: int, memory_size: int, cpu_sockets: int = 0) -> HostCapacityVO:
    """The HostCapacityVO of a new host with nothing on it."""
    total_cpu = cpu_num * cpu_ratio()
    return HostCapacityVO(uuid=host_uuid, cpuNum=cpu_num, cpuSockets=cpu_sockets,
                          totalCpu=total_cpu, availableCpu=total_cpu,
                          totalMemory=memory_size, availableMemory=memory_size,
                          totalPhysicalMemory=memory_size, availablePhysicalMemory=memory_size)


def fits_condition(cpu_num: int, memory_size: int, *, cpu_ratio_now: int | None = None,
                   memory_ratio_now: float | None = None):
    """SQL condition on HostCapacityVO: a VM of this size fits the host now.

    The allocator filters candidates with it; :func:`reserve_host_capacity`
    applies the same condition in its UPDATE.
    """
    ratio = cpu_ratio() if cpu_ratio_now is None else cpu_ratio_now
    memory = memory_to_reserve(memory_size, memory_ratio_now)
    return ((_CAP.totalCpu - _CAP.availableCpu + cpu_num <= _CAP.cpuNum * ratio)
            & (_CAP.availableMemory >= memory))


def _fits_by_row(cpu_num: int, memory: int, cpu_ratio_now: int):
    """:func:`fits_condition` in a form no index can serve, for the reserving UPDATE.

    Given ``availableMemory >= :m`` MariaDB may find the row through that
    column's index instead of the primary key, and in READ COMMITTED such an
    UPDATE passes over a row whose index entry a concurrent reservation is
    changing: it matches nothing although the host has room (seen with 100
    concurrent creations on one host). By primary key alone it waits for the
    row and checks the committed values.
    """
    return ((_CAP.totalCpu - _CAP.availableCpu + cpu_num <= _CAP.cpuNum * cpu_ratio_now)
            & (_CAP.availableMemory - memory >= 0))


def reserve_host_capacity(session: Session, host_uuid: str, cpu_num: int, memory_size: int, *,
                          force: bool = False, usable_only: bool = False) -> bool:
    """Take ``cpu_num`` CPUs and ``memory_size`` bytes (before overcommit) from the host.

    Returns False, changing nothing, when they do not fit or the host is
    gone, or with ``usable_only`` when it is not Enabled and Connected at
    that moment; raises OperationError SYS.1007 for negative amounts.
    ``force`` takes them even when they do not fit (a VM found running on
    the host holds what it holds; the host is then overcommitted).
    """
    _check_amounts(cpu_num, memory_size)
    # Each ratio read once: the event loop may change it while this thread runs.
    cpu_r, memory_r = cpu_ratio(), memory_ratio()
    memory = memory_to_reserve(memory_size, memory_r)
    fits = [] if force else [_fits_by_row(cpu_num, memory, cpu_r)]
    if usable_only:
        fits.append(exists().where(HostVO.uuid == host_uuid, HostVO.state == HOST_ENABLED,
                                   HostVO.status == HOST_CONNECTED))
    result = session.execute(
        update(_CAP)
        .where(_CAP.uuid == host_uuid, *fits)
        .values(availableCpu=_CAP.availableCpu - cpu_num, availableMemory=_CAP.availableMemory - memory),
        execution_options={"synchronize_session": False})
    return result.rowcount == 1


def release_host_capacity(session: Session, host_uuid: str, cpu_num: int, memory_size: int) -> None:
    """Give back what :func:`reserve_host_capacity` took (same arguments).

    Nothing happens for a host that is gone. Available values never rise
    above the totals (which a ratio lowered in between could otherwise cause).
    """
    _check_amounts(cpu_num, memory_size)
    memory = memory_to_reserve(memory_size)
    cpu_after = _CAP.availableCpu + cpu_num
    memory_after = _CAP.availableMemory + memory
    session.execute(
        update(_CAP).where(_CAP.uuid == host_uuid)
        .values(availableCpu=case((cpu_after > _CAP.totalCpu, _CAP.totalCpu), else_=cpu_after),
                availableMemory=case((memory_after > _CAP.totalMemory, _CAP.totalMemory), else_=memory_after)),
        execution_options={"synchronize_session": False})


def recalculate_total_cpu(session: Session, ratio: int | None = None) -> int:
    """Set every host's ``totalCpu`` to ``cpuNum * ratio``, keeping what is used.

    Run when the CPU ratio changes (ZStack's HostCpuOverProvisioningManager);
    idempotent, so every MN may run it. Returns the number of hosts changed.
    """
    ratio = cpu_ratio() if ratio is None else ratio
    new_total = _CAP.cpuNum * ratio
    # availableCpu first: MySQL evaluates SET left to right with updated
    # values, SQLite with old ones; in this order both read the old totalCpu.
    stmt = (update(_CAP).where(_CAP.totalCpu != new_total)
            .ordered_values((_CAP.availableCpu, _CAP.availableCpu + new_total - _CAP.totalCpu),
                            (_CAP.totalCpu, new_total)))
    return session.execute(stmt, execution_options={"synchronize_session": False}).rowcount


def _check_amounts(cpu_num: int, memory_size: int) -> None:
    if cpu_num < 0 or memory_size < 0:
        raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                f"cannot reserve or release a negative capacity: cpuNum={cpu_num}, "
                                f"memorySize={memory_size}")


def report_host_capacity(session: Session, host_uuid: str, *, cpu_num: int, cpu_sockets: int,
                         total_memory: int, available_physical_memory: int) -> bool:
    """Record what a host's agent measured, keeping what VMs use of it.

    ``totalCpu`` becomes ``cpu_num * ratio`` and ``totalMemory`` the host's
    memory; the available figures move by the same amount as the totals, so
    the VMs on the host hold exactly what they held before. Returns False
    when the host has no capacity row.
    """
    if cpu_num < 0 or total_memory < 0:
        raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                f"a host cannot have {cpu_num} CPUs and {total_memory} bytes of memory")
    new_total_cpu = cpu_num * cpu_ratio()
    # availableCpu and availableMemory first: MySQL evaluates SET left to
    # right with updated values, SQLite with old ones (see recalculate_total_cpu).
    stmt = (update(_CAP).where(_CAP.uuid == host_uuid)
            .ordered_values((_CAP.availableCpu, _CAP.availableCpu + new_total_cpu - _CAP.totalCpu),
                            (_CAP.availableMemory, _CAP.availableMemory + total_memory - _CAP.totalMemory),
                            (_CAP.totalCpu, new_total_cpu),
                            (_CAP.totalMemory, total_memory),
                            (_CAP.cpuNum, cpu_num),
                            (_CAP.cpuSockets, cpu_sockets),
                            (_CAP.totalPhysicalMemory, total_memory),
                            (_CAP.availablePhysicalMemory, available_physical_memory)))
    return session.execute(stmt, execution_options={"synchronize_session": False}).rowcount == 1


def recalculate_available_memory(session: Session, ratio: float | None = None) -> int:
    """Set every host's ``availableMemory`` to ``totalMemory`` less what its VMs
    take at ``ratio`` (default: the ratio now). Run when the memory ratio
    changes: reservations made at the old ratio would otherwise be given back
    at the new one. One UPDATE, so a reservation committed meanwhile is
    counted (its VM row holds the host in the same transaction). Idempotent;
    returns the number of hosts changed.
    """
    from mn.db.models.vm import VmInstanceVO

    ratio = memory_ratio() if ratio is None else ratio
    held = (select(func.coalesce(func.sum(func.ceil(VmInstanceVO.memorySize / ratio)), 0))
            .where(VmInstanceVO.hostUuid == _CAP.uuid).scalar_subquery())
    new_available = _CAP.totalMemory - held
    stmt = update(_CAP).where(_CAP.availableMemory != new_available).values(availableMemory=new_available)
    return session.execute(stmt, execution_options={"synchronize_session": False}).rowcount
