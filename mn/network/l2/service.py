"""The L2 network service: create, update, attach to and detach from clusters, delete.

Operations on one L2 network run on the MN that owns it on the ring (the
APIs are routed by its uuid) and, there, one at a time in the work queue
``l2-network-<uuid>``. Attachments of one cluster are serialised across MNs
by an exclusive lock on the cluster's row, so two L2 networks on one
physical interface (or one VLAN) never both get attached to it.

Simulator and KVM hosts need nothing realized here: an attachment is its
row (hosts of the cluster reach the network once it exists).
"""

from __future__ import annotations

import logging
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mn.api.resource import persist_new
from mn.db.models.cluster import ClusterVO
from mn.db.models.network import L2NetworkClusterRefVO, L2NetworkVO, L2VlanNetworkVO
from mn.db.models.zone import ZoneVO
from mn.errors import OperationError, SysErrors
from mn.network.l2.inventory import L2NetworkInventory, l2_inventory
from mn.network.l2.messages import (
    SERVICE_ID,
    APIAttachL2NetworkToClusterEvent,
    APIAttachL2NetworkToClusterMsg,
    APICreateL2NetworkEvent,
    APICreateL2NetworkMsg,
    APICreateL2NoVlanNetworkMsg,
    APICreateL2VlanNetworkEvent,
    APICreateL2VlanNetworkMsg,
    APIDeleteL2NetworkEvent,
    APIDeleteL2NetworkMsg,
    APIDetachL2NetworkFromClusterEvent,
    APIDetachL2NetworkFromClusterMsg,
    APIUpdateL2NetworkEvent,
    APIUpdateL2NetworkMsg,
)
from mn.network.l2.vms import vms_using_l2_in_cluster
from mn.service import Service, handles, intercepts
from mn.zone.cascade import TableCascade
from mn.zone.service import zone_not_found

log = logging.getLogger(__name__)

#: VM uuids named in a refusal before it abbreviates.
_VMS_SHOWN = 5


def queue_of(l2_network_uuid: str) -> str:
    """The work queue in which one L2 network's operations run one at a time."""
    return f"l2-network-{l2_network_uuid}"


def l2_not_found(l2_network_uuid: str) -> OperationError:
    return OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                             f"unable to find L2 network[uuid:{l2_network_uuid}], it may have been deleted")


def find_l2(session: Session, l2_network_uuid: str) -> L2NetworkVO:
    """The L2 network's row (an L2VlanNetworkVO for VLAN networks); RESOURCE_NOT_FOUND if none."""
    vo = session.get(L2NetworkVO, l2_network_uuid)
    if vo is None:
        raise l2_not_found(l2_network_uuid)
    return vo


def _attachment(session: Session, l2_network_uuid: str, cluster_uuid: str) -> L2NetworkClusterRefVO | None:
    return session.scalars(select(L2NetworkClusterRefVO).where(
        L2NetworkClusterRefVO.l2NetworkUuid == l2_network_uuid,
        L2NetworkClusterRefVO.clusterUuid == cluster_uuid)).first()


def _already_attached(l2_network_uuid: str, cluster_uuid: str) -> OperationError:
    return OperationError.of(SysErrors.OPERATION_ERROR,
                             f"l2Network[uuid:{l2_network_uuid}] has attached to cluster[uuid:{cluster_uuid}], "
                             f"can't attach again")


def _check_attachable(session: Session, l2: L2NetworkVO, cluster: ClusterVO) -> None:
    """ZStack's rules for attaching ``l2`` to ``cluster`` (the cluster's row must be locked
    by the caller for the answer to hold until it commits)."""
    if _attachment(session, l2.uuid, cluster.uuid) is not None:
        raise _already_attached(l2.uuid, cluster.uuid)
    if l2.zoneUuid != cluster.zoneUuid:
        raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                f"l2Network[uuid:{l2.uuid}] is in zone[uuid:{l2.zoneUuid}] but cluster"
                                f"[uuid:{cluster.uuid}] is in zone[uuid:{cluster.zoneUuid}]; an L2 network "
                                f"can only be attached to clusters of its zone")
    attached = session.scalars(
        select(L2NetworkVO).join(L2NetworkClusterRefVO, L2NetworkClusterRefVO.l2NetworkUuid == L2NetworkVO.uuid)
        .where(L2NetworkClusterRefVO.clusterUuid == cluster.uuid,
               L2NetworkVO.physicalInterface == l2.physicalInterface)).all()
    for other in attached:
        if other.vSwitchType != l2.vSwitchType:
            raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                    f"could not attach l2 network, because there is another network "
                                    f"[uuid:{other.uuid}] on physical interface [{l2.physicalInterface}] with "
                                    f"different vswitch type")
        if not isinstance(l2, L2VlanNetworkVO) and not isinstance(other, L2VlanNetworkVO):
            raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                    f"There has been a l2Network[uuid:{other.uuid}, name:{other.name}] attached to "
                                    f"cluster[uuid:{cluster.uuid}] that has physical interface"
                                    f"[{other.physicalInterface}]. Failed to attach l2Network[uuid:{l2.uuid}]")
        if (isinstance(l2, L2VlanNetworkVO) and isinstance(other, L2VlanNetworkVO)
                and other.vlan == l2.vlan):
            raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                    f"There has been a L2VlanNetwork[uuid:{other.uuid}, name:{other.name}] attached "
                                    f"to cluster[uuid:{cluster.uuid}] that has physical interface"
                                    f"[{other.physicalInterface}], vlan[{other.vlan}]. Failed to attach "
                                    f"L2VlanNetwork[uuid:{l2.uuid}]")


