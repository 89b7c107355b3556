"""QueryEngine on SQLite: operators, nested relations, tags, paging, projection, errors, visibility.

The world (tests/support/query_models.py), uuids chosen so that the default
(primary key) order is web-1, web-2, db-1, idle::

    VM     state    host    cpu  memory  cpuUsage  ha     description  created
    web-1  Running  host-1  2    2 GiB   10.5      true   frontend     2024-01-01
    web-2  Running  host-1  4    4 GiB   50.0      false  -            2024-02-01
    db-1   Stopped  host-2  8    16 GiB  0.0       true   database     2024-03-01
    idle   Stopped  -       1    1 GiB   0.0       false  -            2024-04-01

Nics (ip, l3): web-1 10.0.0.1 on l3-public (with a used IP) and 192.168.0.1
on l3-private (device 1); web-2 10.0.0.2 on l3-public (with a used IP); db-1
one without ip on l3-private; idle none.

host-1 is in cluster-1, host-2 in cluster-2, host-3 in none. User tags:
web-1 "web" "prod", web-2 "web", db-1 "db"; system tag "ha::true" on web-1;
user tag "primary" on web-1's first nic.
"""

import decimal
import enum
from datetime import datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

import mn.api.query as query_module

from mn.api.inventory import Inventory, Relation
from mn.api.message import APIQueryReply, QueryCondition, SessionInfo
from mn.api.query import QUERY_OPS, QueryEngine, coerce_value, inventory_schema
from mn.api.query_parse import parse_rest_query
from mn.db import Database, ensure_database_exists, upgrade
from mn.db.models.tag import SystemTagVO, UserTagVO
from mn.errors import OperationError, SysErrors
from tests.support.query_models import (
    APIQueryQtComputedMsg,
    APIQueryQtHostMsg,
    APIQueryQtVmInstanceMsg,
    APIQueryQtVmInstanceReply,
    QtBase,
    QtClusterVO,
    QtHostVO,
    QtL3VO,
    QtNicVO,
    QtUsedIpVO,
    QtVmVO,
)

GiB = 1 << 30
ALL = ["web-1", "web-2", "db-1", "idle"]


def uid(prefix: str, n: int) -> str:
    return f"{prefix}{n}".ljust(32, "0")


VM = {name: uid("e", i) for i, name in enumerate(ALL, start=1)}
NIC_A, NIC_B, NIC_C, NIC_D = (uid("n", i) for i in range(1, 5))


def populate(session: Session) -> None:
    session.add_all([
        QtClusterVO(uuid=uid("c", 1), name="cluster-1"),
        QtClusterVO(uuid=uid("c", 2), name="cluster-2", hypervisorType="ESX"),
        QtHostVO(uuid=uid("h", 1), name="host-1", clusterUuid=uid("c", 1), totalCpu=16),
        QtHostVO(uuid=uid("h", 2), name="host-2", clusterUuid=uid("c", 2), state="Disabled"),
        QtHostVO(uuid=uid("h", 3), name="host-3"),
        QtL3VO(uuid=uid("l", 1), name="l3-public", category="Public"),
        QtL3VO(uuid=uid("l", 2), name="l3-private"),
    ])
    vms = [("web-1", "Running", 1, 2, 2, 10.5, True, "frontend", 1),
           ("web-2", "Running", 1, 4, 4, 50.0, False, None, 2),
           ("db-1", "Stopped", 2, 8, 16, 0.0, True, "database", 3),
           ("idle", "Stopped", None, 1, 1, 0.0, False, None, 4)]
    for name, state, host, cpu, mem, usage, ha, description, month in vms:
        created = datetime(2024, month, 1)
        session.add(QtVmVO(uuid=VM[name], name=name, state=state,
                           hostUuid=uid("h", host) if host else None, cpuNum=cpu,
                           memorySize=mem * GiB, cpuUsage=usage, haEnabled=ha,
                           description=description, internalNote="secret",
                           createDate=created, lastOpDate=created))
    created = datetime(2024, 5, 1)
    session.add_all([
        QtNicVO(uuid=NIC_A, vmInstanceUuid=VM["web-1"], l3NetworkUuid=uid("l", 1), ip="10.0.0.1",
                createDate=created),
        QtNicVO(uuid=NIC_B, vmInstanceUuid=VM["web-1"], l3NetworkUuid=uid("l", 2),
                ip="192.168.0.1", deviceId=1, createDate=created),
        QtNicVO(uuid=NIC_C, vmInstanceUuid=VM["web-2"], l3NetworkUuid=uid("l", 1), ip="10.0.0.2",
                createDate=created),
        QtNicVO(uuid=NIC_D, vmInstanceUuid=VM["db-1"], l3NetworkUuid=uid("l", 2), ip=None,
                createDate=created),
        QtUsedIpVO(uuid=uid("u", 1), vmNicUuid=NIC_A, ip="10.0.0.1"),
        QtUsedIpVO(uuid=uid("u", 2), vmNicUuid=NIC_C, ip="10.0.0.2"),
    ])
    for vm, tags in (("web-1", ["web", "prod"]), ("web-2", ["web"]), ("db-1", ["db"])):
        for tag in tags:
            session.add(UserTagVO(resourceUuid=VM[vm], resourceType="QtVmVO", tag=tag))
    session.add(SystemTagVO(resourceUuid=VM["web-1"], resourceType="QtVmVO", tag="ha::true"))
    session.add(UserTagVO(resourceUuid=NIC_A, resourceType="QtNicVO", tag="primary"))


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """One database for the module: the tests only read it."""
    url = f"sqlite:///{tmp_path_factory.mktemp('query') / 'zstack.db'}"
    ensure_database_exists(url)
    upgrade(url)  # SystemTagVO and UserTagVO
    database = Database(url, threads=2)
    QtBase.metadata.create_all(database.engine)
    with database.session() as session:
        populate(session)
    yield database
    database.close()


