"""Query latency (issue 8): count and page at once, and the indexes of migration 0015.

The figures themselves come from benchmarks/query.py (100,000 VMs in
MariaDB); these tests pin down the shape that makes them: ``total`` and the
page are two statements run on two DB threads at the same time, and the VM
and nic tables carry the indexes the benchmark's query needs.
"""

import asyncio
from datetime import datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import inspect

from mn.api.message import QueryCondition
from mn.api.query import QueryEngine
from mn.db import Database, ensure_database_exists, upgrade
from tests.support.query_models import APIQueryQtVmInstanceMsg, QtBase, QtNicVO, QtVmVO


def uid(prefix: str, n: int) -> str:
    return f"{prefix}{n}".ljust(32, "0")


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('query_perf') / 'zstack.db'}"
    ensure_database_exists(url)
    upgrade(url)
    database = Database(url, threads=2)
    QtBase.metadata.create_all(database.engine)
    with database.session() as session:
        for i in range(5):
            created = datetime(2024, 1, 1 + i)
            session.add(QtVmVO(uuid=uid("e", i), name=f"vm-{i}", state="Running" if i % 2 else "Stopped",
                               cpuNum=1, memorySize=1, createDate=created, lastOpDate=created))
            session.add(QtNicVO(uuid=uid("n", i), vmInstanceUuid=uid("e", i), ip=f"10.0.0.{i}",
                                createDate=created))
    yield database
    database.close()


class CountingDb:
    """``node.db`` that records the calls and how many ran at the same time."""

    def __init__(self, db: Database, fail: str | None = None):
        self.db, self.fail = db, fail
        self.calls: list[str] = []
        self.running = self.most = 0

    async def run(self, fn):
        self.calls.append(fn.__name__)
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(0)  # the other call starts meanwhile, if there is one
            if fn.__name__ == self.fail:
                raise RuntimeError(f"{fn.__name__} failed")
            return await self.db.run(fn)
        finally:
            self.running -= 1


def msg(**fields) -> APIQueryQtVmInstanceMsg:
    return APIQueryQtVmInstanceMsg(conditions=[QueryCondition(name="state", op="=", value="Running")],
                                   sortBy="createDate", sortDirection="desc", **fields)


async def test_count_and_page_run_at_once_and_answer_as_one_transaction(db):
    counting = CountingDb(db)
    engine = QueryEngine(SimpleNamespace(db=counting, identity=None))
    reply = await engine.query(msg(replyWithCount=True, limit=1))
    assert sorted(counting.calls) == ["count", "page"]
    assert counting.most == 2
    plan = engine.plan(msg(replyWithCount=True, limit=1), None)
    assert (reply.total, reply.inventories) == await db.run(plan.run)
    assert (reply.total, [inv["name"] for inv in reply.inventories]) == (2, ["vm-3"])


@pytest.mark.parametrize("fields, calls", [
    ({"count": True}, ["count"]),
    ({"replyWithCount": True, "limit": 0}, ["count"]),
    ({}, ["page"]),
    ({"limit": 0}, []),
])
async def test_only_what_the_reply_needs_runs(db, fields, calls):
    counting = CountingDb(db)
    await QueryEngine(SimpleNamespace(db=counting, identity=None)).query(msg(**fields))
    assert counting.calls == calls


@pytest.mark.parametrize("failing", ["count", "page"])
async def test_a_failure_of_either_fails_the_query(db, failing):
    engine = QueryEngine(SimpleNamespace(db=CountingDb(db, fail=failing), identity=None))
    with pytest.raises(RuntimeError, match=f"{failing} failed"):
        await engine.query(msg(replyWithCount=True))


def test_migration_0015_indexes(db):
    indexes = inspect(db.engine)
    vm = {ix["name"]: ix["column_names"] for ix in indexes.get_indexes("VmInstanceVO")}
    nic = {ix["name"]: ix["column_names"] for ix in indexes.get_indexes("VmNicVO")}
    # (SQLite does not report the DESC of createDate; MariaDB does.)
    assert vm["ix_VmInstanceVO_hostUuid_state_createDate"] == ["hostUuid", "state", "createDate"]
    assert vm["ix_VmInstanceVO_createDate"] == ["createDate"]
    assert nic["ix_VmNicVO_l3NetworkUuid_vmInstanceUuid"] == ["l3NetworkUuid", "vmInstanceUuid"]
    # The composite indexes replace the single-column ones they start with.
    assert "ix_VmInstanceVO_hostUuid" not in vm and "ix_VmNicVO_l3NetworkUuid" not in nic
