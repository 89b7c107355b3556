"""Database.run survives a lost connection: the transaction runs again once
the database answers; SQL errors and long outages still fail; a COMMIT that
loses the connection is told by the transaction's probe."""

from __future__ import annotations

import pymysql
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from mn.db import Database
from mn.db.engine import after_commit, commit_probe, connection_lost


def lost(code: int = 2013) -> OperationalError:
    return OperationalError("SELECT 1", {}, pymysql.err.OperationalError(code, "Lost connection to server"))


@pytest.fixture
def db(sqlite_url):
    database = Database(sqlite_url, threads=2, outage_tolerance=5)
    yield database
    database.close()


def test_connection_errors_are_told_from_sql_errors():
    assert connection_lost(lost(2013)) and connection_lost(lost(2003)) and connection_lost(lost(2006))
    assert not connection_lost(lost(1064))  # a syntax error: running it again changes nothing
    assert not connection_lost(IntegrityError("INSERT", {}, pymysql.err.IntegrityError(1062, "Duplicate")))


async def test_a_lost_connection_runs_the_transaction_again(db):
    calls = []

    def work(session):
        calls.append(1)
        if len(calls) < 3:
            raise lost()
        return "done"

    assert await db.run(work) == "done"
    assert len(calls) == 3


async def test_sql_errors_are_not_retried(db):
    calls = []

    def work(session):
        calls.append(1)
        raise lost(1064)

    with pytest.raises(OperationalError):
        await db.run(work)
    assert len(calls) == 1


async def test_an_outage_longer_than_the_tolerance_fails(sqlite_url):
    db = Database(sqlite_url, threads=1, outage_tolerance=0.5)
    try:
        def work(session):
            raise lost()

        with pytest.raises(OperationalError):
            await db.run(work)
    finally:
        db.close()


# -- a connection lost during COMMIT -----------------------------------------------------


def commit_then_lose(monkeypatch, *, commits: bool) -> list:
    """The next COMMIT loses the connection, after committing (``commits``) or before."""
    from sqlalchemy.orm import Session

    real_commit, lost_once = Session.commit, []

    def commit(self):
        if lost_once:
            return real_commit(self)
        lost_once.append(1)
        if commits:
            real_commit(self)
        else:
            self.rollback()
        raise lost()

    monkeypatch.setattr(Session, "commit", commit)
    return lost_once


def counter_table(db) -> None:
    with db.session() as session:
        session.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        session.execute(text("INSERT INTO counter VALUES (0)"))


def read_counter(session) -> int:
    return session.scalar(text("SELECT n FROM counter"))


def increment_with_probe(calls: list, committed: list):
    def work(session):
        calls.append(1)
        before = read_counter(session)
        session.execute(text("UPDATE counter SET n = n + 1"))
        commit_probe(session, lambda other: read_counter(other) == before + 1)
        after_commit(session, lambda: committed.append(before + 1))
        return before + 1
    return work


async def test_a_commit_lost_after_committing_is_not_run_again(db, monkeypatch):
    counter_table(db)
    commit_then_lose(monkeypatch, commits=True)
    calls, committed = [], []
    assert await db.run(increment_with_probe(calls, committed)) == 1
    assert len(calls) == 1 and committed == [1]  # its after-commit callbacks ran too
    assert await db.run(read_counter) == 1


async def test_a_commit_lost_before_committing_runs_again(db, monkeypatch):
    counter_table(db)
    commit_then_lose(monkeypatch, commits=False)
    calls, committed = [], []
    assert await db.run(increment_with_probe(calls, committed)) == 1
    assert len(calls) == 2 and committed == [1]
    assert await db.run(read_counter) == 1


async def test_without_a_probe_a_lost_commit_runs_again(db, monkeypatch):
    counter_table(db)
    commit_then_lose(monkeypatch, commits=True)

    def increment(session):
        session.execute(text("UPDATE counter SET n = n + 1"))

    await db.run(increment)
    # The ambiguity a probe resolves: the work was done twice.
    assert await db.run(read_counter) == 2
