"""The machine's CPU and memory as ``/host/capacity`` reports them."""

from __future__ import annotations

import os

CPUINFO = "/proc/cpuinfo"
MEMINFO = "/proc/meminfo"
#: Where machines without "cpu MHz" in /proc/cpuinfo (ARM) publish a speed, in kHz.
CPU_MAX_FREQ = "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"


def machine_capacity(cpuinfo: str = CPUINFO, meminfo: str = MEMINFO,
                     cpu_max_freq: str = CPU_MAX_FREQ) -> dict[str, int]:
    """``cpuNum``, ``cpuSpeed`` (MHz), ``usedCpu``, ``totalMemory``,
    ``usedMemory`` (bytes) and ``cpuSockets`` of this machine."""
    cpu = cpu_facts(cpuinfo, cpu_max_freq)
    total, used = memory_facts(meminfo)
    return {"cpuNum": cpu["cpuNum"], "cpuSpeed": cpu["cpuSpeed"], "usedCpu": 0,
            "totalMemory": total, "usedMemory": used, "cpuSockets": cpu["cpuSockets"]}


def cpu_facts(cpuinfo: str = CPUINFO, cpu_max_freq: str = CPU_MAX_FREQ) -> dict[str, int]:
    """``cpuNum`` (logical CPUs), ``cpuSpeed`` (MHz, the fastest CPU's) and ``cpuSockets``."""
    processors = 0
    mhz = 0.0
    sockets: set[str] = set()
    with open(cpuinfo) as f:
        for line in f:
            key, sep, value = line.partition(":")
            if not sep:
                continue
            key, value = key.strip(), value.strip()
            if key == "processor":
                processors += 1
            elif key == "cpu MHz":
                mhz = max(mhz, _float(value))
            elif key == "physical id":
                sockets.add(value)
    if not mhz:
        mhz = _read_number(cpu_max_freq) / 1000
    return {"cpuNum": processors or os.cpu_count() or 1, "cpuSpeed": int(round(mhz)),
            "cpuSockets": len(sockets) or 1}


def memory_facts(meminfo: str = MEMINFO) -> tuple[int, int]:
    """``(total, used)`` bytes, used being what is not available (MemTotal - MemAvailable)."""
    fields: dict[str, int] = {}
    with open(meminfo) as f:
        for line in f:
            key, sep, value = line.partition(":")
            if sep:
                number = value.split()
                if number:
                    unit = 1024 if value.strip().endswith("kB") else 1
                    fields[key.strip()] = int(number[0]) * unit
    total = fields.get("MemTotal", 0)
    # Kernels before 3.14 lack MemAvailable: count free plus page cache instead.
    available = fields.get("MemAvailable",
                           fields.get("MemFree", 0) + fields.get("Buffers", 0) + fields.get("Cached", 0))
    return total, max(total - available, 0)


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def _read_number(path: str) -> float:
    try:
        with open(path) as f:
            return _float(f.read().strip())
    except OSError:
        return 0.0
