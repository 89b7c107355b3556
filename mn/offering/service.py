"""The configuration service: create, update, enable/disable and delete instance
and disk offerings.

Operations on one offering run on the MN that owns it on the ring (the APIs
are routed by ``uuid``) and, there, one at a time in its work queue
(``instance-offering-<uuid>``, ``disk-offering-<uuid>``). Offerings are
roots of cascades: a service whose resources must go (or change) with an
offering registers a cascade extension under ``InstanceOfferingVO`` or
``DiskOfferingVO``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from mn.api.resource import persist_new
from mn.db.models.offering import DiskOfferingVO, InstanceOfferingVO
from mn.errors import OperationError, SysErrors
from mn.host.allocator import HOST_ALLOCATOR_STRATEGIES
from mn.offering import constants as c
from mn.offering.inventory import DiskOfferingInventory, InstanceOfferingInventory
from mn.offering.messages import (
    SERVICE_ID,
    APIChangeDiskOfferingStateEvent,
    APIChangeDiskOfferingStateMsg,
    APIChangeInstanceOfferingStateEvent,
    APIChangeInstanceOfferingStateMsg,
    APICreateDiskOfferingEvent,
    APICreateDiskOfferingMsg,
    APICreateInstanceOfferingEvent,
    APICreateInstanceOfferingMsg,
    APIDeleteDiskOfferingEvent,
    APIDeleteDiskOfferingMsg,
    APIDeleteInstanceOfferingEvent,
    APIDeleteInstanceOfferingMsg,
    APIUpdateDiskOfferingEvent,
    APIUpdateDiskOfferingMsg,
    APIUpdateInstanceOfferingEvent,
    APIUpdateInstanceOfferingMsg,
)
from mn.service import Service, handles, intercepts
from mn.zone.cascade import TableCascade
from mn.zone.state import ENABLED, enable_disable

if TYPE_CHECKING:
    from mn.node import ManagementNode

log = logging.getLogger(__name__)

#: ZStack's InstanceOfferingState and DiskOfferingState machines.
INSTANCE_OFFERING_STATE_MACHINE = enable_disable("instance offering")
DISK_OFFERING_STATE_MACHINE = enable_disable("disk offering")


def instance_offering_queue(uuid: str) -> str:
    return f"instance-offering-{uuid}"


def disk_offering_queue(uuid: str) -> str:
    return f"disk-offering-{uuid}"


def _invalid(details: str) -> OperationError:
    return OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR, details)


def _find(session: Session, model: Any, uuid: str, what: str) -> Any:
    vo = session.get(model, uuid)
    if vo is None:
        raise OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                                f"unable to find {what}[uuid:{uuid}], it may have been deleted")
    return vo


def find_instance_offering(session: Session, uuid: str) -> InstanceOfferingVO:
    """The instance offering's row; RESOURCE_NOT_FOUND if there is none."""
    return _find(session, InstanceOfferingVO, uuid, "instance offering")


def find_disk_offering(session: Session, uuid: str) -> DiskOfferingVO:
    """The disk offering's row; RESOURCE_NOT_FOUND if there is none."""
    return _find(session, DiskOfferingVO, uuid, "disk offering")


