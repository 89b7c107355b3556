"""Global configuration of host capacity and tracking, with ZStack's categories, names and defaults."""

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

#: Seconds between two pings of a host by the MN that owns it.
PING_INTERVAL = GlobalConfig(
    "host", "ping.interval", int, 60, validators=[number_range(1, 86400)],
    description="The interval in seconds the management node pings each host it owns")

#: Seconds a ping may take.
PING_TIMEOUT = GlobalConfig(
    "host", "ping.timeout", int, 5, validators=[number_range(1, 3600)],
    description="The timeout in seconds of one ping of a host")

#: Failed pings in a row (the retries ``ping.sleepPeriodAfterFailure`` apart)
#: before a host is marked Disconnected.
PING_MAX_FAILURE = GlobalConfig(
    "host", "ping.maxFailure", int, 3, validators=[number_range(1, 100)],
    description="How many pings in a row must fail before a host is Disconnected")

PING_SLEEP_AFTER_FAILURE = GlobalConfig(
    "host", "ping.sleepPeriodAfterFailure", int, 1, validators=[number_range(0, 3600)],
    description="Seconds between the retries of a failed ping")

PING_PARALLELISM = GlobalConfig(
    "host", "ping.parallelismDegree", int, 100, validators=[number_range(1, 10000)],
    description="How many hosts one management node pings at the same time")

AUTO_RECONNECT = GlobalConfig(
    "host", "connection.autoReconnectOnError", bool, True,
    description="Reconnect Disconnected hosts by themselves (redeploying the agent if needed)")
