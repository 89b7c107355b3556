"""``zstack-ctl check``: invariants of the database that must hold whatever happened.

Each check reads the database only (no MN needed) and reports what is
wrong as :class:`Problem` rows, with figures. The rules mirror the code
that keeps them (capacity reservations, address allocation, chains and
jobs); each module says which code, and why a state that looks wrong but
is legitimate (an operation in flight, an overcommitted host) is not
reported::

    with database.session() as session:
        for problem in run_checks(session):
            print(problem.check, problem.resource_uuid, problem.details)

Run it on a consistent snapshot: ``zstack-ctl check`` reads in one
REPEATABLE READ (MariaDB) or deferred (SQLite) transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from mn.check.base import CHECKS, Check, CheckContext, Problem, check, naive_utc
from mn.db.types import utcnow

# Each module registers its checks on import, in this order.
from mn.check import hosts, storage, network, orphans, stuck  # noqa: E402  isort: skip

#: The modules of the checks, in the order they run.
MODULES = (hosts, storage, network, orphans, stuck)

__all__ = ["CHECKS", "Check", "CheckContext", "Problem", "check", "run_checks"]


def run_checks(session: Session, now: datetime | None = None, *, transition_timeout: float | None = None,
               strict_storage: bool = False, only: list[str] | None = None) -> list[Problem]:
    """Run every registered check (or those named in ``only``) and return their problems.

    ``now`` (default: the current UTC time) is what transitional states are
    aged against; ``transition_timeout`` overrides the ``api/timeout``
    global config (seconds); ``strict_storage``: see
    :class:`~mn.check.base.CheckContext`. Only reads ``session``.
    """
    if only is not None:
        unknown = set(only) - {c.name for c in CHECKS}
        if unknown:
            raise ValueError(f"unknown checks: {', '.join(sorted(unknown))}")
    ctx = CheckContext(session=session, now=naive_utc(now) if now is not None else utcnow(),
                       transition_timeout=transition_timeout, strict_storage=strict_storage)
    problems: list[Problem] = []
    for registered in CHECKS:
        if only is None or registered.name in only:
            problems.extend(registered.fn(ctx))
    return problems
