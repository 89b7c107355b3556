"""The L3 network service: L3 networks, their IP ranges and DNS servers, and
the read-only address APIs (free IPs, availability, capacity).

Operations on one L3 network run on the MN that owns it on the ring and,
there, one at a time in the work queue ``l3-network-<uuid>``. What must
hold across MNs is held by the database: new ranges are checked against
the others under an exclusive lock on their L2 network's row, DNS servers
and used addresses have unique constraints. Addresses are allocated by
:mod:`mn.network.ipam`, not through this service.
"""

from __future__ import annotations

import ipaddress
import logging

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mn.api.resource import persist_new
from mn.db.models.network import IpRangeVO, L2NetworkVO, L3NetworkDnsVO, L3NetworkVO
from mn.errors import OperationError, SysErrors
from mn.network.ipv4 import invalid, to_int
from mn.network.l2.service import l2_not_found
from mn.network.l3 import addresses
from mn.network.l3.inventory import IpRangeInventory, L3NetworkInventory, l3_inventory
from mn.network.l3.messages import (
    SERVICE_ID,
    APIAddDnsToL3NetworkEvent,
    APIAddDnsToL3NetworkMsg,
    APIAddIpRangeByNetworkCidrEvent,
    APIAddIpRangeByNetworkCidrMsg,
    APIAddIpRangeEvent,
    APIAddIpRangeMsg,
    APIChangeL3NetworkStateEvent,
    APIChangeL3NetworkStateMsg,
    APICheckIpAvailabilityMsg,
    APICheckIpAvailabilityReply,
    APICreateL3NetworkEvent,
    APICreateL3NetworkMsg,
    APIDeleteIpRangeEvent,
    APIDeleteIpRangeMsg,
    APIDeleteL3NetworkEvent,
    APIDeleteL3NetworkMsg,
    APIGetFreeIpMsg,
    APIGetFreeIpReply,
    APIGetIpAddressCapacityMsg,
    APIGetIpAddressCapacityReply,
    APIRemoveDnsFromL3NetworkEvent,
    APIRemoveDnsFromL3NetworkMsg,
    APIUpdateIpRangeEvent,
    APIUpdateIpRangeMsg,
    APIUpdateL3NetworkEvent,
    APIUpdateL3NetworkMsg,
)
from mn.network.l3.ranges import check_against_existing, lock_for_new_ranges, new_range_row, requested_ranges
from mn.service import Service, handles, intercepts
from mn.zone.cascade import TableCascade
from mn.zone.state import ENABLED, enable_disable

log = logging.getLogger(__name__)

#: ZStack's L3NetworkState / L3NetworkStateEvent machine.
L3_STATE_MACHINE = enable_disable("l3Network")


def queue_of(l3_network_uuid: str) -> str:
    """The work queue in which one L3 network's operations run one at a time."""
    return f"l3-network-{l3_network_uuid}"


def l3_not_found(l3_network_uuid: str) -> OperationError:
    return OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                             f"unable to find L3 network[uuid:{l3_network_uuid}], it may have been deleted")


def find_l3(session: Session, l3_network_uuid: str) -> L3NetworkVO:
    """The L3 network's row; RESOURCE_NOT_FOUND if there is none."""
    vo = session.get(L3NetworkVO, l3_network_uuid)
    if vo is None:
        raise l3_not_found(l3_network_uuid)
    return vo


def find_ip_range(session: Session, ip_range_uuid: str) -> IpRangeVO:
    vo = session.get(IpRangeVO, ip_range_uuid)
    if vo is None:
        raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                                f"unable to find IP range[uuid:{ip_range_uuid}], it may have been deleted")
    return vo


def dns_address(dns: str) -> str:
    """``dns`` in canonical form; SYS.1007 unless it is an IP address (v4 or v6, as ZStack allows)."""
    try:
        return str(ipaddress.ip_address(dns))
    except ValueError:
        raise invalid(f"dns[{dns}] is not a IP address") from None


def _dns_exists(dns: str, l3_network_uuid: str) -> OperationError:
    return OperationError.of(SysErrors.OPERATION_ERROR,
                             f"there has been a DNS[{dns}] on L3 network[uuid:{l3_network_uuid}]")


