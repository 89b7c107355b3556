"""Global configuration of KVM hosts and their tracking, with ZStack's names and defaults."""

from __future__ import annotations

from mn.globalconfig import GlobalConfig, number_range

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

#: Seconds an agent command may take before its operation fails (its flow rolls back).
AGENT_COMMAND_TIMEOUT = GlobalConfig(
    "kvm", "agent.command.timeout", int, 300, validators=[number_range(1, 86400)],
    description="The timeout in seconds of an asynchronous command to a KVM agent")

VM_SYNC_ON_PING = GlobalConfig(
    "kvm", "vmSyncOnHostPing", bool, False,
    description="Compare every VM state with the host's at each ping, not only on connect and reports")

#: Seconds a graceful stop (and the stop half of a reboot) waits for the guest
#: before pulling the plug; keep it below ``agent.command.timeout``.
GRACEFUL_STOP_TIMEOUT = GlobalConfig(
    "kvm", "vm.gracefulStopTimeout", int, 60, validators=[number_range(1, 3600)],
    description="Seconds a graceful stop or reboot waits for the guest before forcing it")
