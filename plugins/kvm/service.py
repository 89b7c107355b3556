"""The KVM service: joins KVM hosts to the MN through its extension points.

On start it gives the host service a :class:`~plugins.kvm.factory.KvmHostFactory`
(which the host tracker of :mod:`mn.host.tracker` pings hosts through), the
VM service a :class:`~plugins.kvm.hypervisor.KvmHypervisor`, and the HTTP
side the handlers of what agents report. It is declared under the
``zstack.services`` entry point group, so the core never names it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from mn.db.models.host import KVMHostVO
from mn.errors import OperationError, SysErrors
from mn.host.messages import APIAddHostEvent, APIUpdateHostEvent, ReconnectHostMsg
from mn.host.tracker import RECONNECT_TIMEOUT
from mn.service import Service, handles, intercepts
from mn.vm.hypervisor import register_hypervisor
from mn.vm.sync import VmStateChangedOnHostMsg
from plugins.kvm import commands as cmds
from plugins.kvm.agent import AgentClient
from plugins.kvm.factory import KvmHostFactory
from plugins.kvm.hypervisor import KVM_HYPERVISOR_TYPE, KvmHypervisor
from plugins.kvm.messages import SERVICE_ID, APIAddKVMHostMsg, APIUpdateKVMHostMsg

if TYPE_CHECKING:
    from mn.node import ManagementNode

log = logging.getLogger(__name__)

HOST_SERVICE_ID = "host"


def default_deployer(node: "ManagementNode") -> Any:
    """The Ansible deployer of this MN's agent package."""
    from plugins.kvm.deploy import AgentDeployer, AgentPackage

    settings = node.settings
    package = None
    if settings.kvm_agent_source:
        package = AgentPackage(settings.var_dir / "kvmagent-package", source_dir=Path(settings.kvm_agent_source))
    return AgentDeployer(settings.var_dir, host_vars_dir=settings.ansible_host_vars_dir or None, package=package)


class KvmService(Service):
    """ZStack's KVMHostFactory and KVMHost, as one service of every MN."""

    SERVICE_ID = SERVICE_ID

    def __init__(self, node: "ManagementNode"):
        super().__init__(node)
        self.agents = AgentClient(node)
        self.factory = KvmHostFactory(self.agents, lambda: default_deployer(node))
        self._background: set[asyncio.Task] = set()

    @property
    def hosts(self) -> Any:
        return self.node.services[HOST_SERVICE_ID]

    async def start(self) -> None:
        self.hosts.add_factory(self.factory)
        register_hypervisor(KvmHypervisor(self.agents))
        self.node.agent_reports.register(cmds.REPORT_VM_STATE, self.vm_state_reported)
        self.node.agent_reports.register(cmds.RECONNECT_ME, self.reconnect_asked)

    async def stop(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self.node.agent_reports.unregister(cmds.REPORT_VM_STATE)
        self.node.agent_reports.unregister(cmds.RECONNECT_ME)
        await self.agents.close()

    # -- the APIs ------------------------------------------------------------------------------

    @intercepts(APIAddKVMHostMsg)
    async def check_add(self, msg: APIAddKVMHostMsg) -> None:
        await self.hosts.check_add(msg, KVM_HYPERVISOR_TYPE)

    @handles(APIAddKVMHostMsg)
    async def add_kvm_host(self, msg: APIAddKVMHostMsg) -> APIAddHostEvent:
        return APIAddHostEvent(inventory=await self.hosts.add_host(msg, KVM_HYPERVISOR_TYPE))

    @handles(APIUpdateKVMHostMsg)
    async def update_kvm_host(self, msg: APIUpdateKVMHostMsg) -> APIUpdateHostEvent:
        def change_login(session: Session, host: Any) -> None:
            login = session.get(KVMHostVO, host.uuid)
            if login is None:
                raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                        f"host[uuid:{host.uuid}] is not a kvm host")
            if msg.username is not None:
                login.username = msg.username
            if msg.password is not None:
                login.password = msg.password
            if msg.sshPort is not None:
                login.port = msg.sshPort

        return APIUpdateHostEvent(inventory=await self.hosts.update(msg, change_login))

    # -- what agents report ----------------------------------------------------------------------

    async def vm_state_reported(self, body: dict) -> dict:
        """``/kvm/reportvmstate``: a VM changed state by itself on its host."""
        host_uuid, vm_uuid, state = body.get("hostUuid"), body.get("vmUuid"), body.get("vmState")
        if not (host_uuid and vm_uuid and state):
            raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                    "a vm state report needs hostUuid, vmUuid and vmState")
        vm_state = cmds.AGENT_VM_STATES.get(state, "NoState")
        log.info("kvm host %s reports vm %s %s", host_uuid, vm_uuid, state)
        self._in_background(self.node.bus.call(VmStateChangedOnHostMsg(
            vmInstanceUuid=vm_uuid, hostUuid=host_uuid, stateOnHost=vm_state)))
        return {"success": True}

    async def reconnect_asked(self, body: dict) -> dict:
        """``/kvm/reconnectme``: an agent restarted and wants to be connected again."""
        host_uuid = body.get("hostUuid")
        if not host_uuid:
            raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR, "a reconnect request needs hostUuid")
        log.info("kvm host %s asks to be reconnected: %s", host_uuid, body.get("reason"))
        self._in_background(self.node.bus.call(ReconnectHostMsg(uuid=host_uuid), timeout=RECONNECT_TIMEOUT))
        return {"success": True}

    def _in_background(self, work: Any) -> None:
        # The agent must not wait for what its report sets off.
        async def run() -> None:
            try:
                await work
            except OperationError as exc:
                log.warning("acting on an agent report failed: %s", exc.error.details or exc)

        task = asyncio.create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
