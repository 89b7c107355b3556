"""The managementNode service: what MNs are alive and how they see the ring."""

from __future__ import annotations

from datetime import datetime

from mn.api.inventory import Inventory
from mn.api.message import APIQueryMessage, APIQueryReply, query_rest
from mn.bus import Message, Reply
from mn.db.models.management_node import ManagementNodeVO
from mn.service import Service, handles

SERVICE_ID = "managementNode"


class ManagementNodeInventory(Inventory):
    """ZStack's ManagementNodeInventory, plus the port and state of the MN."""

    VO = ManagementNodeVO

    uuid: str
    hostName: str
    port: int
    state: str
    joinDate: datetime
    heartBeat: datetime


class APIQueryManagementNodeReply(APIQueryReply):
    FULL_NAME = "org.zstack.header.managementnode.APIQueryManagementNodeReply"


class APIQueryManagementNodeMsg(APIQueryMessage):
    """ZStack's query of the live MNs, run by the query engine.

    Unlike ZStack it needs no session: load balancers and ``make run``'s
    newcomer probe it for health, and it shows nothing secret.
    """

    FULL_NAME = "org.zstack.header.managementnode.APIQueryManagementNodeMsg"
    SERVICE = SERVICE_ID
    REST = query_rest("/management-nodes")
    RESPONSE = APIQueryManagementNodeReply
    INVENTORY = ManagementNodeInventory
    PUBLIC = True


class GetRingMsg(Message):
    """Ask one MN (send it with ``node=``) for its view of the ring."""

    SERVICE = SERVICE_ID
    resourceUuids: list[str] = []


class GetRingReply(Reply):
    nodeUuid: str = ""
    nodes: list[str] = []
    #: owner of each of the asked resourceUuids, in this MN's view.
    owners: list[str] = []


class ManagementNodeService(Service):
    SERVICE_ID = SERVICE_ID

    @handles(GetRingMsg)
    async def ring(self, msg: GetRingMsg) -> GetRingReply:
        ring = self.node.ring
        return GetRingReply(nodeUuid=self.node.uuid, nodes=list(ring.nodes),
                            owners=[ring.owner(u) for u in msg.resourceUuids])
