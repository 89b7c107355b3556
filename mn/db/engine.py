"""Engine, sessions and the thread pool that runs blocking database work."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

_MYSQL_BACKENDS = ("mysql", "mariadb")

log = logging.getLogger(__name__)

#: MySQL client errors that mean the server cannot be reached or went away:
#: can't connect (2002, 2003), gone away (2006), lost connection (2013, 2055).
#: The server rolls back an unfinished transaction when its client is gone.
_CONNECTION_LOST = frozenset({2002, 2003, 2006, 2013, 2055})

#: Seconds a transaction keeps being retried while the database is unreachable
#: (a MariaDB restart takes a few seconds; a failover of a cluster longer).
DEFAULT_OUTAGE_TOLERANCE = 120.0

#: ``session.info`` keys: callbacks run once the transaction commits, and the
#: probe that tells whether it did when the connection is lost during COMMIT.
_AFTER_COMMIT = "zstack.after_commit"
_COMMIT_PROBE = "zstack.commit_probe"


def after_commit(session: Session, callback) -> None:
    """Run ``callback`` (in the committing thread) once ``session``'s transaction commits.

    Never run when it rolls back, so the caller learns exactly what the
    database holds.
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def commit_probe(session: Session, probe) -> None:
    """Say how to tell whether ``session``'s transaction committed: ``probe(other_session)``
    returns True when its writes are in the database.

    A connection lost during COMMIT leaves that unknown (the server may have
    committed before the client heard it). :meth:`Database.run` then asks the
    probe instead of running the transaction again, which would do its work
    twice. A transaction without a probe is run again.
    """
    session.info[_COMMIT_PROBE] = probe


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    # after_commit also fires when a SAVEPOINT is released: only the real commit counts.
    if session.in_nested_transaction():
        return
    for callback in session.info.pop(_AFTER_COMMIT, ()):
        callback()


class _AmbiguousCommit(Exception):
    """The connection was lost during COMMIT of a transaction that has a probe."""

    def __init__(self, cause: DBAPIError, probe, result, callbacks: list):
        super().__init__(str(cause))
        self.cause, self.probe, self.result, self.callbacks = cause, probe, result, callbacks


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the database connection is gone (not a SQL error)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return False
    args = getattr(exc.orig, "args", ())
    return bool(args) and args[0] in _CONNECTION_LOST


def _dialect(url: URL) -> str:
    backend = url.get_backend_name()
    if backend in _MYSQL_BACKENDS:
        return "mysql"
    if backend == "sqlite":
        return "sqlite"
    raise ValueError(f"unsupported database URL {url!r}: use mysql or sqlite")


def _set_sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # WAL lets readers run beside the writer; busy_timeout makes writers
        # wait for each other instead of failing with "database is locked".
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


#: A pooled connection used less than this many seconds ago is handed out
#: without a ping: it is almost surely alive, and if the server went away in
#: that moment the transaction fails as connection-lost and runs again.
PING_IF_IDLE_FOR = 1.0
#: pymysql's server status flag: a transaction is open on the connection.
_SERVER_STATUS_IN_TRANS = 1


def _ping_if_idle(dbapi_connection, record, _proxy) -> None:
    # pool_pre_ping pings at every checkout: one round trip more for every
    # transaction. Only connections left idle for a while are checked here.
    if time.monotonic() - record.info.get("used_at", 0.0) < PING_IF_IDLE_FOR:
        return
    try:
        dbapi_connection.ping(reconnect=False)
    except Exception as exc:
        raise DisconnectionError(f"pooled connection is dead: {exc}") from exc  # the pool takes another


def _stamp_use(_dbapi_connection, record) -> None:
    record.info["used_at"] = time.monotonic()


def _rollback_if_in_transaction(dbapi_connection, _record, _reset_state) -> None:
    # The pool's default reset sends a ROLLBACK for every connection returned
    # to it, even right after a COMMIT; the server says whether one is needed.
    if getattr(dbapi_connection, "server_status", _SERVER_STATUS_IN_TRANS) & _SERVER_STATUS_IN_TRANS:
        dbapi_connection.rollback()


def _create_engine(url: URL, threads: int, echo: bool) -> Engine:
    if _dialect(url) == "mysql":
        engine = create_engine(
            url,
            echo=echo,
            pool_size=threads,
            max_overflow=4,
            pool_recycle=3600,
            # Both replaced by the listeners below, which skip the round trips
            # that a busy connection does not need.
            pool_pre_ping=False,
            pool_reset_on_return=None,
            isolation_level="READ COMMITTED",
            connect_args={"charset": "utf8mb4"},
        )
        event.listen(engine, "connect", _stamp_use)
        event.listen(engine, "checkout", _ping_if_idle)
        event.listen(engine, "checkin", _stamp_use)
        event.listen(engine, "reset", _rollback_if_in_transaction)
        return engine
    engine = create_engine(
        url,
        echo=echo,
        pool_size=threads,
        max_overflow=4,
        connect_args={"check_same_thread": False},
    )
    event.listen(engine, "connect", _set_sqlite_pragmas)
    return engine


