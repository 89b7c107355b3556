"""What the agent's command handlers need from a hypervisor driver.

A driver owns the VMs, volumes and bridges of one host. Handlers translate
ZStack's commands (see ``agents/kvm/PROTOCOL.md``) into calls on a driver and
its answers into responses; drivers never see HTTP. Methods are blocking and
called from the agent's worker threads, possibly concurrently for different
VMs; a driver serialises what must be serialised. A failure is a
:class:`DriverError` whose message becomes the response's ``error``.
"""

from __future__ import annotations

import abc
from typing import Any, Callable, ClassVar

#: ZStack kvmagent's ``Vm.VM_STATE_*``: the states a driver reports.
RUNNING = "Running"
SHUTDOWN = "Shutdown"
PAUSED = "Paused"
CRASHED = "Crashed"
NO_STATE = "NoState"

#: Called by a driver when a VM changes state by itself: ``(vm_uuid, state)``.
StateListener = Callable[[str, str], None]


class DriverError(Exception):
    """A command the driver could not carry out; the message tells the user why."""


class Driver(abc.ABC):
    """One hypervisor back end of the agent (``impl_libvirt``, ``impl_simulated``)."""

    #: The name the agent's ``driver`` setting selects it by.
    name: ClassVar[str]

    def __init__(self, config: Any) -> None:
        #: The agent's :class:`agents.kvm.config.AgentConfig`.
        self.config = config

    # -- host ---------------------------------------------------------------------------

    @abc.abstractmethod
    def versions(self) -> dict[str, str]:
        """``{"libvirtVersion": ..., "qemuVersion": ...}`` for ``/host/connect``."""

    def host_capacity(self) -> dict[str, int]:
        """``cpuNum``, ``cpuSpeed``, ``usedCpu``, ``totalMemory``, ``usedMemory``,
        ``cpuSockets`` of the machine (real figures by default)."""
        from agents.kvm.hostinfo import machine_capacity
        return machine_capacity()

    def watch(self, listener: StateListener) -> None:
        """Call ``listener`` whenever a VM changes state by itself (not through
        this driver's own start/stop/...); until :meth:`close`."""

    def close(self) -> None:
        """Release connections and threads."""

    # -- VMs ----------------------------------------------------------------------------

    @abc.abstractmethod
    def start_vm(self, spec: dict[str, Any]) -> None:
        """Define (or redefine) and start the VM of a ``/vm/start`` command.
        A VM already running is left alone."""

    @abc.abstractmethod
    def stop_vm(self, vm_uuid: str, stop_type: str, timeout: float) -> None:
        """``grace`` asks the guest and falls back to ``cold`` at ``timeout``.
        Unknown or stopped VMs: nothing to do."""

    @abc.abstractmethod
    def reboot_vm(self, vm_uuid: str, timeout: float) -> None: ...

    @abc.abstractmethod
    def pause_vm(self, vm_uuid: str, timeout: float) -> None: ...

    @abc.abstractmethod
    def resume_vm(self, vm_uuid: str, timeout: float) -> None: ...

    @abc.abstractmethod
    def destroy_vm(self, vm_uuid: str) -> None:
        """Stop at once and forget (undefine) the VM; unknown VMs: nothing to do."""

    @abc.abstractmethod
    def vm_states(self) -> dict[str, str]:
        """The state of every VM this host has, by VM uuid."""

    @abc.abstractmethod
    def attach_volume(self, vm_uuid: str, volume: dict[str, Any]) -> None:
        """Attach a data volume (a VolumeTO) to a running or stopped VM."""

    @abc.abstractmethod
    def detach_volume(self, vm_uuid: str, volume: dict[str, Any]) -> None: ...

    # -- network ------------------------------------------------------------------------

    @abc.abstractmethod
    def create_bridge(self, bridge_name: str, physical_interface: str, vlan: int | None = None,
                      mtu: int | None = None) -> None:
        """Make the bridge (and the VLAN device) if missing."""

    @abc.abstractmethod
    def check_bridge(self, bridge_name: str) -> bool: ...

    @abc.abstractmethod
    def delete_bridge(self, bridge_name: str, physical_interface: str, vlan: int | None = None) -> None: ...

    # -- local storage ------------------------------------------------------------------

    @abc.abstractmethod
    def storage_capacity(self, storage_path: str) -> tuple[int, int]:
        """``(total, available)`` bytes of the file system of ``storage_path``."""

    @abc.abstractmethod
    def init_storage(self, storage_path: str) -> None: ...

    @abc.abstractmethod
    def create_empty_volume(self, install_path: str, size: int, backing_file: str | None = None) -> int:
        """Make a qcow2 of virtual ``size`` bytes at ``install_path``; its actual size.
        An existing file is left as it is (never overwritten)."""

    @abc.abstractmethod
    def delete_bits(self, path: str) -> None:
        """Remove a volume file; missing is fine."""
