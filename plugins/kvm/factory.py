"""Adding and connecting KVM hosts (ZStack's KVMHostFactory and KVMHost.connect).

Connecting a host:

1. ping its agent; unless it answers with the version (package checksum)
   this MN ships, deploy the agent over SSH with Ansible (install or
   upgrade, configure, start, wait until it answers);
2. ``/host/connect``: give the agent the host's uuid and where to report;
3. ``/host/capacity``: record the machine's real CPUs and memory, keeping
   what the VMs on it use;
4. make the bridges of the cluster's L2 networks and the directories of
   its LocalStorage primary storages;
5. ``/vm/vmsync``: bring the records of the host's VMs in line.

Every step is idempotent, so reconnecting is connecting again.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from mn.db.models.host import HostVO, KVMHostVO
from mn.errors import OperationError, SysErrors
from mn.host.capacity import capacity_row, report_host_capacity
from mn.host.config import PING_TIMEOUT
from mn.host.factory import HostFactory
from mn.storage.primary.local import set_host_disk
from mn.vm.sync import sync_host_vms
from plugins.kvm import commands as cmds
from plugins.kvm.config import VM_SYNC_ON_PING
from plugins.kvm.hypervisor import KVM_HYPERVISOR_TYPE

if TYPE_CHECKING:
    from mn.node import ManagementNode
    from plugins.kvm.agent import AgentClient

log = logging.getLogger(__name__)

#: Seconds the agent package's checksum is trusted before it is computed again.
VERSION_TTL = 5.0


class KvmHostFactory(HostFactory):
    """ZStack's KVMHostFactory."""

    hypervisor_type = KVM_HYPERVISOR_TYPE
    architecture = "x86_64"

    def __init__(self, agents: "AgentClient", make_deployer: Callable[[], Any]):
        self.agents = agents
        self._make_deployer = make_deployer
        self._deployer: Any = None
        self._version: tuple[float, str] | None = None

    @property
    def deployer(self) -> Any:
        """Deploys the agent over SSH (:class:`plugins.kvm.deploy.AgentDeployer`);
        ``deployer.package.checksum`` is the agent version this MN ships.
        Made when first needed: building it reads the agent's sources."""
        if self._deployer is None:
            self._deployer = self._make_deployer()
        return self._deployer

    @deployer.setter
    def deployer(self, deployer: Any) -> None:
        self._deployer = deployer

    @property
    def agent_version(self) -> str:
        """The checksum of the agent package this MN deploys (read at most every
        :data:`VERSION_TTL` seconds: the tracker asks at every ping)."""
        now = time.monotonic()
        if self._version is None or now - self._version[0] > VERSION_TTL:
            self._version = (now, self.deployer.package.checksum)
        return self._version[1]

    def create_rows(self, session: Session, host: HostVO, msg: Any) -> None:
        session.add(KVMHostVO(uuid=host.uuid, username=msg.username, password=msg.password, port=msg.sshPort))
        # Nothing measured yet: connect records the machine's figures.
        session.add(capacity_row(host.uuid, cpu_num=0, memory_size=0))
        session.flush()

    # -- connecting ------------------------------------------------------------------------

    async def connect(self, node: "ManagementNode", host_uuid: str) -> None:
        host, login = await node.db.run(_host_and_login, host_uuid)
        ip = host["managementIp"]
        # Read afresh: a reconnect is how an operator asks for an upgrade.
        self._version = None
        if not await self.agent_is_current(ip, host_uuid):
            await self.deploy(host, login)
        await self.agents.call(ip, cmds.CONNECT, {
            "hostUuid": host_uuid, "sendCommandUrl": node.settings.send_command_url,
            "version": self.agent_version, "managementNodes": await _management_node_urls(node)})
        capacity = await self.agents.call(ip, cmds.CAPACITY, {})
        await node.db.run(lambda s: _record_capacity(s, host_uuid, capacity))
        await self._prepare_host(node, host, ip)
        changed = await self.sync_vms(node, host_uuid, ip)
        log.info("kvm host %s (%s) connected: %s CPUs, %s bytes of memory, %d vm(s) synced", host_uuid, ip,
                 capacity.get("cpuNum"), capacity.get("totalMemory"), changed)

    async def ping(self, node: "ManagementNode", host_uuid: str, management_ip: str) -> str | None:
        """``/host/ping`` for the host tracker; why the host needs reconnecting, if it does."""
        answer = await self.agents.call_sync(management_ip, cmds.PING,
                                             {"hostUuid": host_uuid, "managementNodeUuid": node.uuid},
                                             timeout=PING_TIMEOUT.value)
        if answer.get("hostUuid") != host_uuid:
            return f"its agent knows it as {answer.get('hostUuid')}"
        if answer.get("version") != self.agent_version:
            return f"its agent is version {answer.get('version')}, this MN ships {self.agent_version}"
        if VM_SYNC_ON_PING.value:
            await self.sync_vms(node, host_uuid, management_ip)
        return None

    async def sync_vms(self, node: "ManagementNode", host_uuid: str, management_ip: str) -> int:
        """Bring the records of the host's VMs in line with ``/vm/vmsync``."""
        states = (await self.agents.call(management_ip, cmds.VM_SYNC, {})).get("states") or {}
        return await sync_host_vms(node, host_uuid, to_vm_states(states))

    async def agent_is_current(self, ip: str, host_uuid: str | None = None) -> bool:
        """Whether an agent answers on ``ip`` with the version this MN ships."""
        try:
            answer = await self.agents.call_sync(ip, cmds.PING, {"hostUuid": host_uuid}, timeout=5.0)
        except OperationError:
            return False
        return answer.get("version") == self.agent_version

    async def deploy(self, host: dict, login: dict) -> None:
        from plugins.kvm.deploy import DeployError, DeployTarget

        target = DeployTarget(management_ip=host["managementIp"], username=login["username"],
                              password=login["password"], ssh_port=login["port"])
        try:
            result = await self.deployer.deploy(target)
        except DeployError as exc:
            raise OperationError.of(SysErrors.OPERATION_ERROR,
                                    f"unable to deploy the kvm agent to {host['managementIp']}: {exc}") from None
        log.info("deployed the kvm agent to %s (changed: %s, installed: %s, started: %s)", host["managementIp"],
                 result.changed, result.installed, result.started)

    async def _prepare_host(self, node: "ManagementNode", host: dict, ip: str) -> None:
        cluster_uuid = host["clusterUuid"]
        bridges = await node.db.run(cmds.bridges_of_cluster, cluster_uuid)
        for bridge in bridges:
            await self.agents.call(ip, bridge.path, bridge.command())
        for ps_uuid, path in await node.db.run(cmds.local_storage_paths, cluster_uuid):
            disk = await self.agents.call(ip, cmds.LOCAL_STORAGE_INIT,
                                          {"hostUuid": host["uuid"], "storagePath": path, "path": path,
                                           "uuid": ps_uuid})
            # The host's share of the LocalStorage is its real disk.
            await node.db.run(set_host_disk, ps_uuid, host["uuid"], int(disk.get("totalCapacity") or 0),
                              int(disk.get("availableCapacity") or 0))