class OfferingService(Service):
    """ZStack's ConfigurationManager, InstanceOfferingBase and DiskOfferingBase."""

    SERVICE_ID = SERVICE_ID

    def __init__(self, node: "ManagementNode"):
        super().__init__(node)
        #: What offerings may name; a plugin adds its own (ZStack's registered factories and strategies).
        self.instance_offering_types: set[str] = {c.USER_VM_INSTANCE_OFFERING_TYPE}
        self.host_allocator_strategies: set[str] = set(HOST_ALLOCATOR_STRATEGIES)
        self.primary_storage_allocator_strategies: set[str] = set(c.PRIMARY_STORAGE_ALLOCATOR_STRATEGIES)

    async def start(self) -> None:
        self.node.cascade.register(TableCascade(InstanceOfferingVO))
        self.node.cascade.register(TableCascade(DiskOfferingVO))

    # -- checks (ZStack's ConfigurationApiInterceptor) -------------------------------------

    def _check_host_allocator_strategy(self, strategy: str | None) -> None:
        if strategy is not None and strategy not in self.host_allocator_strategies:
            raise _invalid(f"unsupported host allocation strategy[{strategy}]: it must be one of "
                           f"{', '.join(sorted(self.host_allocator_strategies))}")

    def _check_instance_offering(self, msg: APICreateInstanceOfferingMsg) -> None:
        self._check_host_allocator_strategy(msg.allocatorStrategy)
        if msg.type is not None and msg.type not in self.instance_offering_types:
            raise _invalid(f"unsupported instance offering type[{msg.type}]: it must be one of "
                           f"{', '.join(sorted(self.instance_offering_types))}")
        if msg.memorySize < c.MIN_MEMORY_SIZE:
            raise _invalid(f"memory size[{msg.memorySize} bytes] is less than 16M, no modern operating system "
                           f"is likely able to boot with such small memory size")
        if msg.reservedMemorySize > msg.memorySize:
            raise _invalid(f"reserved memory size[{msg.reservedMemorySize} bytes] is greater than memory "
                           f"size[{msg.memorySize} bytes]")

    def _check_disk_offering(self, msg: APICreateDiskOfferingMsg) -> None:
        strategy = msg.allocationStrategy
        if strategy is not None and strategy not in self.primary_storage_allocator_strategies:
            raise _invalid(f"unsupported primary storage allocation strategy[{strategy}]: it must be one of "
                           f"{', '.join(sorted(self.primary_storage_allocator_strategies))}")

    @intercepts(APICreateInstanceOfferingMsg)
    async def check_create_instance_offering(self, msg: APICreateInstanceOfferingMsg) -> None:
        self._check_instance_offering(msg)

    @intercepts(APIUpdateInstanceOfferingMsg)
    async def check_update_instance_offering(self, msg: APIUpdateInstanceOfferingMsg) -> None:
        self._check_host_allocator_strategy(msg.allocatorStrategy)

    @intercepts(APICreateDiskOfferingMsg)
    async def check_create_disk_offering(self, msg: APICreateDiskOfferingMsg) -> None:
        self._check_disk_offering(msg)

    # -- instance offerings ---------------------------------------------------------------

    @handles(APICreateInstanceOfferingMsg)
    async def create_instance_offering(self, msg: APICreateInstanceOfferingMsg) -> APICreateInstanceOfferingEvent:
        self._check_instance_offering(msg)

        def create(session: Session) -> InstanceOfferingInventory:
            vo = InstanceOfferingVO(
                name=msg.name, description=msg.description, cpuNum=msg.cpuNum, cpuSpeed=msg.cpuSpeed,
                memorySize=msg.memorySize, reservedMemorySize=msg.reservedMemorySize,
                allocatorStrategy=msg.allocatorStrategy or c.DEFAULT_INSTANCE_OFFERING_ALLOCATOR_STRATEGY,
                sortKey=msg.sortKey, state=ENABLED, type=msg.type or c.USER_VM_INSTANCE_OFFERING_TYPE,
                duration=c.PERMANENT)
            persist_new(self.node, session, vo, msg, InstanceOfferingVO.__tablename__)
            return InstanceOfferingInventory.from_vo(vo)

        inventory = await self.node.db.run(create)
        log.info("created instance offering %s (%s: %d CPUs, %d bytes)", inventory.uuid, inventory.name,
                 inventory.cpuNum, inventory.memorySize)
        return APICreateInstanceOfferingEvent(inventory=inventory)

    @handles(APIUpdateInstanceOfferingMsg)
    async def update_instance_offering(self, msg: APIUpdateInstanceOfferingMsg) -> APIUpdateInstanceOfferingEvent:
        self._check_host_allocator_strategy(msg.allocatorStrategy)
        changes = msg.model_dump(include={"name", "description", "allocatorStrategy"}, exclude_none=True)

        def change(session: Session) -> InstanceOfferingInventory:
            vo = find_instance_offering(session, msg.uuid)
            for name, value in changes.items():
                setattr(vo, name, value)
            session.flush()
            return InstanceOfferingInventory.from_vo(vo)

        inventory = await self.node.queues.run(instance_offering_queue(msg.uuid), lambda: self.node.db.run(change))
        return APIUpdateInstanceOfferingEvent(inventory=inventory)

    @handles(APIChangeInstanceOfferingStateMsg)
    async def change_instance_offering_state(
            self, msg: APIChangeInstanceOfferingStateMsg) -> APIChangeInstanceOfferingStateEvent:
        def change(session: Session) -> InstanceOfferingInventory:
            vo = find_instance_offering(session, msg.uuid)
            vo.state = INSTANCE_OFFERING_STATE_MACHINE.next_state(vo.state, msg.stateEvent)
            session.flush()
            return InstanceOfferingInventory.from_vo(vo)

        inventory = await self.node.queues.run(instance_offering_queue(msg.uuid), lambda: self.node.db.run(change))
        log.info("instance offering %s is %s", msg.uuid, inventory.state)
        return APIChangeInstanceOfferingStateEvent(inventory=inventory)

    @handles(APIDeleteInstanceOfferingMsg)
    async def delete_instance_offering(self, msg: APIDeleteInstanceOfferingMsg) -> APIDeleteInstanceOfferingEvent:
        await self.node.queues.run(instance_offering_queue(msg.uuid),
                                   lambda: self._delete(InstanceOfferingVO, msg))
        return APIDeleteInstanceOfferingEvent()

    # -- disk offerings ------------------------------------------------------------------

    @handles(APICreateDiskOfferingMsg)
    async def create_disk_offering(self, msg: APICreateDiskOfferingMsg) -> APICreateDiskOfferingEvent:
        self._check_disk_offering(msg)

        def create(session: Session) -> DiskOfferingInventory:
            vo = DiskOfferingVO(
                name=msg.name, description=msg.description, diskSize=msg.diskSize, sortKey=msg.sortKey,
                state=ENABLED, type=msg.type or c.ZSTACK_DISK_OFFERING_TYPE,
                allocatorStrategy=msg.allocationStrategy or c.DEFAULT_PRIMARY_STORAGE_ALLOCATION_STRATEGY)
            persist_new(self.node, session, vo, msg, DiskOfferingVO.__tablename__)
            return DiskOfferingInventory.from_vo(vo)

        inventory = await self.node.db.run(create)
        log.info("created disk offering %s (%s: %d bytes)", inventory.uuid, inventory.name, inventory.diskSize)
        return APICreateDiskOfferingEvent(inventory=inventory)

    @handles(APIUpdateDiskOfferingMsg)
    async def update_disk_offering(self, msg: APIUpdateDiskOfferingMsg) -> APIUpdateDiskOfferingEvent:
        changes = msg.model_dump(include={"name", "description"}, exclude_none=True)

        def change(session: Session) -> DiskOfferingInventory:
            vo = find_disk_offering(session, msg.uuid)
            for name, value in changes.items():
                setattr(vo, name, value)
            session.flush()
            return DiskOfferingInventory.from_vo(vo)

        inventory = await self.node.queues.run(disk_offering_queue(msg.uuid), lambda: self.node.db.run(change))
        return APIUpdateDiskOfferingEvent(inventory=inventory)

    @handles(APIChangeDiskOfferingStateMsg)
    async def change_disk_offering_state(self, msg: APIChangeDiskOfferingStateMsg) -> APIChangeDiskOfferingStateEvent:
        def change(session: Session) -> DiskOfferingInventory:
            vo = find_disk_offering(session, msg.uuid)
            vo.state = DISK_OFFERING_STATE_MACHINE.next_state(vo.state, msg.stateEvent)
            session.flush()
            return DiskOfferingInventory.from_vo(vo)

        inventory = await self.node.queues.run(disk_offering_queue(msg.uuid), lambda: self.node.db.run(change))
        log.info("disk offering %s is %s", msg.uuid, inventory.state)
        return APIChangeDiskOfferingStateEvent(inventory=inventory)

    @handles(APIDeleteDiskOfferingMsg)
    async def delete_disk_offering(self, msg: APIDeleteDiskOfferingMsg) -> APIDeleteDiskOfferingEvent:
        await self.node.queues.run(disk_offering_queue(msg.uuid), lambda: self._delete(DiskOfferingVO, msg))
        return APIDeleteDiskOfferingEvent()

    # -- internals ------------------------------------------------------------------------

    async def _delete(self, model: Any, msg: APIDeleteInstanceOfferingMsg | APIDeleteDiskOfferingMsg) -> None:
        exists = await self.node.db.run(lambda s: s.get(model, msg.uuid) is not None)
        if not exists:
            return  # already gone: deleting succeeds, as in ZStack
        await self.node.cascade.delete(model.__tablename__, [msg.uuid], mode=msg.deleteMode, request=msg)
        log.info("deleted %s %s (%s mode)", model.__tablename__, msg.uuid, msg.deleteMode)