@pytest.fixture
def engine(db):
    return QueryEngine(SimpleNamespace(db=db, identity=None))


def query_msg(*conditions, msg_cls=APIQueryQtVmInstanceMsg, **params):
    return msg_cls(conditions=[QueryCondition(name=c[0], op=c[1], value=c[2] if len(c) > 2 else None)
                               for c in conditions], **params)


async def names(engine, *conditions, **params) -> list[str]:
    reply = await engine.query(query_msg(*conditions, **params))
    return [inv["name"] for inv in reply.inventories]


async def invalid(engine, *conditions, msg_cls=APIQueryQtVmInstanceMsg, **params) -> str:
    with pytest.raises(OperationError) as excinfo:
        await engine.query(query_msg(*conditions, msg_cls=msg_cls, **params))
    assert excinfo.value.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    return excinfo.value.error.details


# -- operators on columns ------------------------------------------------------

@pytest.mark.parametrize("condition, expected", [
    (("name", "=", "web-1"), ["web-1"]),
    (("name", "!=", "web-1"), ["web-2", "db-1", "idle"]),
    (("cpuNum", ">", "2"), ["web-2", "db-1"]),
    (("cpuNum", ">=", "2"), ["web-1", "web-2", "db-1"]),
    (("cpuNum", "<", "2"), ["idle"]),
    (("cpuNum", "<=", "2"), ["web-1", "idle"]),
    (("name", "in", "web-1,db-1"), ["web-1", "db-1"]),
    (("name", "not in", "web-1,db-1"), ["web-2", "idle"]),
    (("name", "like", "web%"), ["web-1", "web-2"]),
    (("name", "not like", "web%"), ["db-1", "idle"]),
    (("description", "is null"), ["web-2", "idle"]),
    (("description", "is not null"), ["web-1", "db-1"]),
    # REST spellings are accepted as aliases
    (("name", "?=", "web-1,db-1"), ["web-1", "db-1"]),
    (("name", "!?=", "web-1,db-1"), ["web-2", "idle"]),
    (("name", "~=", "%-1"), ["web-1", "db-1"]),
    (("name", "!~=", "%-1"), ["web-2", "idle"]),
    (("description", "not null"), ["web-1", "db-1"]),
    # NULL matches neither "!=" nor "="
    (("description", "!=", "frontend"), ["db-1"]),
    # an empty value is a value
    (("description", "=", ""), []),
])
async def test_every_operator_on_a_column(engine, condition, expected):
    assert await names(engine, condition) == expected


def test_the_operators_are_all_tested():
    assert set(QUERY_OPS) == {"=", "!=", ">", ">=", "<", "<=", "in", "not in", "is null",
                              "is not null", "like", "not like"}


