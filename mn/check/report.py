"""What ``zstack-ctl check`` does: connect read-only, run the checks, print, choose the exit status."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from mn.check import CHECKS, Problem, run_checks

#: Exit statuses of ``zstack-ctl check``.
CLEAN, PROBLEMS, UNREACHABLE = 0, 1, 2

#: Seconds to wait for MariaDB to answer before giving up (exit 2).
CONNECT_TIMEOUT = 10


class DatabaseUnreachable(Exception):
    """The database cannot be opened or read (or has no ZStack schema)."""


def _engine(url: str) -> Engine:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        path = parsed.database
        # Connecting would create an empty database file: say it is missing instead.
        if not path or path == ":memory:" or not Path(path).is_file():
            raise DatabaseUnreachable(f"no SQLite database at {path or '(none)'}")
        engine = create_engine(parsed, poolclass=NullPool)
        # pysqlite starts no transaction for SELECTs, so each would see its own
        # snapshot; an explicit BEGIN makes every check read the same one.
        event.listen(engine, "connect", lambda dbapi, _record: setattr(dbapi, "isolation_level", None))
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        return engine
    if backend in ("mysql", "mariadb"):
        # REPEATABLE READ: every query of the run sees one snapshot, so a
        # reservation committed between two of them cannot look like a leak.
        return create_engine(parsed, poolclass=NullPool, isolation_level="REPEATABLE READ",
                             connect_args={"charset": "utf8mb4", "connect_timeout": CONNECT_TIMEOUT})
    raise DatabaseUnreachable(f"unsupported database URL {parsed.render_as_string(hide_password=True)}: "
                              f"use mysql or sqlite")


def collect(url: str, **options) -> list[Problem]:
    """Run the checks on the database at ``url`` in one read-only transaction.

    Raises DatabaseUnreachable when it cannot be opened or read.
    """
    shown = make_url(url).render_as_string(hide_password=True)
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            with Session(bind=conn) as session:
                try:
                    return run_checks(session, **options)
                finally:
                    session.rollback()  # nothing was written; end the snapshot
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        raise DatabaseUnreachable(f"cannot read the database {shown}: {reason}") from exc
    finally:
        engine.dispose()


def render_text(problems: list[Problem], echo: Callable[[str], None]) -> None:
    """One line per problem under its check's name, then a summary line."""
    by_check: dict[str, list[Problem]] = {}
    for problem in problems:
        by_check.setdefault(problem.check, []).append(problem)
    for registered in CHECKS:
        found = by_check.get(registered.name)
        if not found:
            continue
        echo(f"{registered.name}: {len(found)} problem(s) — {registered.summary}")
        for problem in found:
            echo(f"  {problem.resource_type} {problem.resource_uuid}: {problem.details}")
    if problems:
        echo(f"{len(problems)} problem(s) found by {len(by_check)} of {len(CHECKS)} checks")
    else:
        echo(f"no problems found ({len(CHECKS)} checks: {', '.join(c.name for c in CHECKS)})")


def render_json(problems: list[Problem]) -> str:
    return json.dumps([problem.to_dict() for problem in problems], indent=2)


def exit_status(problems: list[Problem]) -> int:
    return PROBLEMS if problems else CLEAN
