"""What /proc says of the MN's processes: their tree, CPU time and memory.

Shared by the benchmarks that measure a real MN process (vm_create,
host_tracking). Linux only.
"""

from __future__ import annotations

import os
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the gunicorn master and its MN worker)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                pass
    return found


def cpu_times(pids: list[int]) -> tuple[float, float]:
    """(utime, stime) of the processes, in seconds (their reaped children are not counted)."""
    user = system = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user, system = user + int(fields[11]), system + int(fields[12])  # utime, stime (fields 14, 15)
    return user / CLK_TCK, system / CLK_TCK


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes, in seconds."""
    return sum(cpu_times(pids))


def memory_mib(pid: int, key: str = "VmHWM") -> float | None:
    """``VmHWM`` (peak RSS) or ``VmRSS`` of a process, in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None