@pytest.mark.parametrize("condition, expected", [
    (("memorySize", ">=", str(4 * GiB)), ["web-2", "db-1"]),
    (("cpuUsage", ">", "5.5"), ["web-1", "web-2"]),
    (("cpuUsage", "=", "0"), ["db-1", "idle"]),
    (("haEnabled", "=", "true"), ["web-1", "db-1"]),
    (("haEnabled", "=", "FALSE"), ["web-2", "idle"]),
    (("cpuNum", "in", "1, 8"), ["db-1", "idle"]),
    (("cpuNum", "like", "%8%"), ["db-1"]),
    (("createDate", ">=", "2024-02-01"), ["web-2", "db-1", "idle"]),
    (("createDate", "=", "2024-02-01T00:00:00Z"), ["web-2"]),
    # 20:00 at UTC-5 is 01:00 UTC the next day
    (("createDate", ">", "2024-01-31T20:00:00-05:00"), ["db-1", "idle"]),
    (("createDate", "<", "Mar 1, 2024 12:00:00 AM"), ["web-1", "web-2"]),
    # "in" splits on commas, so its dates are ISO ones
    (("createDate", "in", "2024-02-01,2024-04-01 00:00:00"), ["web-2", "idle"]),
])
async def test_values_take_the_type_of_their_column(engine, condition, expected):
    assert await names(engine, condition) == expected


@pytest.mark.parametrize("condition, message", [
    (("cpuNum", "=", "two"), "value [two] of field [cpuNum] is not a valid integer"),
    (("cpuNum", "in", "1,x"), "value [x] of field [cpuNum] is not a valid integer"),
    (("cpuUsage", ">", "nan"), "value [nan] of field [cpuUsage] is not a valid number"),
    (("haEnabled", "=", "yes"), "value [yes] of field [haEnabled] is not a valid boolean "
                                "(true or false)"),
    (("createDate", ">", "yesterday"), "value [yesterday] of field [createDate] is not a valid "
                                       "date (ISO 8601 or like 'May 2, 2014 8:48:15 PM')"),
    (("vmNics.deviceId", "=", "first"), "value [first] of field [deviceId] is not a valid integer"),
])
async def test_values_of_the_wrong_type_are_invalid(engine, condition, message):
    assert await invalid(engine, condition) == message


async def test_conditions_combine(engine):
    assert await names(engine, ("state", "=", "Running"), ("cpuNum", ">", "2")) == ["web-2"]


# -- relations -----------------------------------------------------------------

@pytest.mark.parametrize("condition, expected", [
    (("vmNics.ip", "=", "10.0.0.1"), ["web-1"]),
    # at least one related row satisfies the condition (db-1's nic has no ip)
    (("vmNics.ip", "!=", "10.0.0.1"), ["web-1", "web-2"]),
    (("vmNics.ip", "in", "10.0.0.2,192.168.0.1"), ["web-1", "web-2"]),
    (("vmNics.ip", "not in", "10.0.0.1"), ["web-1", "web-2"]),
    (("vmNics.ip", "like", "10.%"), ["web-1", "web-2"]),
    (("vmNics.ip", "not like", "10.%"), ["web-1"]),
    (("vmNics.ip", "is null"), ["db-1"]),
    (("vmNics.ip", "is not null"), ["web-1", "web-2"]),
    (("vmNics.deviceId", ">", "0"), ["web-1"]),
    (("vmNics.deviceId", "<=", "0"), ["web-1", "web-2", "db-1"]),
    # the relation itself: no related row / some related row
    (("vmNics", "is null"), ["idle"]),
    (("vmNics", "is not null"), ["web-1", "web-2", "db-1"]),
    # expanded relations are queryable too
    (("host.name", "=", "host-1"), ["web-1", "web-2"]),
    (("host.totalCpu", ">", "8"), ["web-1", "web-2"]),
    (("host", "is null"), ["idle"]),
])
async def test_conditions_through_a_relation(engine, condition, expected):
    assert await names(engine, condition) == expected


