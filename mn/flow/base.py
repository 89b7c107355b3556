"""What a chain is made of: steps (:class:`Flow`), handlers, and the context they share.

A step is a class with ``async def run(self, ctx)`` and, unless it declares
``rollbackable = False``, ``async def rollback(self, ctx)``. Steps talk to
each other only through ``ctx.data``, a dict that must stay
JSON-serialisable in a durable chain: it is saved after every step, and
the MN that takes over a crashed chain rebuilds the steps from their class
names and runs their rollbacks with the saved data, in a process where
nothing the first MN held in memory exists. So: keep state in ``ctx.data``,
never on ``self``, and write rollbacks that are idempotent and tolerate a
run that stopped half-way (or never started) — the step that was running
when an MN died is rolled back too.

A step whose effects are all database writes made in one transaction can
declare ``atomic = True`` and call ``ctx.mark_done(session)`` in that
transaction: the record then says the step completed in the same commit as
its writes (one commit instead of two), and the engine writes nothing before
the step runs, since a crash leaves either all of it, recorded, or none.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from mn.errors import ErrorCode

if TYPE_CHECKING:
    from mn.node import ManagementNode


@dataclasses.dataclass
class FlowContext:
    """What every step and handler of one chain run sees.

    ``node`` is the MN running the chain right now (after a take-over, the
    MN that took it over, with ``recovered`` True). ``error`` is set during
    rollback and for error handlers: the ErrorCode of the failing step.
    """

    node: "ManagementNode | Any"
    chain: str
    data: dict[str, Any]
    record_uuid: str | None = None
    resource_uuid: str | None = None
    resource_type: str | None = None
    #: Id of the step being run or rolled back (see FlowRegistry step ids).
    step_id: str | None = None
    error: ErrorCode | None = None
    recovered: bool = False
    #: Set by the engine while a step of a durable chain runs (see mark_done).
    _mark_done: Callable[[Any], None] | None = dataclasses.field(default=None, repr=False, compare=False)

    def mark_done(self, session: Any) -> None:
        """Record, in ``session``'s transaction, that the running step has completed.

        For ``atomic`` steps: call it in the transaction that makes the
        step's writes, so both commit together or not at all. The record is
        written with the data map as it is now; a change made after it costs
        one more write. Does nothing in a chain that is not durable. Raises
        an exception (rolling the transaction back) if another MN has taken
        the chain over.
        """
        if self._mark_done is not None:
            self._mark_done(session)

    @property
    def db(self):
        return self.node.db

    @property
    def bus(self):
        return self.node.bus


class Flow:
    """Base class of a step. Subclass it, implement :meth:`run`, reference it in XML.

    The engine creates one instance per step per chain run and calls
    :meth:`skip`, then :meth:`run`; if this step or a later one fails, it
    calls :meth:`rollback`. Raise :class:`~mn.errors.OperationError` to fail
    with a ZStack error code; any other exception fails the step with
    SYS.1000 and its message.
    """

    #: False for a step whose effect cannot be undone (a notification sent,
    #: a file deleted): the engine never calls its rollback. XML can also
    #: declare one step so with ``rollback="false"``.
    rollbackable: ClassVar[bool] = True

    #: True for a step whose effects are all made in one database transaction
    #: that calls ``ctx.mark_done(session)`` (or that has no effects at all,
    #: e.g. one that only reads). Its external effects, if any, must need no
    #: rollback. The engine then records nothing before it runs.
    atomic: ClassVar[bool] = False

    def skip(self, ctx: FlowContext) -> bool:
        """True to pass over this step (it is then neither run nor rolled back).

        Called right before the step would run; XML ``when``/``unless``
        conditions are checked first. Must not change ``ctx.data``.
        """
        return False

    async def run(self, ctx: FlowContext) -> None:
        raise NotImplementedError

    async def rollback(self, ctx: FlowContext) -> None:
        """Undo :meth:`run`. Errors are logged and the other rollbacks still run."""


class NoRollbackFlow(Flow):
    """A step that cannot be undone: it is never rolled back."""

    rollbackable = False


class FlowHandler:
    """A ``<done>``, ``<error>`` or ``<finally>`` handler of a chain.

    Handlers run once the outcome is decided: done handlers after the last
    step, error handlers after the rollback (``ctx.error`` is the failing
    step's error), finally handlers after either. They run on whichever MN
    ends the chain, the taken-over one included. An exception in a handler
    is logged and does not change the outcome.
    """

    async def handle(self, ctx: FlowContext) -> None:
        raise NotImplementedError
