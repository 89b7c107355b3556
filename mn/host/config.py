"""Global configuration of host capacity, with ZStack's categories, names and defaults."""

from __future__ import annotations

from mn.globalconfig import GlobalConfig, number_range

#: Virtual CPUs a host offers per CPU it has: ``HostCapacityVO.totalCpu`` is
#: ``cpuNum`` times this (ZStack's HostGlobalConfig.HOST_CPU_OVER_PROVISIONING_RATIO).
CPU_OVERPROVISIONING_RATIO = GlobalConfig(
    "host", "cpu.overProvisioning.ratio", int, 10,
    description="The over provisioning ratio for CPU number",
    validators=[number_range(1, 1000)])

#: Memory a host offers per byte it has: placing a VM takes its memory
#: divided by this from ``availableMemory`` (ZStack's mevoco
#: ``overProvisioning.memory``, read by HostCapacityOverProvisioningManager).
MEMORY_OVERPROVISIONING_RATIO = GlobalConfig(
    "mevoco", "overProvisioning.memory", float, 1.0,
    description="The over provisioning ratio for memory",
    validators=[number_range(1, 1000)])