@pytest.mark.parametrize("condition, expected", [
    (("vmNics.l3Network.name", "=", "l3-private"), ["web-1", "db-1"]),
    (("vmNics.l3Network.category", "!=", "Public"), ["web-1", "db-1"]),
    (("vmNics.l3Network.name", "like", "%public"), ["web-1", "web-2"]),
    (("vmNics.usedIps.ip", "=", "10.0.0.2"), ["web-2"]),
    (("vmNics.usedIps", "is not null"), ["web-1", "web-2"]),
    (("host.cluster.name", "=", "cluster-2"), ["db-1"]),
    (("host.cluster.hypervisorType", "in", "KVM"), ["web-1", "web-2"]),
    (("host.cluster", "is not null"), ["web-1", "web-2", "db-1"]),
])
async def test_conditions_two_relations_deep(engine, condition, expected):
    assert await names(engine, condition) == expected


async def test_nested_and_plain_conditions_combine(engine):
    assert await names(engine, ("state", "=", "Running"), ("vmNics.l3Network.name", "=", "l3-private"),
                       ("host.cluster.name", "=", "cluster-1")) == ["web-1"]


# -- tags ----------------------------------------------------------------------

@pytest.mark.parametrize("condition, expected", [
    (("__userTag__", "=", "web"), ["web-1", "web-2"]),
    (("__userTag__", "!=", "web"), ["db-1", "idle"]),
    (("__userTag__", "in", "prod,db"), ["web-1", "db-1"]),
    (("__userTag__", "?=", "prod,db"), ["web-1", "db-1"]),
    (("__userTag__", "not in", "web"), ["db-1", "idle"]),
    (("__userTag__", "like", "w%"), ["web-1", "web-2"]),
    (("__userTag__", "not like", "w%"), ["db-1", "idle"]),
    (("__userTag__", "is not null"), ["web-1", "web-2", "db-1"]),
    (("__userTag__", "is null"), ["idle"]),
    (("__systemTag__", "=", "ha::true"), ["web-1"]),
    (("__systemTag__", "=", "web"), []),
    (("vmNics.__userTag__", "=", "primary"), ["web-1"]),
])
async def test_tag_conditions(engine, condition, expected):
    assert await names(engine, condition) == expected


async def test_ordering_operators_do_not_apply_to_tags(engine):
    message = await invalid(engine, ("__userTag__", ">", "web"))
    assert message == ("operator [>] is not supported on __userTag__; use one of =, !=, in, not in, "
                       "like, not like, is not null, is null")


# -- paging, count, sort -------------------------------------------------------

async def test_limit_and_start_page_in_primary_key_order(engine):
    assert await names(engine, limit=2) == ["web-1", "web-2"]
    assert await names(engine, limit=2, start=2) == ["db-1", "idle"]
    assert await names(engine, limit=2, start=3) == ["idle"]
    assert await names(engine, limit=0) == []


async def test_count_returns_the_total_only(engine):
    reply = await engine.query(query_msg(("state", "=", "Running"), count=True, limit=1))
    assert (reply.total, reply.inventories) == (2, [])


async def test_reply_with_count_returns_both(engine):
    reply = await engine.query(query_msg(("cpuNum", ">", "1"), replyWithCount=True, limit=1, start=1))
    assert reply.total == 3
    assert [inv["name"] for inv in reply.inventories] == ["web-2"]
    reply = await engine.query(query_msg(replyWithCount=True, limit=0))
    assert (reply.total, reply.inventories) == (4, [])


async def test_no_count_no_total(engine):
    reply = await engine.query(query_msg())
    assert reply.total is None


@pytest.mark.parametrize("sort_by, direction, expected", [
    ("cpuNum", "asc", ["idle", "web-1", "web-2", "db-1"]),
    ("cpuNum", "desc", ["db-1", "web-2", "web-1", "idle"]),
    ("name", "asc", ["db-1", "idle", "web-1", "web-2"]),
    # ties keep primary key order, whatever the direction
    ("state", "asc", ["web-1", "web-2", "db-1", "idle"]),
    ("state", "desc", ["db-1", "idle", "web-1", "web-2"]),
    ("createDate", "desc", ["idle", "db-1", "web-2", "web-1"]),
])
async def test_sort(engine, sort_by, direction, expected):
    assert await names(engine, sortBy=sort_by, sortDirection=direction) == expected


async def test_sort_pages(engine):
    assert await names(engine, sortBy="cpuNum", sortDirection="desc", limit=2, start=1) == ["web-2",
                                                                                          "web-1"]


