"""Durable chain records in ``FlowChainVO``: written by the running MN, read by its successor.

Life of a record (one row per durable chain run):

``Running``
    inserted right before the first step runs, then updated once per
    step: after step *k* completes, one write stores the completed step
    ids, the data map and the step about to run (``currentStep``). So a
    record always says which steps may have had an effect.
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

The record is deleted when the chain ends, so the table holds only chains
in flight (and ``Failed`` ones); it never grows with history.

Every update is a compare-and-set on ``managementNodeUuid``: an MN that was
declared dead and whose chain was taken over finds its writes refused and
stops the chain instead of racing its successor.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from sqlalchemy import delete, or_, select, update

from mn.db import Database
from mn.db.models.flow_chain import FlowChainVO
from mn.db.models.management_node import ManagementNodeVO
from mn.db.types import utcnow
from mn.errors import ErrorCode


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
    """Reads and writes ``FlowChainVO`` through ``Database.run``."""

    def __init__(self, db: Database):
        self.db = db

    async def insert(self, record: FlowRecord, data_json: str) -> None:
        columns = record.progress_columns(data_json)

        def insert(session):
            now = utcnow()
            session.add(FlowChainVO(uuid=record.uuid, chainName=record.chain_name,
                                    resourceUuid=record.resource_uuid, resourceType=record.resource_type,
                                    managementNodeUuid=record.owner, createDate=now, lastOpDate=now,
                                    **columns))

        await self.db.run(insert)

    async def save(self, record: FlowRecord, data_json: str) -> bool:
        """Write the progress; False if another MN owns the record now."""
        columns = record.progress_columns(data_json)

        def save(session):
            return session.execute(
                update(FlowChainVO)
                .where(FlowChainVO.uuid == record.uuid, FlowChainVO.managementNodeUuid == record.owner)
                .values(lastOpDate=utcnow(), **columns)).rowcount

        return await self.db.run(save) == 1

    async def set_state(self, record: FlowRecord, state: str) -> bool:
        def set_state(session):
            return session.execute(
                update(FlowChainVO)
                .where(FlowChainVO.uuid == record.uuid, FlowChainVO.managementNodeUuid == record.owner)
                .values(state=state, lastOpDate=utcnow())).rowcount

        return await self.db.run(set_state) == 1

    async def delete(self, record: FlowRecord) -> bool:
        def remove(session):
            return session.execute(
                delete(FlowChainVO)
                .where(FlowChainVO.uuid == record.uuid, FlowChainVO.managementNodeUuid == record.owner)).rowcount

        return await self.db.run(remove) == 1

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
