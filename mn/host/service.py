"""The host service: add, update, change state, reconnect and delete hosts.

Operations on one host run on the MN that owns the host on the ring (the
APIs are routed by ``uuid``) and, there, one at a time in the work queue
``host-<uuid>``. Hosts follow their cluster's enable/disable
(:mod:`mn.host.cluster_extension`) and go with their cluster in cascades
(:mod:`mn.host.cascade`). What is specific to a hypervisor type (its own
rows, connecting) is a :class:`~mn.host.factory.HostFactory`; Simulator
hosts come built in.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mn.api.resource import persist_new
from mn.cascade import ENFORCING
from mn.cluster.messages import SERVICE_ID as CLUSTER_SERVICE_ID
from mn.db.models.cluster import ClusterVO
from mn.db.models.host import (
    HOST_CONNECTED,
    HOST_CONNECTING,
    HOST_DISABLED,
    HOST_ENABLED,
    HOST_MAINTENANCE,
    HOST_PRE_MAINTENANCE,
    HostVO,
)
from mn.errors import ErrorCode, OperationError, SysErrors, error
from mn.host.capacity import recalculate_available_memory, recalculate_total_cpu
from mn.host.cascade import HostCascade
from mn.host.cluster_extension import HostClusterExtension
from mn.host.config import CPU_OVERPROVISIONING_RATIO, MEMORY_OVERPROVISIONING_RATIO
from mn.host.factory import HostFactory
from mn.host.inventory import HostInventory
from mn.host.messages import (
    SERVICE_ID,
    APIAddHostEvent,
    APIAddSimulatorHostMsg,
    APIChangeHostStateEvent,
    APIChangeHostStateMsg,
    APIDeleteHostEvent,
    APIDeleteHostMsg,
    APIReconnectHostEvent,
    APIReconnectHostMsg,
    APIUpdateHostEvent,
    APIUpdateHostMsg,
    ChangeHostConnectionStateMsg,
    ChangeHostConnectionStateReply,
    ChangeHostStateMsg,
    ChangeHostStateReply,
    HostStatusChangedEvent,
    ReconnectHostMsg,
    ReconnectHostReply,
)
from mn.host.simulator import SimulatorHostFactory
from mn.host.tracker import HostTracker
from mn.host.state import (
    CONNECTED,
    CONNECTING,
    DISCONNECTED,
    EVENT_TO_STATE,
    HOST_STATE_MACHINE,
    HOST_STATUS_MACHINE,
    MAINTAIN,
    MAINTENANCE_STATES,
    PRE_MAINTAIN,
)
from mn.ids import new_uuid
from mn.service import Service, handles, intercepts

if TYPE_CHECKING:
    from mn.node import ManagementNode

log = logging.getLogger(__name__)

#: ZStack's HostErrors.
UNABLE_TO_ADD_HOST = "HOST.1000"
UNABLE_TO_ENTER_MAINTENANCE_MODE = "HOST.1001"
UNABLE_TO_RECONNECT_HOST = "HOST.1002"


def queue_of(host_uuid: str) -> str:
    """The work queue in which one host's operations run one at a time."""
    return f"host-{host_uuid}"


def host_not_found(host_uuid: str) -> OperationError:
    return OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                             f"unable to find host[uuid:{host_uuid}], it may have been deleted")


def find_host(session: Session, host_uuid: str) -> HostVO:
    """The host's row; RESOURCE_NOT_FOUND if there is none."""
    vo = session.get(HostVO, host_uuid)
    if vo is None:
        raise host_not_found(host_uuid)
    return vo


def _host_error(code: str, description: str, cause: OperationError | Exception) -> OperationError:
    reason = cause.error if isinstance(cause, OperationError) else error(
        SysErrors.INTERNAL, f"{type(cause).__name__}: {cause}")
    return OperationError(ErrorCode(code, description, reason.details or reason.description, cause=reason))


def _management_ip_taken(management_ip: str) -> OperationError:
    return OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                             f"there has been a host having managementIp[{management_ip}]")


