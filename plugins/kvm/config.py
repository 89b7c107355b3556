"""Global configuration of KVM hosts, with ZStack's names and defaults (host tracking's
are in :mod:`mn.host.config`)."""

from __future__ import annotations

from mn.globalconfig import GlobalConfig, number_range

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
