"""Database.run survives a lost connection: the transaction runs again once
the database answers; SQL errors and long outages still fail."""

from __future__ import annotations

import pymysql
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from mn.db import Database
from mn.db.engine import connection_lost


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
