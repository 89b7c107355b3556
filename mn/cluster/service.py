"""The cluster service: create, update, enable/disable and delete clusters.

Operations on one cluster run on the MN that owns the cluster on the ring
(the APIs are routed by ``uuid``) and, there, one at a time in the work
queue ``cluster-<uuid>``. Clusters follow their zone's state changes
(:mod:`mn.cluster.zone_extension`) and go with their zone in cascades.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from mn.api.resource import persist_new
from mn.cluster.extensions import ClusterStateExtension
from mn.cluster.inventory import ClusterInventory
from mn.cluster.messages import (
    SERVICE_ID,
    APIChangeClusterStateEvent,
    APIChangeClusterStateMsg,
    APICreateClusterEvent,
    APICreateClusterMsg,
    APIDeleteClusterEvent,
    APIDeleteClusterMsg,
    APIUpdateClusterEvent,
    APIUpdateClusterMsg,
    ChangeClusterStateMsg,
    ChangeClusterStateReply,
)
from mn.cluster.zone_extension import ClusterZoneExtension
from mn.db.models.cluster import ZSTACK_CLUSTER_TYPE, ClusterVO
from mn.db.models.zone import ZoneVO
from mn.errors import OperationError, SysErrors, error
from mn.service import Service, handles, intercepts
from mn.zone.cascade import TableCascade
from mn.zone.messages import SERVICE_ID as ZONE_SERVICE_ID
from mn.zone.service import zone_not_found
from mn.zone.state import ENABLED, enable_disable

if TYPE_CHECKING:
    from mn.node import ManagementNode

log = logging.getLogger(__name__)

#: ZStack's ClusterState / ClusterStateEvent machine (compute's AbstractCluster).
CLUSTER_STATE_MACHINE = enable_disable("cluster")


def queue_of(cluster_uuid: str) -> str:
    """The work queue in which one cluster's operations run one at a time."""
    return f"cluster-{cluster_uuid}"


def find_cluster(session: Session, cluster_uuid: str) -> ClusterVO:
    """The cluster's row; RESOURCE_NOT_FOUND if there is none."""
    vo = session.get(ClusterVO, cluster_uuid)
    if vo is None:
        raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                                f"unable to find cluster[uuid:{cluster_uuid}], it may have been deleted")
    return vo


