"""QueryEngine on a real MariaDB: a few thousand VMs, the main operators, nested
conditions, tags, count and paging; EXPLAIN shows the indexes at work.

Every expected answer is computed in Python from the same generator that
filled the tables, never read back from the database.
"""

import time
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.dialects import mysql

from mn.api.message import QueryCondition
from mn.api.query import QueryEngine
from mn.api.query_parse import parse_rest_query
from mn.db import Database, upgrade
from mn.db.models.tag import UserTagVO
from tests.support.query_models import (
    APIQueryQtVmInstanceMsg,
    QtBase,
    QtClusterVO,
    QtHostVO,
    QtL3VO,
    QtNicVO,
    QtVmVO,
)

pytestmark = pytest.mark.integration

VMS = 3000
HOSTS = 30
L3S = 10
BASE = datetime(2024, 1, 1)


def uid(prefix: str, i: int) -> str:
    return f"{prefix}{i:031x}"


def vm_row(i: int) -> dict:
    return dict(uuid=uid("e", i), name=f"vm-{i:05d}", state="Running" if i % 3 else "Stopped",
                hostUuid=uid("h", i % HOSTS) if i % 11 else None, cpuNum=1 + i % 8,
                memorySize=(1 + i % 4) << 30, cpuUsage=float(i % 100), haEnabled=i % 2 == 0,
                description=None if i % 5 == 0 else f"vm number {i}",
                createDate=BASE + timedelta(minutes=i), lastOpDate=BASE)


def nics_of(i: int) -> list[dict]:
    """Two nics per VM, none for every seventh."""
    if i % 7 == 0:
        return []
    return [dict(uuid=uid("f", 2 * i + k), vmInstanceUuid=uid("e", i),
                 l3NetworkUuid=uid("a", (i + k) % L3S), ip=f"10.{k}.{i // 256}.{i % 256}",
                 deviceId=k, createDate=BASE) for k in range(2)]


def tags_of(i: int) -> list[str]:
    return [f"team-{i % 4}"] if i % 2 else []


def cluster_of_host(h: int) -> int:
    return h % 3


def expected(predicate) -> list[str]:
    return [vm_row(i)["name"] for i in range(VMS) if predicate(i)]


@pytest.fixture(scope="module")
def db(mariadb_url):
    upgrade(mariadb_url)
    database = Database(mariadb_url, threads=4)
    QtBase.metadata.create_all(database.engine)
    with database.session() as s:
        s.execute(insert(QtClusterVO), [dict(uuid=uid("c", c), name=f"cluster-{c}", createDate=BASE,
                                             lastOpDate=BASE) for c in range(3)])
        s.execute(insert(QtHostVO), [dict(uuid=uid("h", h), name=f"host-{h}",
                                          clusterUuid=uid("c", cluster_of_host(h)), createDate=BASE,
                                          lastOpDate=BASE) for h in range(HOSTS)])
        s.execute(insert(QtL3VO), [dict(uuid=uid("a", n), name=f"l3-{n}", createDate=BASE,
                                        lastOpDate=BASE) for n in range(L3S)])
        s.execute(insert(QtVmVO), [vm_row(i) for i in range(VMS)])
        s.execute(insert(QtNicVO), [nic for i in range(VMS) for nic in nics_of(i)])
        s.execute(insert(UserTagVO), [dict(uuid=uid("t", i), resourceUuid=uid("e", i),
                                           resourceType="QtVmVO", type="User", tag=tag,
                                           createDate=BASE, lastOpDate=BASE)
                                      for i in range(VMS) for tag in tags_of(i)])
        s.execute(text("ANALYZE TABLE QtVmVO, QtNicVO, QtHostVO, UserTagVO"))
    yield database
    database.close()


@pytest.fixture
def engine(db):
    return QueryEngine(SimpleNamespace(db=db, identity=None))


def msg(*conditions, **params) -> APIQueryQtVmInstanceMsg:
    return APIQueryQtVmInstanceMsg(
        conditions=[QueryCondition(name=c[0], op=c[1], value=c[2] if len(c) > 2 else None)
                    for c in conditions], **params)


async def all_names(engine, *conditions) -> list[str]:
    reply = await engine.query(msg(*conditions, limit=VMS, fields=["name"]))
    return sorted(inv["name"] for inv in reply.inventories)


def ip_host(i: int) -> tuple[int, int]:
    return i // 256, i % 256