class Database:
    """Engine + sessions + a bounded thread pool for blocking DB work.

    Coroutines never touch the database directly: they ``await db.run(fn)``,
    which runs ``fn(session)`` in one transaction on one of ``threads`` worker
    threads. The connection pool has the same size, so a worker never waits
    for a connection.
    """

    def __init__(self, url: str, *, threads: int = 8, echo: bool = False,
                 outage_tolerance: float = DEFAULT_OUTAGE_TOLERANCE):
        parsed = make_url(url)
        #: Seconds :meth:`run` retries a transaction whose connection is lost.
        self.outage_tolerance = outage_tolerance
        self.url = url
        self.dialect = _dialect(parsed)
        self.engine: Engine = _create_engine(parsed, threads, echo)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="db")

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: commit on success, rollback and re-raise on error."""
        with self._sessions.begin() as session:
            yield session

    async def run(self, fn, /, *args, **kwargs):
        """Run ``fn(session, *args, **kwargs)`` in a worker thread; return its result.

        Cancelling the awaiting task does not stop ``fn``: the transaction
        still runs to its end in the worker thread.
        """
        loop = asyncio.get_running_loop()
        call = functools.partial(self._call, fn, args, kwargs)
        # Like asyncio.to_thread: keep context variables (log correlation ids).
        ctx = contextvars.copy_context()
        return await loop.run_in_executor(self._executor, ctx.run, call)

    def _call(self, fn, args, kwargs):
        # A transaction whose connection is lost did not commit (the server
        # rolls it back), so it runs again once the database is back: a
        # database restart delays operations instead of failing them halfway
        # (a rollback that cannot write would leave resources behind). A
        # connection lost during COMMIT itself is ambiguous: a transaction
        # with a commit probe (see commit_probe) asks it; others run again.
        deadline = time.monotonic() + self.outage_tolerance
        pause = 0.2
        #: A COMMIT that lost its connection, whose probe has not answered yet.
        unsure: _AmbiguousCommit | None = None
        while True:
            try:
                if unsure is None:
                    return self._once(fn, args, kwargs)
                with self.session() as session:
                    committed = bool(unsure.probe(session))
                log.warning("database connection lost during COMMIT (%s); the probe says it %s", unsure.cause.orig,
                            "committed" if committed else "did not commit: running the transaction again")
                if committed:
                    for callback in unsure.callbacks:
                        callback()
                    return unsure.result
                unsure = None
            except _AmbiguousCommit as lost:
                unsure = lost
            except DBAPIError as exc:
                if not connection_lost(exc) or time.monotonic() + pause > deadline:
                    raise
                log.warning("database connection lost (%s); retrying in %.1fs", exc.orig, pause)
                time.sleep(pause)
                pause = min(pause * 2, 2.0)

    def _once(self, fn, args, kwargs):
        """One try of a transaction; raises _AmbiguousCommit when its COMMIT
        lost the connection and it has a probe."""
        with self._sessions() as session:
            session.begin()
            try:
                result = fn(session, *args, **kwargs)
            except BaseException:
                session.rollback()
                raise
            try:
                session.commit()
            except DBAPIError as exc:
                probe = session.info.get(_COMMIT_PROBE)
                if probe is None or not connection_lost(exc):
                    raise
                raise _AmbiguousCommit(exc, probe, result, session.info.pop(_AFTER_COMMIT, [])) from exc
            return result

    def close(self) -> None:
        """Wait for running work, then close every connection."""
        self._executor.shutdown(wait=True)
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.engine.url!r})"


def ensure_database_exists(url: str) -> None:
    """Create the MySQL database of ``url`` if missing (utf8mb4).

    For SQLite, create the directory of the database file instead.
    """
    parsed = make_url(url)
    if _dialect(parsed) == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return
    name = parsed.database
    if not name:
        raise ValueError(f"no database name in {parsed!r}")
    server = create_engine(
        parsed.set(database=""), poolclass=NullPool, connect_args={"charset": "utf8mb4"}
    )
    try:
        quoted = server.dialect.identifier_preparer.quote_identifier(name)
        with server.connect() as conn:
            conn.execute(text(f"CREATE DATABASE IF NOT EXISTS {quoted} CHARACTER SET utf8mb4"))
    finally:
        server.dispose()