@pytest.mark.parametrize("sort_by, message", [
    ("nope", "sortBy [nope] is invalid: sort by one of cpuNum, cpuUsage, createDate, description, "
             "haEnabled, hostUuid, lastOpDate, memorySize, name, state, uuid"),
    ("vmNics", "sortBy [vmNics] is invalid"),
    ("host.name", "sortBy [host.name] is invalid"),
])
async def test_sort_by_anything_but_a_column_is_invalid(engine, sort_by, message):
    assert (await invalid(engine, sortBy=sort_by)).startswith(message)


# -- inventories and projection ------------------------------------------------

async def test_inventories_carry_their_shown_relations(engine):
    reply = await engine.query(query_msg(("name", "=", "web-1")))
    assert isinstance(reply, APIQueryQtVmInstanceReply)
    (web1,) = reply.inventories
    assert web1["uuid"] == VM["web-1"]
    assert (web1["cpuNum"], web1["memorySize"], web1["haEnabled"]) == (2, 2 * GiB, True)
    assert web1["createDate"] == datetime(2024, 1, 1)
    assert "host" not in web1  # expanded: queryable, not shown
    assert "internalNote" not in web1  # not an inventory field
    assert [nic["uuid"] for nic in web1["vmNics"]] == [NIC_A, NIC_B]
    nic_a = web1["vmNics"][0]
    assert (nic_a["ip"], nic_a["createDate"]) == ("10.0.0.1", datetime(2024, 5, 1))
    assert nic_a["usedIps"] == [{"uuid": uid("u", 1), "vmNicUuid": NIC_A, "ip": "10.0.0.1"}]
    assert web1["vmNics"][1]["usedIps"] == []


async def test_vms_without_related_rows_have_empty_lists(engine):
    (idle,) = (await engine.query(query_msg(("name", "=", "idle")))).inventories
    assert idle["vmNics"] == []


async def test_single_shown_relation(engine):
    reply = await engine.query(query_msg(msg_cls=APIQueryQtHostMsg, sortBy="name"))
    assert type(reply) is APIQueryReply
    hosts = {inv["name"]: inv for inv in reply.inventories}
    assert hosts["host-1"]["cluster"]["name"] == "cluster-1"
    assert hosts["host-2"]["cluster"]["hypervisorType"] == "ESX"
    assert hosts["host-3"]["cluster"] is None


async def test_fields_project_the_inventories(engine):
    reply = await engine.query(query_msg(("name", "like", "web%"), fields=["uuid", "name"]))
    assert reply.inventories == [{"uuid": VM["web-1"], "name": "web-1"},
                                 {"uuid": VM["web-2"], "name": "web-2"}]


async def test_fields_may_name_a_relation(engine):
    reply = await engine.query(query_msg(("name", "=", "web-2"), fields=["name", "vmNics"]))
    (web2,) = reply.inventories
    assert set(web2) == {"name", "vmNics"}
    assert [nic["ip"] for nic in web2["vmNics"]] == ["10.0.0.2"]


@pytest.mark.parametrize("fields, message", [
    (["name", "nope"], "fields [nope] is invalid: the valid fields of QtVmInventory are cpuNum, "
                       "cpuUsage, createDate, description, haEnabled, hostUuid, lastOpDate, "
                       "memorySize, name, state, uuid, vmNics"),
    (["host"], "fields [host] is invalid"),  # an expanded relation is not shown
    (["vmNics.ip"], "fields [vmNics.ip] is invalid"),
])
async def test_fields_naming_unknown_fields_are_invalid(engine, fields, message):
    assert (await invalid(engine, fields=fields)).startswith(message)


async def test_computed_fields_are_shown_but_not_queryable(engine):
    reply = await engine.query(query_msg(("name", "=", "idle"), msg_cls=APIQueryQtComputedMsg,
                                         fields=["nameLength"]))
    assert reply.inventories == [{"nameLength": 4}]
    message = await invalid(engine, ("nameLength", "=", "4"), msg_cls=APIQueryQtComputedMsg)
    assert message == ("condition name [nameLength] is invalid: field [nameLength] of "
                       "QtComputedInventory is not a column and cannot be queried")


# -- groupBy -------------------------------------------------------------------

async def test_group_by_gives_one_entry_per_group(engine):
    reply = await engine.query(query_msg(groupBy="state", replyWithCount=True))
    assert reply.inventories == [{"state": "Running"}, {"state": "Stopped"}]
    assert reply.total == 2


