"""Machine capacity from /proc."""

import os

from agents.kvm.hostinfo import machine_capacity

CPUINFO_X86 = """processor\t: 0
physical id\t: 0
cpu MHz\t\t: 2394.454
model name\t: Intel(R) Xeon(R)

processor\t: 1
physical id\t: 0
cpu MHz\t\t: 2600.001

processor\t: 2
physical id\t: 1
cpu MHz\t\t: 1200.000

processor\t: 3
physical id\t: 1
cpu MHz\t\t: 1200.000
"""

MEMINFO = """MemTotal:       16303412 kB
MemFree:         1000000 kB
MemAvailable:   12000000 kB
Buffers:          200000 kB
Cached:          3000000 kB
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_capacity_from_cpuinfo_and_meminfo(tmp_path):
    capacity = machine_capacity(write(tmp_path, "cpuinfo", CPUINFO_X86), write(tmp_path, "meminfo", MEMINFO),
                                cpu_max_freq=str(tmp_path / "none"))
    assert capacity == {"cpuNum": 4, "cpuSpeed": 2600, "usedCpu": 0, "cpuSockets": 2,
                        "totalMemory": 16303412 * 1024, "usedMemory": (16303412 - 12000000) * 1024}


def test_arm_without_mhz_or_sockets_and_old_kernel_without_memavailable(tmp_path):
    cpuinfo = write(tmp_path, "cpuinfo", "processor\t: 0\nBogoMIPS\t: 50.00\n\nprocessor\t: 1\nBogoMIPS\t: 50.00\n")
    meminfo = write(tmp_path, "meminfo", "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n")
    freq = write(tmp_path, "cpuinfo_max_freq", "2000000\n")
    capacity = machine_capacity(cpuinfo, meminfo, cpu_max_freq=freq)
    assert (capacity["cpuNum"], capacity["cpuSpeed"], capacity["cpuSockets"]) == (2, 2000, 1)
    assert capacity["totalMemory"] == 1000 * 1024
    assert capacity["usedMemory"] == (1000 - 400) * 1024


def test_this_machine():
    capacity = machine_capacity()
    assert capacity["cpuNum"] == os.cpu_count()
    assert capacity["cpuSockets"] >= 1
    page_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert abs(capacity["totalMemory"] - page_bytes) < page_bytes * 0.01
    assert 0 < capacity["usedMemory"] < capacity["totalMemory"]