def _check_detachable(session: Session, l2_network_uuid: str, cluster_uuid: str) -> L2NetworkClusterRefVO:
    ref = _attachment(session, l2_network_uuid, cluster_uuid)
    if ref is None:
        raise OperationError.of(SysErrors.OPERATION_ERROR,
                                f"l2Network[uuid:{l2_network_uuid}] has not attached to cluster[uuid:{cluster_uuid}]")
    vms = vms_using_l2_in_cluster(session, l2_network_uuid, cluster_uuid)
    if vms:
        shown = ", ".join(vms[:_VMS_SHOWN]) + (f", ... ({len(vms)} in all)" if len(vms) > _VMS_SHOWN else "")
        raise OperationError.of(SysErrors.OPERATION_ERROR,
                                f"cannot detach l2Network[uuid:{l2_network_uuid}] from cluster[uuid:{cluster_uuid}]: "
                                f"VM instances of the cluster have nics on its L3 networks: {shown}; stop and "
                                f"migrate or delete them first")
    return ref


class L2NetworkService(Service):
    """ZStack's L2NetworkManager and L2NoVlanNetwork/L2VlanNetwork."""

    SERVICE_ID = SERVICE_ID

    async def start(self) -> None:
        # Deleting a zone deletes its L2 networks (their attachments and VLAN rows go with them).
        self.node.cascade.register(TableCascade(L2NetworkVO, {ZoneVO.__tablename__: "zoneUuid"}))

    async def get_inventory(self, l2_network_uuid: str) -> L2NetworkInventory:
        """The L2 network's inventory; RESOURCE_NOT_FOUND if there is none."""
        return await self.node.db.run(lambda s: l2_inventory(s, find_l2(s, l2_network_uuid)))

    # -- APIs ------------------------------------------------------------------------

    @handles(APICreateL2NoVlanNetworkMsg, APICreateL2VlanNetworkMsg)
    async def create_l2_network(self, msg: APICreateL2NetworkMsg) -> APICreateL2NetworkEvent:
        def create(session: Session) -> L2NetworkInventory:
            # A shared lock on the zone: a zone deletion cannot pass between
            # this check and our insert (it waits, then finds our network).
            zone = session.scalars(select(ZoneVO.uuid).where(ZoneVO.uuid == msg.zoneUuid)
                                   .with_for_update(read=True)).first()
            if zone is None:
                raise zone_not_found(msg.zoneUuid)
            fields = dict(name=msg.name, description=msg.description, zoneUuid=msg.zoneUuid,
                          physicalInterface=msg.physicalInterface, vSwitchType=msg.vSwitchType,
                          isolated=msg.isolated, pvlan=msg.pvlan)
            if isinstance(msg, APICreateL2VlanNetworkMsg):
                vo = L2VlanNetworkVO(vlan=msg.vlan, virtualNetworkId=msg.vlan, **fields)
            else:
                vo = L2NetworkVO(virtualNetworkId=0, **fields)
            persist_new(self.node, session, vo, msg, L2NetworkVO.__tablename__)
            return l2_inventory(session, vo)

        inventory = await self.node.db.run(create)
        log.info("created %s %s (%s) in zone %s", inventory.type, inventory.uuid, inventory.name,
                 inventory.zoneUuid)
        event = APICreateL2VlanNetworkEvent if isinstance(msg, APICreateL2VlanNetworkMsg) else APICreateL2NetworkEvent
        return event(inventory=inventory)

    @handles(APIUpdateL2NetworkMsg)
    async def update_l2_network(self, msg: APIUpdateL2NetworkMsg) -> APIUpdateL2NetworkEvent:
        def change(session: Session) -> L2NetworkInventory:
            vo = find_l2(session, msg.uuid)
            if msg.name is not None:
                vo.name = msg.name
            if msg.description is not None:
                vo.description = msg.description
            session.flush()
            return l2_inventory(session, vo)

        inventory = await self.node.queues.run(queue_of(msg.uuid), lambda: self.node.db.run(change))
        return APIUpdateL2NetworkEvent(inventory=inventory)

    @intercepts(APIAttachL2NetworkToClusterMsg)
    async def check_attach(self, msg: APIAttachL2NetworkToClusterMsg) -> None:
        def check(session: Session) -> None:
            cluster = session.get(ClusterVO, msg.clusterUuid)
            if cluster is not None:
                _check_attachable(session, find_l2(session, msg.l2NetworkUuid), cluster)

        await self.node.db.run(check)

    @handles(APIAttachL2NetworkToClusterMsg)
    async def attach_to_cluster(self, msg: APIAttachL2NetworkToClusterMsg) -> APIAttachL2NetworkToClusterEvent:
        def attach(session: Session) -> L2NetworkInventory:
            l2 = find_l2(session, msg.l2NetworkUuid)
            # Exclusive: attachments to one cluster are checked one at a time on every MN.
            cluster = session.scalars(select(ClusterVO).where(ClusterVO.uuid == msg.clusterUuid)
                                      .with_for_update()).first()
            if cluster is None:
                raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                                        f"unable to find cluster[uuid:{msg.clusterUuid}], it may have been deleted")
            _check_attachable(session, l2, cluster)
            session.add(L2NetworkClusterRefVO(l2NetworkUuid=l2.uuid, clusterUuid=cluster.uuid,
                                              l2ProviderType=msg.l2ProviderType))
            session.flush()
            return l2_inventory(session, l2)

        async def run() -> L2NetworkInventory:
            try:
                return await self.node.db.run(attach)
            except IntegrityError:
                # Only a racing attachment of the same pair gets here (SQLite takes no row locks).
                raise _already_attached(msg.l2NetworkUuid, msg.clusterUuid) from None

        inventory = await self.node.queues.run(queue_of(msg.l2NetworkUuid), run)
        log.info("attached L2 network %s to cluster %s", msg.l2NetworkUuid, msg.clusterUuid)
        return APIAttachL2NetworkToClusterEvent(inventory=inventory)

    @intercepts(APIDetachL2NetworkFromClusterMsg)
    async def check_detach(self, msg: APIDetachL2NetworkFromClusterMsg) -> None:
        await self.node.db.run(_check_detachable, msg.l2NetworkUuid, msg.clusterUuid)

    @handles(APIDetachL2NetworkFromClusterMsg)
    async def detach_from_cluster(self, msg: APIDetachL2NetworkFromClusterMsg) -> APIDetachL2NetworkFromClusterEvent:
        def detach(session: Session) -> L2NetworkInventory:
            l2 = find_l2(session, msg.l2NetworkUuid)
            # The same lock as attaching and as VMs being placed in the cluster would take.
            session.scalars(select(ClusterVO.uuid).where(ClusterVO.uuid == msg.clusterUuid).with_for_update()).first()
            ref = _check_detachable(session, l2.uuid, msg.clusterUuid)
            session.execute(delete(L2NetworkClusterRefVO).where(L2NetworkClusterRefVO.id == ref.id),
                            execution_options={"synchronize_session": False})
            return l2_inventory(session, l2)

        inventory = await self.node.queues.run(queue_of(msg.l2NetworkUuid), lambda: self.node.db.run(detach))
        log.info("detached L2 network %s from cluster %s", msg.l2NetworkUuid, msg.clusterUuid)
        return APIDetachL2NetworkFromClusterEvent(inventory=inventory)

    @handles(APIDeleteL2NetworkMsg)
    async def delete_l2_network(self, msg: APIDeleteL2NetworkMsg) -> APIDeleteL2NetworkEvent:
        async def run() -> None:
            exists = await self.node.db.run(lambda s: s.get(L2NetworkVO, msg.uuid) is not None)
            if not exists:
                return  # already gone: deleting succeeds, as in ZStack
            deleted = await self.node.cascade.delete(L2NetworkVO.__tablename__, [msg.uuid],
                                                     mode=msg.deleteMode, request=msg)
            log.info("deleted L2 network %s (%s mode) and %s", msg.uuid, msg.deleteMode,
                     {t: len(u) for t, u in deleted.items() if t != L2NetworkVO.__tablename__} or "nothing on it")

        await self.node.queues.run(queue_of(msg.uuid), run)
        return APIDeleteL2NetworkEvent()