async def test_group_by_several_columns_with_conditions_sort_and_paging(engine):
    msg = query_msg(("cpuNum", ">", "1"), groupBy="state, haEnabled", sortBy="state",
                    sortDirection="desc", replyWithCount=True, limit=2)
    reply = await engine.query(msg)
    assert reply.total == 3
    assert reply.inventories == [{"state": "Stopped", "haEnabled": True},
                                 {"state": "Running", "haEnabled": False}]


async def test_group_by_count_and_fields(engine):
    reply = await engine.query(query_msg(groupBy="state", count=True))
    assert (reply.total, reply.inventories) == (2, [])
    reply = await engine.query(query_msg(groupBy="state,haEnabled", fields=["haEnabled"]))
    assert reply.inventories == [{"haEnabled": False}, {"haEnabled": True},
                                 {"haEnabled": False}, {"haEnabled": True}]


@pytest.mark.parametrize("params, message", [
    ({"groupBy": "vmNics"}, "groupBy [vmNics] is invalid: it is not a column of QtVmInventory"),
    ({"groupBy": "state,"}, "groupBy [state,] must name one or more columns"),
    ({"groupBy": "state", "fields": ["name"]}, "fields [name] is invalid: the valid groupBy "
                                               "columns are state"),
    ({"groupBy": "state", "sortBy": "name"}, "sortBy [name] is invalid: sort by one of state"),
])
async def test_bad_group_by_is_invalid(engine, params, message):
    assert (await invalid(engine, **params)).startswith(message)


# -- bad conditions ------------------------------------------------------------

@pytest.mark.parametrize("condition, message", [
    (("nope", "=", "1"), "condition name [nope] is invalid: QtVmInventory has no field [nope]; "
                         "valid fields are cpuNum, cpuUsage, createDate, description, haEnabled, "
                         "hostUuid, lastOpDate, memorySize, name, state, uuid; relations: host, "
                         "vmNics; tags: __systemTag__, __userTag__"),
    # a column of the table that the inventory does not show
    (("internalNote", "=", "secret"), "condition name [internalNote] is invalid: QtVmInventory "
                                      "has no field [internalNote]"),
    (("nics.ip", "=", "1"), "condition name [nics.ip] is invalid: QtVmInventory has no field "
                            "[nics] in [nics.ip]"),
    (("vmNics.nope", "=", "1"), "condition name [vmNics.nope] is invalid: QtNicInventory has no "
                                "field [nope] in [vmNics.nope]"),
    (("vmNics.l3Network.nope.x", "=", "1"), "condition name [vmNics.l3Network.nope.x] is invalid: "
                                            "QtL3Inventory has no field [nope]"),
    (("name.first", "=", "1"), "condition name [name.first] is invalid: field [name] of "
                               "QtVmInventory is not a relation; its relations are host, vmNics"),
    (("vmNics..ip", "=", "1"), "condition name [vmNics..ip] is not a field path"),
    (("vmNics", "=", "1"), "condition name [vmNics] is a relation of QtVmInventory: it takes "
                           "'is null' (no related row) or 'not null' (some related row)"),
    (("name", "<>", "1"), "unknown query operator [<>]; valid operators are =, !=, >, >=, <, <=, "
                          "in, not in, is null, is not null, like, not like (or ?=, !?=, ~=, !~=, "
                          "not null)"),
    (("name", "="), "'value' of query condition [name =] cannot be null"),
])
async def test_bad_conditions_are_invalid(engine, condition, message):
    assert (await invalid(engine, condition)).startswith(message)


# -- visibility ----------------------------------------------------------------

class FakeIdentity:
    """Lets accounts see only the VMs in ``visible``; records its calls."""

    def __init__(self, visible):
        self.visible = visible
        self.calls = []

    def visible_condition(self, session, uuid_column):
        self.calls.append((session, uuid_column))
        return uuid_column.in_(self.visible)


USER = SessionInfo(uuid="s" * 32, accountUuid="a" * 32)
ADMIN = SessionInfo(uuid="t" * 32, accountUuid="b" * 32, isAdmin=True)


async def test_non_admin_sees_what_identity_allows(db):
    identity = FakeIdentity([VM["web-1"], VM["db-1"]])
    engine = QueryEngine(SimpleNamespace(db=db, identity=identity))
    reply = await engine.query(query_msg(replyWithCount=True), USER)
    assert ([inv["name"] for inv in reply.inventories], reply.total) == (["web-1", "db-1"], 2)
    assert identity.calls == [(USER, QtVmVO.uuid)]
    assert await names(engine, ("state", "=", "Running")) == ["web-1", "web-2"]  # no session
    reply = await engine.query(query_msg(), ADMIN)
    assert [inv["name"] for inv in reply.inventories] == ALL
    assert len(identity.calls) == 1


