"""The zone service: create, update, enable/disable and delete zones.

Operations on one zone run on the MN that owns the zone on the ring (the
APIs are routed by ``uuid``) and, there, one at a time in the work queue
``zone-<uuid>``. Changes of the default mark also pass through one queue
per MN, as in ZStack, so two zones never both end up default from
concurrent calls to one MN.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Awaitable, Callable, TypeVar

from sqlalchemy import update
from sqlalchemy.orm import Session

from mn.api.resource import persist_new
from mn.db.models.zone import ZSTACK_ZONE_TYPE, ZoneVO
from mn.errors import OperationError, SysErrors, error
from mn.service import Service, handles
from mn.zone.cascade import TableCascade
from mn.zone.extensions import ZoneStateExtension
from mn.zone.inventory import ZoneInventory
from mn.zone.messages import (
    SERVICE_ID,
    APIChangeZoneStateEvent,
    APIChangeZoneStateMsg,
    APICreateZoneEvent,
    APICreateZoneMsg,
    APIDeleteZoneEvent,
    APIDeleteZoneMsg,
    APIUpdateZoneEvent,
    APIUpdateZoneMsg,
)
from mn.zone.state import ENABLED, ZONE_STATE_MACHINE

if TYPE_CHECKING:
    from mn.node import ManagementNode

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Work queue of this MN's changes of the default mark (ZStack's name).
DEFAULT_ZONE_QUEUE = "default-zone-operation-queue"


def queue_of(zone_uuid: str) -> str:
    """The work queue in which one zone's operations run one at a time."""
    return f"zone-{zone_uuid}"


def zone_not_found(zone_uuid: str) -> OperationError:
    return OperationError.of(SysErrors.RESOURCE_NOT_FOUND,
                             f"unable to find zone[uuid:{zone_uuid}], it may have been deleted")


def find_zone(session: Session, zone_uuid: str) -> ZoneVO:
    """The zone's row; RESOURCE_NOT_FOUND if there is none."""
    vo = session.get(ZoneVO, zone_uuid)
    if vo is None:
        raise zone_not_found(zone_uuid)
    return vo


def _clear_default(session: Session, keep: str | None = None) -> None:
    """Take the default mark from every zone but ``keep``."""
    stmt = update(ZoneVO).where(ZoneVO.isDefault.is_(True))
    if keep is not None:
        stmt = stmt.where(ZoneVO.uuid != keep)
    session.execute(stmt.values(isDefault=False), execution_options={"synchronize_session": False})


