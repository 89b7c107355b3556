"""Schema migrations, applied by every management node when it starts.

Several nodes may start at once against one database, so the upgrade runs
under a lock: MySQL's GET_LOCK, or an flock beside the SQLite file.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from mn.db.engine import Database

log = logging.getLogger(__name__)

SCRIPT_LOCATION = Path(__file__).parent / "migrations"
LOCK_NAME = "zstack_schema_migration"
LOCK_TIMEOUT = 300.0


class MigrationLockError(RuntimeError):
    """Another node held the schema migration lock for too long."""


def alembic_config() -> Config:
    """Alembic settings built in code: no alembic.ini, no logging fileConfig."""
    config = Config()
    # set_main_option interpolates %(name)s, so escape a literal "%".
    config.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    return config


def head_revision() -> str | None:
    """The newest revision of the migration scripts."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(db_or_url: Database | str, *, lock_timeout: float = LOCK_TIMEOUT) -> None:
    """Migrate the schema to the newest revision, one node at a time.

    The database itself must exist (see ``ensure_database_exists``).
    """
    with _database(db_or_url) as db, _migration_lock(db, lock_timeout):
        config = alembic_config()
        with db.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        log.info("database schema at revision %s", head_revision())


def current_revision(db_or_url: Database | str) -> str | None:
    """The revision the database is at, or None before the first migration."""
    with _database(db_or_url) as db, db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextlib.contextmanager
def _database(db_or_url: Database | str) -> Iterator[Database]:
    if isinstance(db_or_url, Database):
        yield db_or_url
        return
    db = Database(db_or_url, threads=1)
    try:
        yield db
    finally:
        db.close()


def _migration_lock(db: Database, timeout: float):
    if db.dialect == "mysql":
        return _mysql_lock(db, timeout)
    return _file_lock(db, timeout)


@contextlib.contextmanager
def _mysql_lock(db: Database, timeout: float) -> Iterator[None]:
    # GET_LOCK belongs to the connection, so this one stays open, apart from
    # the migration's, until the upgrade is over.
    with db.engine.connect() as conn:
        got = conn.execute(
            text("SELECT GET_LOCK(:name, :timeout)"), {"name": LOCK_NAME, "timeout": timeout}
        ).scalar()
        if got != 1:
            raise MigrationLockError(
                f"could not get MySQL lock {LOCK_NAME!r} within {timeout}s: "
                "another management node is migrating the schema or has hung"
            )
        try:
            yield
        finally:
            conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": LOCK_NAME})


@contextlib.contextmanager
def _file_lock(db: Database, timeout: float) -> Iterator[None]:
    path = db.engine.url.database
    if not path or path == ":memory:":
        yield  # a private database: nobody to race with
        return
    lock_path = f"{path}.migrate.lock"
    deadline = time.monotonic() + timeout
    with open(lock_path, "a") as lock_file:
        while True:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise MigrationLockError(
                        f"could not lock {lock_path} within {timeout}s: "
                        "another management node is migrating the schema or has hung"
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