class HostService(Service):
    """ZStack's HostManager and HostBase."""

    SERVICE_ID = SERVICE_ID

    def __init__(self, node: "ManagementNode"):
        super().__init__(node)
        self._extensions: list[Any] = []
        #: Hypervisor types this MN can add hosts of, with their factories.
        self.factories: dict[str, HostFactory] = {}
        self.add_factory(SimulatorHostFactory())
        self._stop_following_ratio: Callable[[], None] | None = None
        self._stop_following_memory_ratio: Callable[[], None] | None = None
        #: Pings the hosts this MN owns on the ring.
        self.tracker = HostTracker(node, self.factories)

    # -- what other services plug in ---------------------------------------------------

    def add_factory(self, factory: HostFactory) -> None:
        """Serve hosts of ``factory.hypervisor_type`` with ``factory``."""
        self.factories[factory.hypervisor_type] = factory

    def add_extension(self, extension: Any) -> None:
        """Have ``extension`` take part in this MN's host operations; it
        implements any of the hooks of :class:`~mn.host.extensions.HostExtension`."""
        self._extensions.append(extension)

    def add_maintenance_extension(self, extension: Any) -> None:
        """Register an object with ``async before_maintenance(host_uuid)``,
        run while a host is in PreMaintenance (the VM service stops or
        migrates the host's VMs there). Same as :meth:`add_extension`."""
        self.add_extension(extension)

    def _hooks(self, name: str) -> list[Callable]:
        return [getattr(ext, name) for ext in list(self._extensions) if hasattr(ext, name)]

    # -- life cycle --------------------------------------------------------------------

    async def start(self) -> None:
        self.node.cascade.register(HostCascade())
        clusters = self.node.services.get(CLUSTER_SERVICE_ID)
        if clusters is not None:
            clusters.add_state_extension(HostClusterExtension(self))
        self._stop_following_ratio = CPU_OVERPROVISIONING_RATIO.on_change(self._cpu_ratio_changed)
        self._stop_following_memory_ratio = MEMORY_OVERPROVISIONING_RATIO.on_change(self._memory_ratio_changed)
        # The ratio may have changed while no MN was running to follow it.
        await self.node.db.run(recalculate_total_cpu)
        membership = getattr(self.node, "membership", None)
        if membership is not None:
            membership.on_node_left(self.tracker.wake)
            membership.on_node_joined(self.tracker.wake)
        self.tracker.start()

    async def stop(self) -> None:
        await self.tracker.stop()
        for stop in (self._stop_following_ratio, self._stop_following_memory_ratio):
            if stop is not None:
                stop()
        self._stop_following_ratio = self._stop_following_memory_ratio = None

    async def _memory_ratio_changed(self, old: float, new: float) -> None:
        # Every MN runs this; the UPDATE is idempotent.
        changed = await self.node.db.run(lambda s: recalculate_available_memory(s, new))
        log.info("memory overcommit ratio %s -> %s: availableMemory recalculated on %d hosts", old, new, changed)

    async def _cpu_ratio_changed(self, old: int, new: int) -> None:
        # Every MN runs this; the UPDATE is idempotent.
        changed = await self.node.db.run(lambda s: recalculate_total_cpu(s, new))
        log.info("CPU overcommit ratio %s -> %s: totalCpu recalculated on %d hosts", old, new, changed)

    # -- reading -----------------------------------------------------------------------

    async def get_inventory(self, host_uuid: str) -> HostInventory:
        """The host's inventory; RESOURCE_NOT_FOUND if there is no such host."""
        return await self.node.db.run(lambda s: HostInventory.from_vo(find_host(s, host_uuid)))

    async def hosts_of_cluster(self, cluster_uuid: str) -> list[HostInventory]:
        def read(session: Session) -> list[HostInventory]:
            rows = session.scalars(select(HostVO).where(HostVO.clusterUuid == cluster_uuid)
                                   .order_by(HostVO.createDate, HostVO.uuid))
            return [HostInventory.from_vo(vo) for vo in rows]

        return await self.node.db.run(read)

    async def ask_extensions(self, host: HostInventory, event: str) -> str:
        """Run every ``pre_change_state`` hook; return the state ``event`` leads to.

        Raises SYS.1005 if the state machine or an extension refuses.
        """
        next_state = HOST_STATE_MACHINE.next_state(host.state, event)
        for hook in self._hooks("pre_change_state"):
            try:
                await hook(host, event, next_state)
            except OperationError as exc:
                if exc.error.code == SysErrors.CHANGE_RESOURCE_STATE_ERROR.value:
                    raise
                raise OperationError(error(
                    SysErrors.CHANGE_RESOURCE_STATE_ERROR,
                    f"cannot {event} host[uuid:{host.uuid}]: {exc.error.details or exc.error.description}",
                    exc.error)) from exc
        return next_state

    # -- adding --------------------------------------------------------------------------

    @intercepts(APIAddSimulatorHostMsg)
    async def check_add_simulator_host(self, msg: APIAddSimulatorHostMsg) -> None:
        await self.check_add(msg, SimulatorHostFactory.hypervisor_type)

    async def check_add(self, msg: Any, hypervisor_type: str) -> None:
        """What an AddXxxHost interceptor checks: a cluster of ``hypervisor_type``
        this MN can serve, and a managementIp no host has."""

        def check(session: Session) -> None:
            self._factory_for_cluster(session, msg.clusterUuid, hypervisor_type)
            self._check_management_ip_free(session, msg.managementIp)

        await self.node.db.run(check)

    @handles(APIAddSimulatorHostMsg)
    async def add_simulator_host(self, msg: APIAddSimulatorHostMsg) -> APIAddHostEvent:
        return APIAddHostEvent(inventory=await self.add_host(msg, SimulatorHostFactory.hypervisor_type))

    async def add_host(self, msg: Any, hypervisor_type: str) -> HostInventory:
        """Add a host from an AddXxxHost API message (ZStack's HostManager.doAddHost).

        The host is inserted Connecting, connected by its factory, set
        Connected, then shown to the ``after_add_host`` hooks. If connecting
        or a hook fails, the host is deleted again and HOST.1000 is raised.
        """
        uuid = msg.resourceUuid or new_uuid()

        def create(session: Session) -> HostInventory:
            # A lock on the cluster: its deletion cannot pass between this
            # check and our insert (it waits, then finds our host). Shared,
            # unless this host gives the cluster its architecture: two
            # shared holders both upgrading to write would deadlock.
            unset = session.scalar(select(ClusterVO.architecture.is_(None))
                                   .where(ClusterVO.uuid == msg.clusterUuid))
            session.execute(select(ClusterVO.uuid).where(ClusterVO.uuid == msg.clusterUuid)
                            .with_for_update(read=not unset))
            factory = self._factory_for_cluster(session, msg.clusterUuid, hypervisor_type)
            cluster = session.get(ClusterVO, msg.clusterUuid)
            self._check_management_ip_free(session, msg.managementIp)
            if cluster.architecture is None:
                # ZStack: a cluster takes the architecture of its first host.
                cluster.architecture = factory.architecture
            vo = HostVO(uuid=uuid, name=msg.name, description=msg.description, zoneUuid=cluster.zoneUuid,
                        clusterUuid=cluster.uuid, managementIp=msg.managementIp,
                        hypervisorType=cluster.hypervisorType, architecture=cluster.architecture,
                        state=HOST_ENABLED, status=HOST_CONNECTING)
            try:
                persist_new(self.node, session, vo, msg, HostVO.__tablename__)
                factory.create_rows(session, vo, msg)
            except IntegrityError as exc:
                if "managementIp" in str(exc.orig):
                    raise _management_ip_taken(msg.managementIp) from None
                raise
            return HostInventory.from_vo(vo)

        async def run() -> HostInventory:
            host = await self.node.db.run(create)
            log.info("added %s host %s (%s, %s) to cluster %s", hypervisor_type, host.uuid, host.name,
                     host.managementIp, host.clusterUuid)
            try:
                await self.factories[hypervisor_type].connect(self.node, host.uuid)
                host = await self._change_status(host.uuid, CONNECTED)
                for hook in self._hooks("after_add_host"):
                    await hook(host)
            except Exception as exc:
                await self._remove_failed_host(host.uuid)
                raise _host_error(UNABLE_TO_ADD_HOST, "unable to add host", exc) from exc
            return host

        return await self.node.queues.run(queue_of(uuid), run)

    async def _remove_failed_host(self, host_uuid: str) -> None:
        try:
            await self.node.cascade.delete(HostVO.__tablename__, [host_uuid], mode=ENFORCING)
        except Exception:
            log.exception("could not remove host %s after it failed to be added", host_uuid)

    def _factory_for_cluster(self, session: Session, cluster_uuid: str, hypervisor_type: str) -> HostFactory:
        cluster = session.get(ClusterVO, cluster_uuid)
        if cluster is None:
            raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                                    f"unable to find cluster[uuid:{cluster_uuid}], it may have been deleted")
        if cluster.hypervisorType != hypervisor_type:
            raise OperationError.of(
                SysErrors.INVALID_ARGUMENT_ERROR,
                f"cluster[uuid:{cluster_uuid}] is of hypervisor type {cluster.hypervisorType}; "
                f"a {hypervisor_type} host can only be added to a {hypervisor_type} cluster")
        factory = self.factories.get(hypervisor_type)
        if factory is None:
            raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                    f"hypervisor type {hypervisor_type} is not supported by this management "
                                    f"node: it can add hosts of {', '.join(sorted(self.factories))}")
        return factory

    @staticmethod
    def _check_management_ip_free(session: Session, management_ip: str, except_uuid: str | None = None) -> None:
        stmt = select(HostVO.uuid).where(HostVO.managementIp == management_ip)
        if except_uuid is not None:
            stmt = stmt.where(HostVO.uuid != except_uuid)
        if session.scalars(stmt.limit(1)).first() is not None:
            raise _management_ip_taken(management_ip)

    # -- updating ------------------------------------------------------------------------

    @intercepts(APIUpdateHostMsg)
    async def check_update(self, msg: APIUpdateHostMsg) -> None:
        if msg.managementIp is not None:
            await self.node.db.run(lambda s: self._check_management_ip_free(s, msg.managementIp, msg.uuid))

    @handles(APIUpdateHostMsg)
    async def update_host(self, msg: APIUpdateHostMsg) -> APIUpdateHostEvent:
        return APIUpdateHostEvent(inventory=await self.update(msg))

    async def update(self, msg: Any, more: Callable[[Session, HostVO], None] | None = None) -> HostInventory:
        """Apply an UpdateXxxHost message's name, description and managementIp
        (absent fields kept), and ``more(session, host)`` (a hypervisor's own
        fields), in one transaction in the host's queue."""

        def change(session: Session) -> HostInventory:
            vo = find_host(session, msg.uuid)
            if msg.name is not None:
                vo.name = msg.name
            if msg.description is not None:
                vo.description = msg.description
            if msg.managementIp is not None and msg.managementIp != vo.managementIp:
                self._check_management_ip_free(session, msg.managementIp, vo.uuid)
                vo.managementIp = msg.managementIp
            if more is not None:
                more(session, vo)
            try:
                session.flush()
            except IntegrityError as exc:
                if "managementIp" in str(exc.orig):
                    raise _management_ip_taken(msg.managementIp) from None
                raise
            return HostInventory.from_vo(vo)

        return await self.node.queues.run(queue_of(msg.uuid), lambda: self.node.db.run(change))

    # -- state -------------------------------------------------------------------------

    @intercepts(APIChangeHostStateMsg)
    async def check_change_state(self, msg: APIChangeHostStateMsg) -> None:
        host = await self.get_inventory(msg.uuid)
        self._check_transition(host, msg.stateEvent)

    @handles(APIChangeHostStateMsg)
    async def change_host_state(self, msg: APIChangeHostStateMsg) -> APIChangeHostStateEvent:
        async def run() -> HostInventory:
            host = await self.get_inventory(msg.uuid)
            self._check_transition(host, msg.stateEvent)
            if msg.stateEvent == MAINTAIN:
                return await self._enter_maintenance(host)
            next_state = await self.ask_extensions(host, msg.stateEvent)
            return await self._leave_state(host, next_state)

        return APIChangeHostStateEvent(inventory=await self.node.queues.run(queue_of(msg.uuid), run))

    @handles(ChangeHostStateMsg)
    async def follow_cluster_state(self, msg: ChangeHostStateMsg) -> ChangeHostStateReply:
        async def run() -> HostInventory:
            host = await self.get_inventory(msg.uuid)
            if host.state in MAINTENANCE_STATES:
                return host  # ZStack's justChangeState: maintenance is left by the admin only
            return await self._store_state(host.uuid, HOST_STATE_MACHINE.next_state(host.state, msg.stateEvent))

        return ChangeHostStateReply(inventory=await self.node.queues.run(queue_of(msg.uuid), run))

    @staticmethod
    def _check_transition(host: HostInventory, event: str) -> None:
        if event == MAINTAIN:
            if host.status != HOST_CONNECTED:
                # ZStack's HostApiInterceptor.
                raise OperationError.of(SysErrors.OPERATION_ERROR,
                                        f"can not maintain host[uuid:{host.uuid}, status:{host.status}] "
                                        "which is not Connected")
            HOST_STATE_MACHINE.next_state(host.state, PRE_MAINTAIN)
        else:
            HOST_STATE_MACHINE.next_state(host.state, event)

    async def _enter_maintenance(self, host: HostInventory) -> HostInventory:
        """ZStack's HostBase for preMaintain: PreMaintenance, the extensions
        empty the host, then Maintenance; on failure back to where it was."""
        await self.ask_extensions(host, PRE_MAINTAIN)
        await self._store_state(host.uuid, HOST_PRE_MAINTENANCE)
        try:
            for hook in self._hooks("before_maintenance"):
                await hook(host.uuid)
        except Exception as exc:
            log.warning("host %s cannot enter maintenance, back to %s: %s", host.uuid, host.state, exc)
            back = HOST_STATE_MACHINE.next_state(HOST_PRE_MAINTENANCE, EVENT_TO_STATE[host.state])
            await self._store_state(host.uuid, back)
            raise _host_error(UNABLE_TO_ENTER_MAINTENANCE_MODE, "unable to enter maintenance mode", exc) from exc
        return await self._store_state(host.uuid, HOST_MAINTENANCE)

    async def _leave_state(self, host: HostInventory, next_state: str) -> HostInventory:
        changed = await self._store_state(host.uuid, next_state)
        if host.state in MAINTENANCE_STATES and next_state not in MAINTENANCE_STATES:
            # ZStack reconnects a host coming out of maintenance; a failure
            # leaves it Disconnected but the state change stands.
            try:
                changed = await self._reconnect(host.uuid)
            except OperationError as exc:
                log.warning("host %s left maintenance but could not reconnect: %s", host.uuid, exc)
                changed = await self.get_inventory(host.uuid)
        return changed

    async def _store_state(self, host_uuid: str, state: str) -> HostInventory:
        def store(session: Session) -> tuple[str, HostInventory]:
            vo = find_host(session, host_uuid)
            before, vo.state = vo.state, state
            session.flush()
            return before, HostInventory.from_vo(vo)

        before, inventory = await self.node.db.run(store)
        if before != state:
            log.info("host %s: state %s -> %s", host_uuid, before, state)
        return inventory

    # -- connection --------------------------------------------------------------------

    @intercepts(APIReconnectHostMsg)
    async def check_reconnect(self, msg: APIReconnectHostMsg) -> None:
        self._check_not_in_maintenance(await self.get_inventory(msg.uuid))

    @handles(APIReconnectHostMsg)
    async def reconnect_host(self, msg: APIReconnectHostMsg) -> APIReconnectHostEvent:
        async def run() -> HostInventory:
            self._check_not_in_maintenance(await self.get_inventory(msg.uuid))
            return await self._reconnect(msg.uuid)

        return APIReconnectHostEvent(inventory=await self.node.queues.run(queue_of(msg.uuid), run))

    @handles(ReconnectHostMsg)
    async def reconnect_for_tracker(self, msg: ReconnectHostMsg) -> ReconnectHostReply:
        async def run() -> HostInventory:
            self._check_not_in_maintenance(await self.get_inventory(msg.uuid))
            return await self._reconnect(msg.uuid)

        return ReconnectHostReply(inventory=await self.node.queues.run(queue_of(msg.uuid), run))

    @handles(ChangeHostConnectionStateMsg)
    async def change_connection_state(self, msg: ChangeHostConnectionStateMsg) -> ChangeHostConnectionStateReply:
        inventory = await self.node.queues.run(queue_of(msg.uuid),
                                               lambda: self._change_status(msg.uuid, msg.connectionStateEvent))
        return ChangeHostConnectionStateReply(inventory=inventory)

    @staticmethod
    def _check_not_in_maintenance(host: HostInventory) -> None:
        # ZStack's HostBase.checkState.
        if host.state in MAINTENANCE_STATES:
            raise OperationError.of(SysErrors.OPERATION_ERROR,
                                    f"host[uuid:{host.uuid}, name:{host.name}] is in state[{host.state}], "
                                    "cannot perform required operation")

    async def _reconnect(self, host_uuid: str) -> HostInventory:
        host = await self._change_status(host_uuid, CONNECTING)
        factory = self.factories.get(host.hypervisorType)
        try:
            if factory is None:
                raise OperationError.of(SysErrors.OPERATION_ERROR,
                                        f"hypervisor type {host.hypervisorType} is not supported by this "
                                        "management node")
            await factory.connect(self.node, host_uuid)
        except Exception as exc:
            await self._change_status(host_uuid, DISCONNECTED)
            raise _host_error(UNABLE_TO_RECONNECT_HOST, "unable to reconnect host", exc) from exc
        return await self._change_status(host_uuid, CONNECTED)

    async def _change_status(self, host_uuid: str, event: str) -> HostInventory:
        """Apply a HostStatusEvent; broadcast HostStatusChangedEvent if the status changed."""

        def store(session: Session) -> tuple[str, HostInventory]:
            vo = find_host(session, host_uuid)
            before = vo.status
            vo.status = HOST_STATUS_MACHINE.next_state(before, event)
            session.flush()
            return before, HostInventory.from_vo(vo)

        before, inventory = await self.node.db.run(store)
        if before != inventory.status:
            log.info("host %s: status %s -> %s", host_uuid, before, inventory.status)
            try:
                await self.node.bus.publish(HostStatusChangedEvent(
                    hostUuid=host_uuid, oldStatus=before, newStatus=inventory.status, inventory=inventory))
            except Exception:
                # The status is stored; only the notification is lost.
                log.exception("could not announce the status change of host %s", host_uuid)
            for hook in self._hooks("after_status_changed"):
                try:
                    await hook(inventory, before)
                except Exception:
                    log.exception("extension %r failed after host %s became %s", hook, host_uuid,
                                  inventory.status)
        return inventory

    # -- deleting ----------------------------------------------------------------------

    @handles(APIDeleteHostMsg)
    async def delete_host(self, msg: APIDeleteHostMsg) -> APIDeleteHostEvent:
        async def run() -> None:
            state = await self.node.db.run(
                lambda s: s.scalar(select(HostVO.state).where(HostVO.uuid == msg.uuid)))
            if state is None:
                return  # already gone: deleting succeeds, as in ZStack
            # ZStack disables the host first, so nothing new lands on it meanwhile.
            if state == HOST_ENABLED:
                await self._store_state(msg.uuid, HOST_DISABLED)
            try:
                await self.node.cascade.delete(HostVO.__tablename__, [msg.uuid], mode=msg.deleteMode,
                                               request=msg)
            except OperationError:
                if state == HOST_ENABLED:
                    await self._restore_state(msg.uuid, HOST_ENABLED)
                raise
            log.info("deleted host %s (%s mode)", msg.uuid, msg.deleteMode)

        await self.node.queues.run(queue_of(msg.uuid), run)
        return APIDeleteHostEvent()

    async def _restore_state(self, host_uuid: str, state: str) -> None:
        # A refused deletion leaves no trace: the host gets its state back if it is still there.
        try:
            await self._store_state(host_uuid, state)
        except OperationError:
            pass
