"""The database layer on a real MariaDB: concurrent migrations, precision, threads."""

import asyncio
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, text

from mn.db import Base, Database, current_revision, ensure_database_exists, upgrade
from mn.db.migrate import LOCK_NAME, MigrationLockError, head_revision
from mn.db.models import ManagementNodeVO

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

# Every process waits for the same instant after its imports, so the
# upgrades really overlap.
UPGRADE_SCRIPT = """
import sys, time
from mn.db import upgrade
url, start = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
upgrade(url)
"""


@pytest.fixture(scope="module")
def db(mariadb_url):
    database = Database(mariadb_url, threads=4)
    yield database
    database.close()


def test_ensure_database_exists(db, mariadb_url):
    ensure_database_exists(mariadb_url)  # already there: no error
    name = db.engine.url.database
    with db.session() as s:
        charset = s.execute(
            text("SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA "
                 "WHERE SCHEMA_NAME = :name"),
            {"name": name},
        ).scalar_one()
    assert charset == "utf8mb4"
    assert db.dialect == "mysql"


def test_concurrent_upgrades_from_four_processes(db, mariadb_url):
    assert current_revision(db) is None
    start = str(time.time() + 3)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", UPGRADE_SCRIPT, mariadb_url, start],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, "\n".join(outputs)

    with db.session() as s:
        assert s.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [
            head_revision()
        ]
        tables = s.execute(
            text("SELECT COUNT(*) FROM information_schema.TABLES "
                 "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'ManagementNodeVO'")
        ).scalar_one()
    assert tables == 1
    assert current_revision(mariadb_url) == head_revision()


def test_migrated_schema_matches_models(db):
    with db.engine.connect() as conn:
        diffs = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diffs == []


def test_upgrade_fails_clearly_while_lock_is_held(db):
    with db.engine.connect() as holder:
        assert holder.execute(text("SELECT GET_LOCK(:n, 0)"), {"n": LOCK_NAME}).scalar() == 1
        try:
            with pytest.raises(MigrationLockError, match=LOCK_NAME):
                upgrade(db, lock_timeout=1)
        finally:
            holder.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": LOCK_NAME})
    upgrade(db)  # free again


def test_heartbeat_keeps_milliseconds(db):
    beat = datetime(2024, 5, 6, 7, 8, 9, 123000)
    with db.session() as s:
        node = ManagementNodeVO(hostName="mn1", port=8080, heartBeat=beat)
        s.add(node)
    with db.session() as s:
        assert s.scalar(select(ManagementNodeVO.heartBeat).filter_by(uuid=node.uuid)) == beat
        # A default from utcnow() is cut to milliseconds, so it reads back equal.
        assert s.get(ManagementNodeVO, node.uuid).joinDate == node.joinDate
        s.delete(s.get(ManagementNodeVO, node.uuid))


async def test_run_never_uses_more_threads_than_configured(db):
    idents = set()
    running = 0
    peak = 0
    guard = threading.Lock()

    def work(session, i):
        nonlocal running, peak
        with guard:
            idents.add(threading.get_ident())
            running += 1
            peak = max(peak, running)
        try:
            return session.execute(text("SELECT :i FROM (SELECT SLEEP(0.01)) AS t"), {"i": i}).scalar()
        finally:
            with guard:
                running -= 1

    results = await asyncio.gather(*(db.run(work, i) for i in range(50)))
    assert results == list(range(50))
    assert threading.get_ident() not in idents
    assert len(idents) <= 4
    assert 1 < peak <= 4