class L3NetworkService(Service):
    """ZStack's L3NetworkManager and L3BasicNetwork."""

    SERVICE_ID = SERVICE_ID

    async def start(self) -> None:
        # Leaves first: an L2 network's L3 networks, then their ranges. DNS
        # servers and used addresses go with their rows (foreign key cascades);
        # VM nics on them hang under L3NetworkVO / IpRangeVO in the VM service.
        self.node.cascade.register(TableCascade(L3NetworkVO, {L2NetworkVO.__tablename__: "l2NetworkUuid"}))
        self.node.cascade.register(TableCascade(IpRangeVO, {L3NetworkVO.__tablename__: "l3NetworkUuid"}))

    async def get_inventory(self, l3_network_uuid: str) -> L3NetworkInventory:
        """The L3 network's inventory; RESOURCE_NOT_FOUND if there is none."""
        return await self.node.db.run(lambda s: l3_inventory(s, find_l3(s, l3_network_uuid)))

    async def _in_queue(self, l3_network_uuid: str, fn):
        """Run ``fn(session)`` in one transaction, in the L3 network's queue."""
        return await self.node.queues.run(queue_of(l3_network_uuid), lambda: self.node.db.run(fn))

    # -- L3 networks -------------------------------------------------------------------

    @intercepts(APICreateL3NetworkMsg)
    async def check_create(self, msg: APICreateL3NetworkMsg) -> None:
        if not await self.node.db.run(lambda s: s.get(L2NetworkVO, msg.l2NetworkUuid) is not None):
            raise l2_not_found(msg.l2NetworkUuid)

    @handles(APICreateL3NetworkMsg)
    async def create_l3_network(self, msg: APICreateL3NetworkMsg) -> APICreateL3NetworkEvent:
        def create(session: Session) -> L3NetworkInventory:
            # A shared lock on the L2 network: its deletion cannot pass between
            # this check and our insert (it waits, then finds our network).
            l2 = session.scalars(select(L2NetworkVO).where(L2NetworkVO.uuid == msg.l2NetworkUuid)
                                 .with_for_update(read=True)).first()
            if l2 is None:
                raise l2_not_found(msg.l2NetworkUuid)
            vo = L3NetworkVO(name=msg.name, description=msg.description, type=msg.type, zoneUuid=l2.zoneUuid,
                             l2NetworkUuid=l2.uuid, state=ENABLED, system=msg.system, dnsDomain=msg.dnsDomain,
                             ipVersion=4, enableIPAM=msg.enableIPAM, isolated=l2.isolated, category=msg.category)
            persist_new(self.node, session, vo, msg, L3NetworkVO.__tablename__)
            return l3_inventory(session, vo)

        inventory = await self.node.db.run(create)
        log.info("created L3 network %s (%s) on L2 network %s", inventory.uuid, inventory.name,
                 inventory.l2NetworkUuid)
        return APICreateL3NetworkEvent(inventory=inventory)

    @handles(APIUpdateL3NetworkMsg)
    async def update_l3_network(self, msg: APIUpdateL3NetworkMsg) -> APIUpdateL3NetworkEvent:
        def change(session: Session) -> L3NetworkInventory:
            vo = find_l3(session, msg.uuid)
            if msg.system is not None and msg.category is None and msg.system != vo.system:
                raise invalid("you must update system and category both")
            if msg.category is not None:
                system = vo.system if msg.system is None else msg.system
                if system != (msg.category == "System"):
                    raise invalid("not valid combination of system and category, only {true=[System], "
                                  "false=[Public, Private]} are valid")
                vo.system, vo.category = system, msg.category
            for field in ("name", "description", "dnsDomain"):
                if getattr(msg, field) is not None:
                    setattr(vo, field, getattr(msg, field))
            session.flush()
            return l3_inventory(session, vo)

        return APIUpdateL3NetworkEvent(inventory=await self._in_queue(msg.uuid, change))

    @handles(APIChangeL3NetworkStateMsg)
    async def change_l3_network_state(self, msg: APIChangeL3NetworkStateMsg) -> APIChangeL3NetworkStateEvent:
        def change(session: Session) -> L3NetworkInventory:
            vo = find_l3(session, msg.uuid)
            previous = vo.state
            vo.state = L3_STATE_MACHINE.next_state(vo.state, msg.stateEvent)
            session.flush()
            log.info("L3 network %s: %s -> %s by event %s", vo.uuid, previous, vo.state, msg.stateEvent)
            return l3_inventory(session, vo)

        return APIChangeL3NetworkStateEvent(inventory=await self._in_queue(msg.uuid, change))

    @handles(APIDeleteL3NetworkMsg)
    async def delete_l3_network(self, msg: APIDeleteL3NetworkMsg) -> APIDeleteL3NetworkEvent:
        async def run() -> None:
            exists = await self.node.db.run(lambda s: s.get(L3NetworkVO, msg.uuid) is not None)
            if not exists:
                return  # already gone: deleting succeeds, as in ZStack
            deleted = await self.node.cascade.delete(L3NetworkVO.__tablename__, [msg.uuid],
                                                     mode=msg.deleteMode, request=msg)
            log.info("deleted L3 network %s (%s mode) and %s", msg.uuid, msg.deleteMode,
                     {t: len(u) for t, u in deleted.items() if t != L3NetworkVO.__tablename__} or "nothing on it")

        await self.node.queues.run(queue_of(msg.uuid), run)
        return APIDeleteL3NetworkEvent()

    # -- IP ranges ---------------------------------------------------------------------

    @intercepts(APIAddIpRangeMsg, APIAddIpRangeByNetworkCidrMsg)
    async def check_add_ip_range(self, msg: APIAddIpRangeMsg | APIAddIpRangeByNetworkCidrMsg) -> None:
        spans = requested_ranges(msg)
        await self.node.db.run(lambda s: check_against_existing(s, find_l3(s, msg.l3NetworkUuid), spans))

    @handles(APIAddIpRangeMsg)
    async def add_ip_range(self, msg: APIAddIpRangeMsg) -> APIAddIpRangeEvent:
        [inventory] = await self._add_ranges(msg)
        return APIAddIpRangeEvent(inventory=inventory)

    @handles(APIAddIpRangeByNetworkCidrMsg)
    async def add_ip_range_by_cidr(self, msg: APIAddIpRangeByNetworkCidrMsg) -> APIAddIpRangeByNetworkCidrEvent:
        inventories = await self._add_ranges(msg)
        return APIAddIpRangeByNetworkCidrEvent(inventory=inventories[0], inventories=inventories)

    async def _add_ranges(self, msg: APIAddIpRangeMsg | APIAddIpRangeByNetworkCidrMsg) -> list[IpRangeInventory]:
        spans = requested_ranges(msg)

        def add(session: Session) -> list[IpRangeInventory]:
            l3 = lock_for_new_ranges(session, msg.l3NetworkUuid)
            check_against_existing(session, l3, spans)
            inventories = []
            for index, span in enumerate(spans):
                row = new_range_row(l3, span, msg.name, msg.description)
                # The chosen resourceUuid (and the tags) go to the first range;
                # a second range (a gateway in the middle of a CIDR) gets its own uuid.
                persist_new(self.node, session, row, msg if index == 0 else msg.model_copy(
                    update={"resourceUuid": None}), IpRangeVO.__tablename__)
                inventories.append(IpRangeInventory.from_vo(row))
            return inventories

        inventories = await self._in_queue(msg.l3NetworkUuid, add)
        log.info("added IP ranges %s to L3 network %s",
                 ", ".join(f"{i.startIp}-{i.endIp}" for i in inventories), msg.l3NetworkUuid)
        return inventories

    @handles(APIUpdateIpRangeMsg)
    async def update_ip_range(self, msg: APIUpdateIpRangeMsg) -> APIUpdateIpRangeEvent:
        def change(session: Session) -> IpRangeInventory:
            vo = find_ip_range(session, msg.uuid)
            if msg.name is not None:
                vo.name = msg.name
            if msg.description is not None:
                vo.description = msg.description
            session.flush()
            return IpRangeInventory.from_vo(vo)

        l3_uuid = await self.node.db.run(lambda s: find_ip_range(s, msg.uuid).l3NetworkUuid)
        return APIUpdateIpRangeEvent(inventory=await self._in_queue(l3_uuid, change))

    @handles(APIDeleteIpRangeMsg)
    async def delete_ip_range(self, msg: APIDeleteIpRangeMsg) -> APIDeleteIpRangeEvent:
        row = await self.node.db.run(lambda s: s.get(IpRangeVO, msg.uuid))
        if row is None:
            return APIDeleteIpRangeEvent()  # already gone: deleting succeeds, as in ZStack

        async def run() -> None:
            await self.node.cascade.delete(IpRangeVO.__tablename__, [msg.uuid], mode=msg.deleteMode, request=msg)
            log.info("deleted IP range %s (%s-%s) of L3 network %s", row.uuid, row.startIp, row.endIp,
                     row.l3NetworkUuid)

        await self.node.queues.run(queue_of(row.l3NetworkUuid), run)
        return APIDeleteIpRangeEvent()

    # -- DNS -------------------------------------------------------------------------------

    @intercepts(APIAddDnsToL3NetworkMsg)
    async def check_add_dns(self, msg: APIAddDnsToL3NetworkMsg) -> None:
        dns = dns_address(msg.dns)

        def check(session: Session) -> None:
            if session.scalars(select(L3NetworkDnsVO.id).where(L3NetworkDnsVO.l3NetworkUuid == msg.l3NetworkUuid,
                                                               L3NetworkDnsVO.dns == dns)).first() is not None:
                raise _dns_exists(msg.dns, msg.l3NetworkUuid)

        await self.node.db.run(check)

    @handles(APIAddDnsToL3NetworkMsg)
    async def add_dns(self, msg: APIAddDnsToL3NetworkMsg) -> APIAddDnsToL3NetworkEvent:
        dns = dns_address(msg.dns)

        def add(session: Session) -> L3NetworkInventory:
            vo = find_l3(session, msg.l3NetworkUuid)
            session.add(L3NetworkDnsVO(l3NetworkUuid=vo.uuid, dns=dns))
            session.flush()
            return l3_inventory(session, vo)

        try:
            inventory = await self._in_queue(msg.l3NetworkUuid, add)
        except IntegrityError:
            raise _dns_exists(msg.dns, msg.l3NetworkUuid) from None  # UNIQUE (l3NetworkUuid, dns)
        return APIAddDnsToL3NetworkEvent(inventory=inventory)

    @handles(APIRemoveDnsFromL3NetworkMsg)
    async def remove_dns(self, msg: APIRemoveDnsFromL3NetworkMsg) -> APIRemoveDnsFromL3NetworkEvent:
        try:
            dns = dns_address(msg.dns)
        except OperationError:
            dns = msg.dns  # not an address: it cannot be on the network, nothing to remove

        def remove(session: Session) -> L3NetworkInventory | None:
            vo = find_l3(session, msg.l3NetworkUuid)
            removed = session.execute(delete(L3NetworkDnsVO).where(L3NetworkDnsVO.l3NetworkUuid == vo.uuid,
                                                                   L3NetworkDnsVO.dns == dns),
                                      execution_options={"synchronize_session": False}).rowcount
            # ZStack answers without inventory when the DNS server was not there.
            return l3_inventory(session, vo) if removed else None

        return APIRemoveDnsFromL3NetworkEvent(inventory=await self._in_queue(msg.l3NetworkUuid, remove))

    # -- addresses ---------------------------------------------------------------------------

    @intercepts(APIGetFreeIpMsg)
    async def check_get_free_ip(self, msg: APIGetFreeIpMsg) -> None:
        if msg.start is not None:
            try:
                to_int(msg.start, "start")
            except OperationError as exc:
                raise invalid(f"could not get free ip with start[ip:{msg.start}], because {exc.error.details}") from None

    @handles(APIGetFreeIpMsg)
    async def get_free_ip(self, msg: APIGetFreeIpMsg) -> APIGetFreeIpReply:
        return APIGetFreeIpReply(inventories=await self.node.db.run(addresses.free_ips, msg))

    @intercepts(APICheckIpAvailabilityMsg)
    async def check_check_ip_availability(self, msg: APICheckIpAvailabilityMsg) -> None:
        to_int(msg.ip, "ip")

    @handles(APICheckIpAvailabilityMsg)
    async def check_ip_availability(self, msg: APICheckIpAvailabilityMsg) -> APICheckIpAvailabilityReply:
        return await self.node.db.run(addresses.check_availability, msg.l3NetworkUuid, msg.ip, msg.ipRangeCheck)

    @handles(APIGetIpAddressCapacityMsg)
    async def get_ip_address_capacity(self, msg: APIGetIpAddressCapacityMsg) -> APIGetIpAddressCapacityReply:
        return await self.node.db.run(addresses.capacity, msg)