async def test_the_session_defaults_to_the_messages(db):
    engine = QueryEngine(SimpleNamespace(db=db, identity=FakeIdentity([VM["idle"]])))
    msg = query_msg()
    msg.session = USER
    assert [inv["name"] for inv in (await engine.query(msg)).inventories] == ["idle"]


async def test_no_identity_no_filter(engine):
    reply = await engine.query(query_msg(), USER)
    assert [inv["name"] for inv in reply.inventories] == ALL


# -- REST end to end, and the schema checks ------------------------------------

async def test_a_rest_query_end_to_end(engine):
    msg = parse_rest_query(APIQueryQtVmInstanceMsg, {
        "q": ["vmNics.l3Network.name=l3-public", "cpuNum>=2", "__userTag__?=web,db"],
        "sort": ["-cpuNum"], "fields": ["name,cpuNum"], "replyWithCount": ["true"], "limit": ["1"]})
    reply = await engine.query(msg)
    assert (reply.total, reply.inventories) == (2, [{"name": "web-2", "cpuNum": 4}])
    reply = await engine.query(parse_rest_query(APIQueryQtVmInstanceMsg, {}, path_uuid=VM["idle"]))
    assert [inv["name"] for inv in reply.inventories] == ["idle"]


class QtCycleAInventory(Inventory):
    VO = QtL3VO
    RELATIONS = {"b": Relation("QtCycleBInventory", "uuid", "uuid")}
    uuid: str
    b: list = []


class QtCycleBInventory(Inventory):
    VO = QtL3VO
    RELATIONS = {"a": Relation("QtCycleAInventory", "uuid", "uuid")}
    uuid: str
    a: list = []


class QtBadKeyInventory(Inventory):
    VO = QtL3VO
    RELATIONS = {"nics": Relation("QtNicInventory", "uuid", "l3Uuid", expanded=True)}
    uuid: str


def test_inventory_schemas_are_checked():
    with pytest.raises(TypeError, match="QtCycleAInventory -> QtCycleBInventory -> QtCycleAInventory"):
        inventory_schema(QtCycleAInventory)
    with pytest.raises(TypeError, match="QtBadKeyInventory.nics: QtNicVO has no column l3Uuid"):
        inventory_schema(QtBadKeyInventory)


# -- how the SQL runs ----------------------------------------------------------

async def test_count_and_page_each_one_call_and_one_statement_per_relation(db):
    calls, statements = [], []
    node = SimpleNamespace(db=SimpleNamespace(run=lambda fn: calls.append(fn) or db.run(fn)),
                           identity=None)

    def listener(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        reply = await QueryEngine(node).query(query_msg(replyWithCount=True))
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert len(reply.inventories) == 4
    # the count and the page, run at once
    assert [call.__name__ for call in calls] == ["count", "page"]
    # count, page, every VM's nics, every nic's used IPs
    assert len(statements) == 4


async def test_related_rows_load_in_chunks(engine, monkeypatch):
    whole = (await engine.query(query_msg())).inventories
    monkeypatch.setattr(query_module, "_IN_CHUNK", 1)
    assert (await engine.query(query_msg())).inventories == whole


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@pytest.mark.parametrize("python_type, value, expected", [
    (Color, "red", Color.RED),
    (Color, "BLUE", Color.BLUE),
    (decimal.Decimal, "1.50", decimal.Decimal("1.50")),
    (str, " as is ", " as is "),
    (None, "untyped", "untyped"),
])
def test_coerce_value(python_type, value, expected):
    assert coerce_value("f", python_type, value) == expected


@pytest.mark.parametrize("python_type, value, message", [
    (Color, "green", "value [green] of field [f] is not a valid value (one of red, blue)"),
    (decimal.Decimal, "NaN", "value [NaN] of field [f] is not a valid number"),
])
def test_coerce_value_refuses(python_type, value, message):
    with pytest.raises(OperationError) as excinfo:
        coerce_value("f", python_type, value)
    assert excinfo.value.error.details == message