class ZoneService(Service):
    """ZStack's ZoneManager and ZoneBase."""

    SERVICE_ID = SERVICE_ID

    def __init__(self, node: "ManagementNode"):
        super().__init__(node)
        self._state_extensions: list[ZoneStateExtension] = []

    def add_state_extension(self, extension: ZoneStateExtension) -> None:
        """Have ``extension`` take part in every zone state change on this MN."""
        self._state_extensions.append(extension)

    async def start(self) -> None:
        # A zone is a root of cascades: deleting it deletes what is in it.
        self.node.cascade.register(TableCascade(ZoneVO))

    async def get_inventory(self, zone_uuid: str) -> ZoneInventory:
        """The zone's inventory; RESOURCE_NOT_FOUND if there is no such zone."""
        return await self.node.db.run(lambda s: ZoneInventory.from_vo(find_zone(s, zone_uuid)))

    # -- APIs ------------------------------------------------------------------------

    @handles(APICreateZoneMsg)
    async def create_zone(self, msg: APICreateZoneMsg) -> APICreateZoneEvent:
        def create(session: Session) -> ZoneInventory:
            if msg.resourceUuid and session.get(ZoneVO, msg.resourceUuid) is not None:
                raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                        f"a zone with uuid {msg.resourceUuid} already exists")
            if msg.isDefault:
                _clear_default(session)
            vo = ZoneVO(name=msg.name, description=msg.description, type=msg.type or ZSTACK_ZONE_TYPE,
                        state=ENABLED, isDefault=bool(msg.isDefault))
            persist_new(self.node, session, vo, msg, ZoneVO.__tablename__)
            return ZoneInventory.from_vo(vo)

        inventory = await self._default_mark_change(bool(msg.isDefault), lambda: self.node.db.run(create))
        log.info("created zone %s (%s)", inventory.uuid, inventory.name)
        return APICreateZoneEvent(inventory=inventory)

    @handles(APIUpdateZoneMsg)
    async def update_zone(self, msg: APIUpdateZoneMsg) -> APIUpdateZoneEvent:
        def change(session: Session) -> ZoneInventory:
            vo = find_zone(session, msg.uuid)
            if msg.name is not None:
                vo.name = msg.name
            if msg.description is not None:
                vo.description = msg.description
            if msg.isDefault is not None:
                if msg.isDefault:
                    _clear_default(session, keep=vo.uuid)
                vo.isDefault = msg.isDefault
            session.flush()
            return ZoneInventory.from_vo(vo)

        async def run() -> ZoneInventory:
            return await self._default_mark_change(bool(msg.isDefault), lambda: self.node.db.run(change))

        return APIUpdateZoneEvent(inventory=await self.node.queues.run(queue_of(msg.uuid), run))

    @handles(APIChangeZoneStateMsg)
    async def change_zone_state(self, msg: APIChangeZoneStateMsg) -> APIChangeZoneStateEvent:
        inventory = await self.node.queues.run(queue_of(msg.uuid),
                                               lambda: self._change_state(msg.uuid, msg.stateEvent))
        return APIChangeZoneStateEvent(inventory=inventory)

    @handles(APIDeleteZoneMsg)
    async def delete_zone(self, msg: APIDeleteZoneMsg) -> APIDeleteZoneEvent:
        async def run() -> None:
            exists = await self.node.db.run(lambda s: s.get(ZoneVO, msg.uuid) is not None)
            if not exists:
                return  # already gone: deleting succeeds, as in ZStack
            deleted = await self.node.cascade.delete(ZoneVO.__tablename__, [msg.uuid],
                                                     mode=msg.deleteMode, request=msg)
            log.info("deleted zone %s (%s mode) and %s", msg.uuid, msg.deleteMode,
                     {t: len(u) for t, u in deleted.items() if t != ZoneVO.__tablename__} or "nothing in it")

        await self.node.queues.run(queue_of(msg.uuid), run)
        return APIDeleteZoneEvent()

    # -- internals ---------------------------------------------------------------------

    async def _default_mark_change(self, marks_default: bool, fn: Callable[[], Awaitable[T]]) -> T:
        if not marks_default:
            return await fn()
        return await self.node.queues.run(DEFAULT_ZONE_QUEUE, fn)

    async def _change_state(self, zone_uuid: str, event: str) -> ZoneInventory:
        zone = await self.get_inventory(zone_uuid)
        next_state = ZONE_STATE_MACHINE.next_state(zone.state, event)
        for extension in list(self._state_extensions):
            try:
                await extension.pre_change(zone, event, next_state)
            except OperationError as exc:
                raise OperationError(error(
                    SysErrors.CHANGE_RESOURCE_STATE_ERROR,
                    f"cannot {event} zone[uuid:{zone_uuid}]: {exc.error.details or exc.error.description}",
                    exc.error)) from exc
        for extension in list(self._state_extensions):
            await _tolerant(extension.before_change(zone, event, next_state), extension, zone_uuid)

        def store(session: Session) -> ZoneInventory:
            vo = find_zone(session, zone_uuid)
            vo.state = next_state
            session.flush()
            return ZoneInventory.from_vo(vo)

        changed = await self.node.db.run(store)
        for extension in list(self._state_extensions):
            await _tolerant(extension.after_change(changed, event, zone.state), extension, zone_uuid)
        log.info("zone %s: %s -> %s by event %s", zone_uuid, zone.state, changed.state, event)
        return changed


async def _tolerant(call: Awaitable[None], extension: ZoneStateExtension, zone_uuid: str) -> None:
    # Past pre_change nothing may stop the change: a failing extension is logged.
    try:
        await call
    except Exception:
        log.exception("zone state extension %r failed for zone %s; the change goes on",
                      extension, zone_uuid)
