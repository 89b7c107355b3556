"""Durable chain records in ``FlowChainVO``: written by the running MN, read by its successor.

Life of a record (one row per durable chain run):

``Running``
    inserted at the latest right before the first step that can have an
    effect, then kept saying which steps may have had one: before a step
    that is not atomic runs, a write stores the completed step ids, the
    data map and that step (``currentStep``); an atomic step writes its own
    completion in the transaction of its writes (``ctx.mark_done``), naming
    the next step as running when that one surely runs and is not atomic,
    so the write before it is not needed.
``RollingBack``
    a step failed: the error is stored, then each rollback updates the
    record (the rolled-back step leaves it), so a crash during rollback is
    resumed where it stopped.
``Done`` / ``RolledBack``
    the steps are all done / all undone and the chain's handlers are
    running. Written only when the chain has handlers for that outcome.
``Failed``
    a record no MN can map back to a chain (the chain or a step id is
    unknown to this code, e.g. after an upgrade): kept for an operator,
    never retried.

The record is deleted when the chain ends (by the last step's own commit
when it is atomic and the chain has no done or finally handlers), so the
table holds only chains in flight (and ``Failed`` ones); it never grows
with history.

Every update is a compare-and-set on ``managementNodeUuid``: an MN that was
declared dead and whose chain was taken over finds its writes refused and
stops the chain instead of racing its successor.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable

from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from mn.db import Database
from mn.db.models.flow_chain import FlowChainVO
from mn.db.models.management_node import ManagementNodeVO
from mn.db.types import utcnow
from mn.errors import ErrorCode

_TABLE = FlowChainVO.__table__

# The statements every chain run writes, built once: building and hashing an
# ORM statement per call costs more CPU than sending it to the database.
_INSERT = insert(_TABLE)
_SAVE = (update(_TABLE)
         .where(_TABLE.c.uuid == bindparam("b_uuid"), _TABLE.c.managementNodeUuid == bindparam("b_owner"))
         .values(state=bindparam("state"), currentStep=bindparam("currentStep"),
                 completedSteps=bindparam("completedSteps"), data=bindparam("data"),
                 errorCode=bindparam("errorCode"), lastOpDate=bindparam("lastOpDate")))
_DELETE = delete(_TABLE).where(_TABLE.c.uuid == bindparam("b_uuid"),
                               _TABLE.c.managementNodeUuid == bindparam("b_owner"))


class FlowState:
    """Values of ``FlowChainVO.state``."""

    RUNNING = "Running"
    ROLLING_BACK = "RollingBack"
    DONE = "Done"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"

    #: States a successor MN takes over.
    UNFINISHED = (RUNNING, ROLLING_BACK, DONE, ROLLED_BACK)


@dataclasses.dataclass
class FlowRecord:
    """The in-memory side of one ``FlowChainVO`` row."""

    uuid: str
    chain_name: str
    owner: str
    state: str = FlowState.RUNNING
    resource_uuid: str | None = None
    resource_type: str | None = None
    current_step: str | None = None
    completed_steps: list[str] = dataclasses.field(default_factory=list)
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    error: ErrorCode | None = None

    def progress_columns(self, data_json: str) -> dict[str, Any]:
        """The columns that change while the chain runs, ready to write.

        ``data_json`` is serialised by the caller, on the event loop, from
        the dict the steps share: serialising it later in a DB thread would
        race with the next step.
        """
        return {
            "state": self.state,
            "currentStep": self.current_step,
            "completedSteps": json.dumps(self.completed_steps),
            "data": data_json,
            "errorCode": json.dumps(self.error.to_dict()) if self.error else None,
        }

    @classmethod
    def of(cls, vo: FlowChainVO) -> "FlowRecord":
        return cls(uuid=vo.uuid, chain_name=vo.chainName, owner=vo.managementNodeUuid, state=vo.state,
                   resource_uuid=vo.resourceUuid, resource_type=vo.resourceType,
                   current_step=vo.currentStep, completed_steps=json.loads(vo.completedSteps),
                   data=json.loads(vo.data),
                   error=ErrorCode.from_dict(json.loads(vo.errorCode)) if vo.errorCode else None)


@dataclasses.dataclass(frozen=True)
class Orphan:
    """A record whose MN is gone: what take-over needs to pick an owner."""

    uuid: str
    resource_uuid: str | None
    owner: str

    @property
    def ring_key(self) -> str:
        """The key whose ring owner takes the record over."""
        return self.resource_uuid or self.uuid


class FlowStore:
    """Reads and writes ``FlowChainVO`` through ``Database.run``.

    The ``*_in`` methods write in the caller's transaction (a step recording
    its completion together with its own writes); the others run their own.
    """

    def __init__(self, db: Database):
        self.db = db

    # -- in the caller's transaction ------------------------------------------------

    @staticmethod
    def insert_in(session: Session, record: FlowRecord, data_json: str) -> None:
        now = utcnow()
        session.execute(_INSERT, {"uuid": record.uuid, "chainName": record.chain_name,
                                  "resourceUuid": record.resource_uuid, "resourceType": record.resource_type,
                                  "managementNodeUuid": record.owner, "createDate": now, "lastOpDate": now,
                                  **record.progress_columns(data_json)})

    @staticmethod
    def save_in(session: Session, record: FlowRecord, data_json: str) -> bool:
        """Write the progress; False if another MN owns the record now."""
        return session.execute(_SAVE, {"b_uuid": record.uuid, "b_owner": record.owner, "lastOpDate": utcnow(),
                                       **record.progress_columns(data_json)}).rowcount == 1

    @staticmethod
    def delete_in(session: Session, record: FlowRecord) -> bool:
        return session.execute(_DELETE, {"b_uuid": record.uuid, "b_owner": record.owner}).rowcount == 1

    # -- telling whether a transaction that wrote the record committed ---------------

    @staticmethod
    def written_probe(record: FlowRecord, data_json: str) -> Callable[[Session], bool]:
        """A commit probe (:func:`~mn.db.engine.commit_probe`) for ``insert_in`` or
        ``save_in`` of ``record``: its row, still ours, lists exactly its completed steps."""
        completed = record.progress_columns(data_json)["completedSteps"]

        def probe(session: Session) -> bool:
            row = session.execute(select(FlowChainVO.completedSteps, FlowChainVO.managementNodeUuid)
                                  .where(FlowChainVO.uuid == record.uuid)).first()
            return row is not None and row.managementNodeUuid == record.owner and row.completedSteps == completed

        return probe

    @staticmethod
    def deleted_probe(record: FlowRecord) -> Callable[[Session], bool]:
        """A commit probe for ``delete_in`` of ``record``: its row is gone."""
        def probe(session: Session) -> bool:
            return session.scalar(select(FlowChainVO.uuid).where(FlowChainVO.uuid == record.uuid)) is None

        return probe

    # -- in a transaction of their own ------------------------------------------------

    async def insert(self, record: FlowRecord, data_json: str) -> None:
        await self.db.run(self.insert_in, record, data_json)

    async def save(self, record: FlowRecord, data_json: str) -> bool:
        """Write the progress; False if another MN owns the record now."""
        return await self.db.run(self.save_in, record, data_json)

    async def set_state(self, record: FlowRecord, state: str) -> bool:
        def set_state(session):
            return session.execute(
                update(FlowChainVO)
                .where(FlowChainVO.uuid == record.uuid, FlowChainVO.managementNodeUuid == record.owner)
                .values(state=state, lastOpDate=utcnow())).rowcount

        return await self.db.run(set_state) == 1

    async def delete(self, record: FlowRecord) -> bool:
        return await self.db.run(self.delete_in, record)

    async def load(self, uuid: str) -> FlowRecord | None:
        def load(session):
            vo = session.get(FlowChainVO, uuid)
            return FlowRecord.of(vo) if vo is not None else None

        return await self.db.run(load)

    async def claim(self, uuids_and_owners: list[tuple[str, str]], new_owner: str) -> list[str]:
        """Compare-and-set each record's owner to ``new_owner``; the uuids won."""

        def claim(session):
            won = []
            for uuid, owner in uuids_and_owners:
                count = session.execute(
                    update(FlowChainVO)
                    .where(FlowChainVO.uuid == uuid, FlowChainVO.managementNodeUuid == owner)
                    .values(managementNodeUuid=new_owner, lastOpDate=utcnow())).rowcount
                if count == 1:
                    won.append(uuid)
            return won

        return await self.db.run(claim)

    async def orphans(self, dead_node: str | None = None) -> list[Orphan]:
        """Unfinished records of ``dead_node`` or of any MN without a membership row."""

        def find(session):
            live = select(ManagementNodeVO.uuid)
            gone = FlowChainVO.managementNodeUuid.not_in(live)
            if dead_node is not None:
                gone = or_(FlowChainVO.managementNodeUuid == dead_node, gone)
            rows = session.execute(
                select(FlowChainVO.uuid, FlowChainVO.resourceUuid, FlowChainVO.managementNodeUuid)
                .where(gone, FlowChainVO.state.in_(FlowState.UNFINISHED))
                .order_by(FlowChainVO.createDate)).all()
            return [Orphan(uuid, resource, owner) for uuid, resource, owner in rows]

        return await self.db.run(find)