@pytest.mark.parametrize("condition, predicate", [
    (("state", "=", "Stopped"), lambda i: i % 3 == 0),
    (("state", "!=", "Stopped"), lambda i: i % 3 != 0),
    (("cpuNum", ">=", "7"), lambda i: 1 + i % 8 >= 7),
    (("cpuUsage", "<", "2.5"), lambda i: i % 100 < 2.5),
    (("memorySize", ">", str(3 << 30)), lambda i: i % 4 == 3),
    (("haEnabled", "=", "true"), lambda i: i % 2 == 0),
    (("name", "?=", "vm-00001,vm-00002,vm-02999"), lambda i: i in (1, 2, 2999)),
    (("name", "!?=", "vm-00001,vm-00002"), lambda i: i not in (1, 2)),
    (("name", "~=", "vm-012%"), lambda i: 1200 <= i < 1300),
    (("name", "!~=", "vm-00%"), lambda i: i >= 1000),
    (("description", "is null"), lambda i: i % 5 == 0),
    (("hostUuid", "not null"), lambda i: i % 11 != 0),
    (("createDate", ">=", (BASE + timedelta(minutes=2990)).isoformat()), lambda i: i >= 2990),
    (("vmNics.ip", "=", "10.1.3.4"), lambda i: i % 7 and ip_host(i) == (3, 4)),
    (("vmNics.deviceId", ">", "0"), lambda i: i % 7 != 0),
    (("vmNics", "is null"), lambda i: i % 7 == 0),
    (("vmNics.l3Network.name", "=", "l3-4"), lambda i: i % 7 and (i % L3S in (4, 3))),
    (("host.cluster.name", "=", "cluster-1"),
     lambda i: i % 11 and cluster_of_host(i % HOSTS) == 1),
    (("__userTag__", "=", "team-1"), lambda i: i % 2 and i % 4 == 1),
    (("__userTag__", "!=", "team-1"), lambda i: not (i % 2 and i % 4 == 1)),
])
async def test_operators_and_nested_conditions(engine, condition, predicate):
    assert await all_names(engine, condition) == expected(predicate)


async def test_count_and_pages_of_a_combined_query(engine):
    conditions = [("state", "=", "Running"), ("cpuNum", ">", "2"),
                  ("vmNics.l3Network.name", "=", "l3-4")]
    want = expected(lambda i: i % 3 and 1 + i % 8 > 2 and i % 7 and i % L3S in (4, 3))
    reply = await engine.query(msg(*conditions, count=True))
    assert (reply.total, reply.inventories) == (len(want), [])
    reply = await engine.query(msg(*conditions, replyWithCount=True, limit=100, start=50,
                                   sortBy="name", sortDirection="desc"))
    assert reply.total == len(want)
    assert [inv["name"] for inv in reply.inventories] == sorted(want, reverse=True)[50:150]
    first = reply.inventories[0]
    i = int(first["name"][3:])
    assert [nic["ip"] for nic in first["vmNics"]] == [nic["ip"] for nic in nics_of(i)]


async def test_a_rest_query(engine):
    query = parse_rest_query(APIQueryQtVmInstanceMsg, {
        "q": ["vmNics.ip=10.0.2.185", "state=Running"], "fields": ["uuid,name"],
        "replyWithCount": ["true"]})
    reply = await engine.query(query)
    i = 2 * 256 + 185
    assert (reply.total, reply.inventories) == (1, [{"uuid": uid("e", i), "name": vm_row(i)["name"]}])


def explain(db, statement) -> list[dict]:
    sql = str(statement.compile(dialect=mysql.dialect(), compile_kwargs={"literal_binds": True}))
    with db.session() as s:
        return [dict(row._mapping) for row in s.execute(text("EXPLAIN " + sql))]


async def test_nested_conditions_use_the_relation_indexes(db, engine):
    conditions = [("state", "=", "Running"), ("vmNics.ip", "=", "10.1.3.4"),
                  ("host.cluster.name", "=", "cluster-1")]
    plan = engine.plan(msg(*conditions, limit=100), None)
    count = select(func.count()).select_from(QtVmVO).where(*plan.where)
    for statement in (count, plan.page_statement()):
        rows = explain(db, statement)
        keys = {row["table"]: row["key"] for row in rows}
        print("\n".join(str(row) for row in rows))
        # The selective nic condition is answered from the nic's ip index,
        # the VMs are then reached by primary key: no scan of the VM table.
        assert any(key == "ix_QtNicVO_ip" for key in keys.values())
        assert not any(row["table"] == "QtVmVO" and row["type"] == "ALL" for row in rows)

    timings = []
    for _ in range(20):
        started = time.perf_counter()
        await engine.query(msg(("state", "=", "Running"), ("cpuNum", ">", "2"),
                               ("vmNics.l3Network.name", "=", "l3-4"), limit=100,
                               replyWithCount=True))
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    print(f"\n{VMS} VMs, 2 conditions + 1 nested, page of 100 with count: "
          f"median {timings[10]:.1f} ms, max {timings[-1]:.1f} ms")
