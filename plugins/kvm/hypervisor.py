"""VM operations on KVM hosts: each one an agent command (ZStack's KVMHost).

A failed or timed-out command raises OperationError with ZStack's
HostErrors code of the operation as the cause, so the VM chain rolls back
exactly as it does for any hypervisor.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from mn.db.models.host import HostVO
from mn.errors import ErrorCode, OperationError, SysErrors, error
from mn.vm.hypervisor import HYPERVISOR_ERRORS, HypervisorBackend, NicSpec, VmSpec, VolumeSpec
from plugins.kvm import commands as cmds
from plugins.kvm.config import AGENT_COMMAND_TIMEOUT, GRACEFUL_STOP_TIMEOUT

if TYPE_CHECKING:
    from mn.node import ManagementNode
    from plugins.kvm.agent import AgentClient

log = logging.getLogger(__name__)

#: ZStack's KVMConstant.KVM_HYPERVISOR_TYPE.
KVM_HYPERVISOR_TYPE = "KVM"


class KvmHypervisor(HypervisorBackend):
    """The VM service's view of KVM hosts."""

    hypervisor_type = KVM_HYPERVISOR_TYPE
    keeps_volume_bits = True

    def __init__(self, agents: "AgentClient"):
        self.agents = agents

    async def _host_ip(self, node: "ManagementNode", host_uuid: str) -> str:
        ip = await node.db.run(lambda s: s.scalar(select(HostVO.managementIp).where(HostVO.uuid == host_uuid)))
        if ip is None:
            raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND, f"unable to find host[uuid:{host_uuid}]")
        return ip

    async def _call(self, node: "ManagementNode", operation: str, vm: VmSpec, path: str,
                    cmd: dict[str, Any]) -> dict:
        host_ip = await self._host_ip(node, vm.hostUuid)
        try:
            return await self.agents.call(host_ip, path, cmd)
        except OperationError as exc:
            code = HYPERVISOR_ERRORS.get(operation)
            if code is None:
                raise
            cause = ErrorCode(code, f"failed to {operation} the vm on the hypervisor",
                              exc.error.details or exc.error.description, cause=exc.error)
            raise OperationError(error(SysErrors.OPERATION_ERROR,
                                       f"failed to {operation} vm[uuid:{vm.uuid}, name:{vm.name}] on kvm host"
                                       f"[uuid:{vm.hostUuid}, ip:{host_ip}]: {exc.error.details}", cause)) from None

    # -- making and starting ------------------------------------------------------------

    async def create_vm(self, node, vm):
        await self._instantiate_volumes(node, vm, vm.volumes)
        await self.start_vm(node, vm)

    async def _instantiate_volumes(self, node, vm: VmSpec, volumes: list[VolumeSpec]) -> None:
        """Make the volumes' qcow2 files on the host (the agent leaves existing ones alone)."""
        ps_uuids = sorted({v.primaryStorageUuid for v in volumes if v.primaryStorageUuid})
        paths = await node.db.run(cmds.storage_paths, ps_uuids)
        for volume in volumes:
            if not volume.installPath:
                continue
            storage_path = paths.get(volume.primaryStorageUuid, "")
            await self._call(node, "create", vm, cmds.CREATE_EMPTY_VOLUME,
                             cmds.create_empty_volume_command(vm.hostUuid, volume, storage_path))

    async def start_vm(self, node, vm):
        bridges = await node.db.run(cmds.bridges_of_l3, sorted({n.l3NetworkUuid for n in vm.nics
                                                                 if n.l3NetworkUuid}))
        for bridge in {b.name: b for b in bridges.values()}.values():
            # Idempotent on the agent: the bridge exists after the first VM.
            await self._call(node, "start", vm, bridge.path, bridge.command())
        log.debug("starting vm %s on kvm host %s", vm.uuid, vm.hostUuid)
        await self._call(node, "start", vm, cmds.START_VM,
                         cmds.start_vm_command(vm, bridges, AGENT_COMMAND_TIMEOUT.value))

    # -- the rest of the life cycle -------------------------------------------------------

    async def stop_vm(self, node, vm, stop_type):
        await self._call(node, "stop", vm, cmds.STOP_VM,
                         {"uuid": vm.uuid, "type": stop_type, "timeout": GRACEFUL_STOP_TIMEOUT.value})

    async def reboot_vm(self, node, vm):
        await self._call(node, "reboot", vm, cmds.REBOOT_VM,
                         {"uuid": vm.uuid, "timeout": GRACEFUL_STOP_TIMEOUT.value})

    async def pause_vm(self, node, vm):
        await self._call(node, "pause", vm, cmds.PAUSE_VM, {"uuid": vm.uuid, "timeout": AGENT_COMMAND_TIMEOUT.value})

    async def resume_vm(self, node, vm):
        await self._call(node, "resume", vm, cmds.RESUME_VM,
                         {"uuid": vm.uuid, "timeout": AGENT_COMMAND_TIMEOUT.value})

    async def destroy_vm(self, node, vm):
        await self._call(node, "destroy", vm, cmds.DESTROY_VM, {"uuid": vm.uuid})

    async def delete_volume_bits(self, node, host_uuid, install_path, storage_path):
        await self.agents.call(await self._host_ip(node, host_uuid), cmds.DELETE_BITS,
                               {"hostUuid": host_uuid, "path": install_path, "storagePath": storage_path})

    async def migrate_vm(self, node, vm, dest_host_uuid):
        raise OperationError.of(SysErrors.UNIMPLEMENTED_OPERATION_ERROR,
                                f"live migration of vm[uuid:{vm.uuid}] between kvm hosts is not supported yet")

    # -- devices ------------------------------------------------------------------------

    async def attach_volume(self, node, vm, volume):
        await self._instantiate_volumes(node, vm, [volume])
        await self._call(node, "attachVolume", vm, cmds.ATTACH_VOLUME,
                         {"vmInstanceUuid": vm.uuid, "volume": cmds.volume_to(volume)})

    async def detach_volume(self, node, vm, volume):
        await self._call(node, "detachVolume", vm, cmds.DETACH_VOLUME,
                         {"vmInstanceUuid": vm.uuid, "volume": cmds.volume_to(volume)})

    async def attach_nic(self, node, vm, nic: NicSpec):
        raise OperationError.of(SysErrors.UNIMPLEMENTED_OPERATION_ERROR,
                                f"attaching a nic to vm[uuid:{vm.uuid}] on a kvm host is not supported yet")

    async def detach_nic(self, node, vm, nic: NicSpec):
        raise OperationError.of(SysErrors.UNIMPLEMENTED_OPERATION_ERROR,
                                f"detaching a nic from vm[uuid:{vm.uuid}] on a kvm host is not supported yet")