def to_vm_states(agent_states: dict[str, str]) -> dict[str, str]:
    """kvmagent states -> VmInstanceState names (unknown ones as NoState)."""
    return {uuid: cmds.AGENT_VM_STATES.get(state, "NoState") for uuid, state in agent_states.items()}


def _host_and_login(session: Session, host_uuid: str) -> tuple[dict, dict]:
    host = session.get(HostVO, host_uuid)
    login = session.get(KVMHostVO, host_uuid)
    if host is None or login is None:
        raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                                f"unable to find kvm host[uuid:{host_uuid}], it may have been deleted")
    return ({"uuid": host.uuid, "managementIp": host.managementIp, "clusterUuid": host.clusterUuid},
            {"username": login.username, "password": login.password, "port": login.port})


def _record_capacity(session: Session, host_uuid: str, capacity: dict) -> None:
    total_memory = int(capacity.get("totalMemory") or 0)
    used_memory = int(capacity.get("usedMemory") or 0)
    report_host_capacity(session, host_uuid, cpu_num=int(capacity.get("cpuNum") or 0),
                         cpu_sockets=int(capacity.get("cpuSockets") or 0), total_memory=total_memory,
                         available_physical_memory=max(total_memory - used_memory, 0))


async def _management_node_urls(node: "ManagementNode") -> list[str]:
    """The HTTP base of every live MN: where an agent can report when ours is gone."""
    from mn.db.models.management_node import ManagementNodeVO

    rows = await node.db.run(lambda s: s.execute(select(ManagementNodeVO.hostName, ManagementNodeVO.port)).all())
    return [f"http://{host}:{port}" for host, port in rows]
