"""The database layer on SQLite: models, sessions, worker threads, migrations."""

import asyncio
import threading
from datetime import datetime, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import String, func, inspect, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mn.db import Base, Database, ResourceMixin, current_revision, ensure_database_exists, upgrade
from mn.db.migrate import head_revision
from mn.db.models import ManagementNodeVO
from mn.db.types import utcnow
from mn.ids import is_uuid


class _TestBase(DeclarativeBase):
    """Keeps the test table out of Base.metadata and its migrations."""


class _ThingVO(ResourceMixin, _TestBase):
    __tablename__ = "ThingVO"
    color: Mapped[str] = mapped_column(String(16), default="red")


@pytest.fixture
def db(sqlite_url):
    ensure_database_exists(sqlite_url)
    upgrade(sqlite_url)
    database = Database(sqlite_url, threads=2)
    yield database
    database.close()


def test_sqlite_settings(db):
    assert db.dialect == "sqlite"
    with db.session() as s:
        assert s.connection().exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert s.connection().exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert s.connection().exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_ensure_database_exists_creates_sqlite_directory(tmp_path):
    url = f"sqlite:///{tmp_path / 'var' / 'sub' / 'zstack.db'}"
    ensure_database_exists(url)
    assert (tmp_path / "var" / "sub").is_dir()


def test_upgrade_to_head_and_again(db):
    assert current_revision(db) == head_revision() is not None
    upgrade(db)  # a second node starting: nothing to do
    assert current_revision(db) == head_revision()


def test_insert_and_read_management_node(db):
    with db.session() as s:
        node = ManagementNodeVO(hostName="10.0.0.1", port=8080, version="0.1.0")
        s.add(node)
    with db.session() as s:
        loaded = s.get(ManagementNodeVO, node.uuid)
        assert (loaded.hostName, loaded.port, loaded.state) == ("10.0.0.1", 8080, "Running")
        assert loaded.joinDate == node.joinDate
        assert loaded.heartBeat == node.heartBeat
    assert is_uuid(node.uuid)
    assert node.version == "0.1.0"  # readable after the session closed


def test_resource_mixin_defaults(sqlite_url):
    database = Database(sqlite_url)
    try:
        _TestBase.metadata.create_all(database.engine)
        before = utcnow()
        with database.session() as s:
            thing = _ThingVO(name="t1")
            s.add(thing)
        assert is_uuid(thing.uuid)
        assert before <= thing.createDate <= utcnow()
        assert thing.lastOpDate == thing.createDate
        assert thing.description is None

        with database.session() as s:
            s.get(_ThingVO, thing.uuid).color = "blue"
        with database.session() as s:
            assert s.get(_ThingVO, thing.uuid).lastOpDate >= thing.createDate
    finally:
        database.close()


def test_utcnow_is_naive_milliseconds():
    now = utcnow()
    assert now.tzinfo is None
    assert now.microsecond % 1000 == 0
    assert abs((datetime.now(timezone.utc).replace(tzinfo=None) - now).total_seconds()) < 5


def test_session_rolls_back_on_error(db):
    with pytest.raises(RuntimeError, match="boom"):
        with db.session() as s:
            s.add(ManagementNodeVO(hostName="h", port=1))
            s.flush()
            raise RuntimeError("boom")
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(ManagementNodeVO)) == 0


async def test_run_in_worker_thread(db):
    def add(session, host, *, port):
        session.add(ManagementNodeVO(uuid="a" * 32, hostName=host, port=port))
        return threading.get_ident()

    ident = await db.run(add, "h1", port=9)
    assert ident != threading.get_ident()

    def read(session):
        return session.get(ManagementNodeVO, "a" * 32).hostName

    hosts = await asyncio.gather(*(db.run(read) for _ in range(10)))
    assert hosts == ["h1"] * 10


async def test_run_propagates_error_and_rolls_back(db):
    def fail(session):
        session.add(ManagementNodeVO(hostName="h", port=1))
        session.flush()
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        await db.run(fail)
    assert await db.run(lambda s: s.scalar(select(func.count()).select_from(ManagementNodeVO))) == 0


def test_migrated_schema_matches_models(db):
    with db.engine.connect() as conn:
        diffs = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diffs == []
    assert "ManagementNodeVO" in inspect(db.engine).get_table_names()