class ClusterService(Service):
    """ZStack's ClusterManager and ClusterBase."""

    SERVICE_ID = SERVICE_ID

    def __init__(self, node: "ManagementNode"):
        super().__init__(node)
        self._state_extensions: list[ClusterStateExtension] = []
        #: Cluster types this MN can create; a plugin adds its own (ZStack's ClusterFactory types).
        self.cluster_types: set[str] = {ZSTACK_CLUSTER_TYPE}

    def add_state_extension(self, extension: ClusterStateExtension) -> None:
        """Have ``extension`` take part in every cluster state change on this MN."""
        self._state_extensions.append(extension)

    async def start(self) -> None:
        self.node.cascade.register(TableCascade(ClusterVO, {ZoneVO.__tablename__: "zoneUuid"}))
        zones = self.node.services.get(ZONE_SERVICE_ID)
        if zones is not None:
            zones.add_state_extension(ClusterZoneExtension(self))

    # -- reading -------------------------------------------------------------------

    async def get_inventory(self, cluster_uuid: str) -> ClusterInventory:
        """The cluster's inventory; RESOURCE_NOT_FOUND if there is no such cluster."""
        return await self.node.db.run(lambda s: ClusterInventory.from_vo(find_cluster(s, cluster_uuid)))

    async def clusters_of_zone(self, zone_uuid: str) -> list[ClusterInventory]:
        def read(session: Session) -> list[ClusterInventory]:
            rows = session.scalars(select(ClusterVO).where(ClusterVO.zoneUuid == zone_uuid)
                                   .order_by(ClusterVO.createDate, ClusterVO.uuid))
            return [ClusterInventory.from_vo(vo) for vo in rows]

        return await self.node.db.run(read)

    async def ask_extensions(self, cluster: ClusterInventory, event: str) -> str:
        """Run every extension's ``pre_change``; return the state ``event`` leads to.

        Raises the refusal (an OperationError) of the first extension that refuses.
        """
        next_state = CLUSTER_STATE_MACHINE.next_state(cluster.state, event)
        for extension in list(self._state_extensions):
            await extension.pre_change(cluster, event, next_state)
        return next_state

    # -- APIs ------------------------------------------------------------------------

    @intercepts(APICreateClusterMsg)
    async def check_create(self, msg: APICreateClusterMsg) -> None:
        self._check_type(msg)

    @handles(APICreateClusterMsg)
    async def create_cluster(self, msg: APICreateClusterMsg) -> APICreateClusterEvent:
        cluster_type = self._check_type(msg)

        def create(session: Session) -> ClusterInventory:
            # A shared lock on the zone: a zone deletion cannot pass between
            # this check and our insert (it waits, then finds our cluster).
            zone = session.scalars(select(ZoneVO.uuid).where(ZoneVO.uuid == msg.zoneUuid)
                                   .with_for_update(read=True)).first()
            if zone is None:
                raise zone_not_found(msg.zoneUuid)
            if msg.resourceUuid and session.get(ClusterVO, msg.resourceUuid) is not None:
                raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                        f"a cluster with uuid {msg.resourceUuid} already exists")
            vo = ClusterVO(name=msg.name, description=msg.description, zoneUuid=msg.zoneUuid,
                           type=cluster_type, state=ENABLED, hypervisorType=msg.hypervisorType,
                           architecture=msg.architecture, managementNodeId=self.node.uuid)
            persist_new(self.node, session, vo, msg, ClusterVO.__tablename__)
            return ClusterInventory.from_vo(vo)

        inventory = await self.node.db.run(create)
        log.info("created cluster %s (%s) in zone %s", inventory.uuid, inventory.name, inventory.zoneUuid)
        return APICreateClusterEvent(inventory=inventory)

    @handles(APIUpdateClusterMsg)
    async def update_cluster(self, msg: APIUpdateClusterMsg) -> APIUpdateClusterEvent:
        def change(session: Session) -> ClusterInventory:
            vo = find_cluster(session, msg.uuid)
            if msg.name is not None:
                vo.name = msg.name
            if msg.description is not None:
                vo.description = msg.description
            session.flush()
            return ClusterInventory.from_vo(vo)

        inventory = await self.node.queues.run(queue_of(msg.uuid), lambda: self.node.db.run(change))
        return APIUpdateClusterEvent(inventory=inventory)

    @handles(APIChangeClusterStateMsg)
    async def change_cluster_state(self, msg: APIChangeClusterStateMsg) -> APIChangeClusterStateEvent:
        async def run() -> ClusterInventory:
            cluster = await self.get_inventory(msg.uuid)
            try:
                next_state = await self.ask_extensions(cluster, msg.stateEvent)
            except OperationError as exc:
                if exc.error.code == SysErrors.CHANGE_RESOURCE_STATE_ERROR.value:
                    raise
                raise OperationError(error(
                    SysErrors.CHANGE_RESOURCE_STATE_ERROR,
                    f"cannot {msg.stateEvent} cluster[uuid:{msg.uuid}]: "
                    f"{exc.error.details or exc.error.description}", exc.error)) from exc
            return await self._change_state(cluster, msg.stateEvent, next_state)

        return APIChangeClusterStateEvent(inventory=await self.node.queues.run(queue_of(msg.uuid), run))

    @handles(ChangeClusterStateMsg)
    async def follow_zone_state(self, msg: ChangeClusterStateMsg) -> ChangeClusterStateReply:
        async def run() -> ClusterInventory:
            cluster = await self.get_inventory(msg.uuid)
            next_state = CLUSTER_STATE_MACHINE.next_state(cluster.state, msg.stateEvent)
            return await self._change_state(cluster, msg.stateEvent, next_state)

        return ChangeClusterStateReply(inventory=await self.node.queues.run(queue_of(msg.uuid), run))

    @handles(APIDeleteClusterMsg)
    async def delete_cluster(self, msg: APIDeleteClusterMsg) -> APIDeleteClusterEvent:
        async def run() -> None:
            exists = await self.node.db.run(lambda s: s.get(ClusterVO, msg.uuid) is not None)
            if not exists:
                return  # already gone: deleting succeeds, as in ZStack
            await self.node.cascade.delete(ClusterVO.__tablename__, [msg.uuid],
                                           mode=msg.deleteMode, request=msg)
            log.info("deleted cluster %s (%s mode)", msg.uuid, msg.deleteMode)

        await self.node.queues.run(queue_of(msg.uuid), run)
        return APIDeleteClusterEvent()

    # -- internals ---------------------------------------------------------------------

    def _check_type(self, msg: APICreateClusterMsg) -> str:
        cluster_type = msg.type or ZSTACK_CLUSTER_TYPE
        if cluster_type not in self.cluster_types:
            raise OperationError.of(
                SysErrors.INVALID_ARGUMENT_ERROR,
                f"cluster type {cluster_type} is not supported by this management node: "
                f"it can create {', '.join(sorted(self.cluster_types))}")
        return cluster_type

    async def _change_state(self, cluster: ClusterInventory, event: str, next_state: str) -> ClusterInventory:
        for extension in list(self._state_extensions):
            await _tolerant(extension.before_change(cluster, event, next_state), extension, cluster.uuid)

        def store(session: Session) -> ClusterInventory:
            vo = find_cluster(session, cluster.uuid)
            vo.state = next_state
            session.flush()
            return ClusterInventory.from_vo(vo)

        changed = await self.node.db.run(store)
        for extension in list(self._state_extensions):
            await _tolerant(extension.after_change(changed, event, cluster.state), extension, cluster.uuid)
        log.info("cluster %s: %s -> %s by event %s", cluster.uuid, cluster.state, changed.state, event)
        return changed


async def _tolerant(call, extension: ClusterStateExtension, cluster_uuid: str) -> None:
    # Past pre_change nothing may stop the change: a failing extension is logged.
    try:
        await call
    except Exception:
        log.exception("cluster state extension %r failed for cluster %s; the change goes on",
                      extension, cluster_uuid)
