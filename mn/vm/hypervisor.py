"""What the VM service asks of a hypervisor, and the Simulator hypervisor.

A backend implements :class:`HypervisorBackend` for one host hypervisor type
(``HostVO.hypervisorType``) and is found with :func:`hypervisor_for`. The
Simulator backend ships here: Simulator hosts have no agent, so every call
succeeds at once, unless a test asks it to fail or to take its time through
the global configs of category ``simulator`` below. The KVM backend (the
KVM agent issue) registers itself with :func:`register_hypervisor`, or
through the ``zstack.hypervisors`` entry point group, behind the same
interface.

Every call gets a :class:`VmSpec` built from the database by the caller
(:func:`mn.vm.spec.build_vm_spec`): backends never read VM tables.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar

from mn.errors import ErrorCode, OperationError, SysErrors, error
from mn.globalconfig import GlobalConfig, at_least

if TYPE_CHECKING:
    from mn.node import ManagementNode

log = logging.getLogger(__name__)

#: Entry point group of hypervisor backends (a class or an instance each).
HYPERVISOR_ENTRY_POINTS = "zstack.hypervisors"

#: ZStack's HostErrors.FAILED_TO_<OPERATION>_VM_ON_HYPERVISOR codes, the cause of a
#: backend's failure (others fail with a plain SYS.1006).
HYPERVISOR_ERRORS = {"create": "HOST.1005", "start": "HOST.1005", "stop": "HOST.1006",
                     "reboot": "HOST.1007", "destroy": "HOST.1008", "migrate": "HOST.1009"}


@dataclasses.dataclass
class VolumeSpec:
    """A volume as the hypervisor sees it."""

    uuid: str
    type: str
    deviceId: int | None
    size: int
    installPath: str | None
    format: str | None
    primaryStorageUuid: str | None


@dataclasses.dataclass
class NicSpec:
    """A nic as the hypervisor sees it."""

    uuid: str
    l3NetworkUuid: str | None
    mac: str
    ip: str | None
    netmask: str | None
    gateway: str | None
    deviceId: int
    internalName: str | None
    driverType: str | None


@dataclasses.dataclass
class VmSpec:
    """Everything a backend needs to run one VM on ``hostUuid``."""

    uuid: str
    name: str
    internalId: int | None
    hostUuid: str
    hypervisorType: str
    cpuNum: int
    cpuSpeed: int
    memorySize: int
    platform: str | None
    architecture: str | None
    imageUuid: str | None
    hostname: str | None
    volumes: list[VolumeSpec]
    nics: list[NicSpec]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class HypervisorBackend:
    """The operations the VM service needs from one hypervisor type.

    Each raises OperationError when the hypervisor refuses or fails; the VM
    service then rolls back. ``stop_vm``'s ``stop_type`` is ZStack's
    ``grace`` (ask the guest) or ``cold`` (pull the plug).
    """

    hypervisor_type: ClassVar[str]
    #: Whether the volumes of this hypervisor's hosts are files there, to be
    #: deleted when the volume is (the Simulator keeps none).
    keeps_volume_bits: ClassVar[bool] = False

    async def delete_volume_bits(self, node: "ManagementNode", host_uuid: str, install_path: str,
                                 storage_path: str) -> None:
        """Delete a volume's file on the host; a missing file is fine. Raise
        OperationError when the host cannot do it now (it is retried)."""
        return None

    async def create_vm(self, node: "ManagementNode", vm: VmSpec) -> None:
        raise NotImplementedError

    async def start_vm(self, node: "ManagementNode", vm: VmSpec) -> None:
        raise NotImplementedError

    async def stop_vm(self, node: "ManagementNode", vm: VmSpec, stop_type: str) -> None:
        raise NotImplementedError

    async def reboot_vm(self, node: "ManagementNode", vm: VmSpec) -> None:
        raise NotImplementedError

    async def pause_vm(self, node: "ManagementNode", vm: VmSpec) -> None:
        raise NotImplementedError

    async def resume_vm(self, node: "ManagementNode", vm: VmSpec) -> None:
        raise NotImplementedError

    async def destroy_vm(self, node: "ManagementNode", vm: VmSpec) -> None:
        raise NotImplementedError

    async def migrate_vm(self, node: "ManagementNode", vm: VmSpec, dest_host_uuid: str) -> None:
        raise NotImplementedError

    async def attach_volume(self, node: "ManagementNode", vm: VmSpec, volume: VolumeSpec) -> None:
        raise NotImplementedError

    async def detach_volume(self, node: "ManagementNode", vm: VmSpec, volume: VolumeSpec) -> None:
        raise NotImplementedError

    async def attach_nic(self, node: "ManagementNode", vm: VmSpec, nic: NicSpec) -> None:
        raise NotImplementedError

    async def detach_nic(self, node: "ManagementNode", vm: VmSpec, nic: NicSpec) -> None:
        raise NotImplementedError


# -- the Simulator ----------------------------------------------------------------------

SIMULATOR = "Simulator"

#: Operation names of the Simulator's failure injection (SIMULATED_FAILURES).
SIMULATOR_OPERATIONS = ("create", "start", "stop", "reboot", "pause", "resume", "destroy", "migrate",
                        "attachVolume", "detachVolume", "attachNic", "detachNic")


def _operation_list(value: str) -> None:
    unknown = [op for op in _split(value) if op not in SIMULATOR_OPERATIONS]
    if unknown:
        raise ValueError(f"unknown simulator operation(s) {', '.join(unknown)}; valid: "
                         f"{', '.join(SIMULATOR_OPERATIONS)}")


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


SIMULATED_CREATE_FAILURE = GlobalConfig(
    "simulator", "vm.create.fail", bool, False,
    description="Tests only: creating a VM on a Simulator host fails (the create chain rolls back)")
SIMULATED_FAILURES = GlobalConfig(
    "simulator", "vm.fail.operations", str, "", validators=[_operation_list],
    description="Tests only: comma-separated Simulator operations that fail "
                f"({', '.join(SIMULATOR_OPERATIONS)})")
SIMULATED_DELAY = GlobalConfig(
    "simulator", "vm.operation.delay", float, 0.0, validators=[at_least(0)],
    description="Tests only: seconds every Simulator VM operation takes")


class SimulatorHypervisor(HypervisorBackend):
    """Simulator hosts have no agent: operations succeed after the configured delay,
    or fail when the ``simulator`` global configs say so."""

    hypervisor_type = SIMULATOR

    async def _act(self, operation: str, vm: VmSpec, what: str = "") -> None:
        delay = SIMULATED_DELAY.value
        if delay:
            await asyncio.sleep(delay)
        failing = (operation == "create" and SIMULATED_CREATE_FAILURE.value) or \
            operation in _split(SIMULATED_FAILURES.value)
        if failing:
            details = (f"simulated failure: {operation} of vm[uuid:{vm.uuid}, name:{vm.name}]{what} on "
                       f"simulator host[uuid:{vm.hostUuid}]")
            code = HYPERVISOR_ERRORS.get(operation)
            cause = ErrorCode(code, f"failed to {operation} the vm on the hypervisor", details) if code else None
            raise OperationError(error(SysErrors.OPERATION_ERROR, details, cause))
        log.debug("simulator host %s: %s vm %s%s", vm.hostUuid, operation, vm.uuid, what)

    async def create_vm(self, node, vm):
        await self._act("create", vm)

    async def start_vm(self, node, vm):
        await self._act("start", vm)

    async def stop_vm(self, node, vm, stop_type):
        await self._act("stop", vm, f" ({stop_type})")

    async def reboot_vm(self, node, vm):
        await self._act("reboot", vm)

    async def pause_vm(self, node, vm):
        await self._act("pause", vm)

    async def resume_vm(self, node, vm):
        await self._act("resume", vm)

    async def destroy_vm(self, node, vm):
        await self._act("destroy", vm)

    async def migrate_vm(self, node, vm, dest_host_uuid):
        await self._act("migrate", vm, f" to host[uuid:{dest_host_uuid}]")

    async def attach_volume(self, node, vm, volume):
        await self._act("attachVolume", vm, f" volume[uuid:{volume.uuid}]")

    async def detach_volume(self, node, vm, volume):
        await self._act("detachVolume", vm, f" volume[uuid:{volume.uuid}]")

    async def attach_nic(self, node, vm, nic):
        await self._act("attachNic", vm, f" nic[uuid:{nic.uuid}]")

    async def detach_nic(self, node, vm, nic):
        await self._act("detachNic", vm, f" nic[uuid:{nic.uuid}]")


# -- the registry ------------------------------------------------------------------------

_BACKENDS: dict[str, HypervisorBackend] = {SIMULATOR: SimulatorHypervisor()}
_entry_points_loaded = False


def register_hypervisor(backend: HypervisorBackend) -> None:
    """Serve hosts of ``backend.hypervisor_type`` with ``backend`` (replacing any other)."""
    _BACKENDS[backend.hypervisor_type] = backend


def hypervisor_for(hypervisor_type: str | None) -> HypervisorBackend:
    """The backend of a host's hypervisor type; OperationError SYS.1013 if none is installed."""
    global _entry_points_loaded
    if not _entry_points_loaded:
        _entry_points_loaded = True
        for ep in entry_points(group=HYPERVISOR_ENTRY_POINTS):
            target = ep.load()
            register_hypervisor(target() if isinstance(target, type) else target)
    backend = _BACKENDS.get(hypervisor_type or "")
    if backend is None:
        raise OperationError.of(SysErrors.NO_CAPABILITY_ERROR,
                                f"no hypervisor backend is installed for hypervisor type {hypervisor_type}; "
                                f"installed: {', '.join(sorted(_BACKENDS))}")
    return backend
