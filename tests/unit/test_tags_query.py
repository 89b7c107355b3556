"""tag_condition: __systemTag__ / __userTag__ query conditions in a real SELECT (SQLite)."""

from types import SimpleNamespace

import pytest
from sqlalchemy import Column, MetaData, String, Table, select

from mn.db import Database, ensure_database_exists, upgrade
from mn.errors import OperationError, SysErrors
from mn.ids import new_uuid
from mn.tags import TAG_OPERATORS, PatternedSystemTag, TagManager, tag_condition, tag_kind_of_field
from mn.workqueue import WorkQueues

THING = "TagTestThingVO"
ROLE = PatternedSystemTag("role::{role}", THING, multi=True)

# A resource table of the test's own, outside Base.metadata.
_things = Table(THING, MetaData(),
                Column("uuid", String(32), primary_key=True),
                Column("name", String(64), nullable=False))

# name -> (system tags, user tags)
THINGS = {
    "a": (["role::web", "role::lb"], ["web", "prod"]),
    "b": (["role::web"], ["web"]),
    "c": (["role::db"], ["db"]),
    "d": ([], []),
}


@pytest.fixture
async def things(sqlite_url):
    ensure_database_exists(sqlite_url)
    upgrade(sqlite_url)
    db = Database(sqlite_url, threads=2)
    _things.metadata.create_all(db.engine)
    tags = TagManager(SimpleNamespace(db=db, queues=WorkQueues()))
    tags.register(ROLE)

    def create(session):
        for name, (system_tags, user_tags) in THINGS.items():
            uuid = new_uuid()
            session.execute(_things.insert().values(uuid=uuid, name=name))
            tags.attach_at_create(session, uuid, THING, system_tags, user_tags)

    await db.run(create)
    yield db
    db.close()


async def names(db, *conditions) -> set[str]:
    stmt = select(_things.c.name).where(*conditions)
    return set(await db.run(lambda s: s.scalars(stmt).all()))


@pytest.mark.parametrize("kind, op, value, expected", [
    ("user", "=", "web", {"a", "b"}),
    ("user", "!=", "web", {"c", "d"}),
    ("user", "?=", ["prod", "db"], {"a", "c"}),
    ("user", "?=", "prod,db", {"a", "c"}),
    ("user", "!?=", ["web", "db"], {"d"}),
    ("user", "~=", "w%", {"a", "b"}),
    ("user", "!~=", "%e%", {"c", "d"}),
    ("system", "=", "role::web", {"a", "b"}),
    ("system", "!=", "role::web", {"c", "d"}),
    ("system", "?=", ["role::lb", "role::db"], {"a", "c"}),
    ("system", "!?=", ["role::lb", "role::db"], {"b", "d"}),
    ("system", "~=", "role::_b", {"a", "c"}),
    ("system", "!~=", "role::%", {"d"}),
    ("user", "=", "role::web", set()),  # a system tag is not a user tag
])
async def test_every_operator(things, kind, op, value, expected):
    assert await names(things, tag_condition(_things.c.uuid, kind, op, value)) == expected


def test_the_operators_are_all_tested():
    assert set(TAG_OPERATORS) == {"=", "!=", "?=", "!?=", "~=", "!~="}


async def test_conditions_combine(things):
    assert await names(things,
                       tag_condition(_things.c.uuid, "user", "=", "web"),
                       tag_condition(_things.c.uuid, "system", "!=", "role::lb")) == {"b"}


@pytest.mark.parametrize("kind, op, value, message", [
    ("admin", "=", "x", "tag kind 'admin' is neither 'system' nor 'user'"),
    ("user", ">", "x", "operator '>' is not supported on tags; use one of =, !=, ?=, !?=, ~=, !~="),
    ("user", "?=", [], "operator '?=' on tags needs one or more tags, got []"),
    ("user", "?=", [1], "operator '?=' on tags needs one or more tags, got [1]"),
    ("user", "=", ["x"], "operator '=' on tags needs one tag, got ['x']"),
])
def test_bad_conditions_are_invalid_arguments(kind, op, value, message):
    with pytest.raises(OperationError) as excinfo:
        tag_condition(_things.c.uuid, kind, op, value)
    assert excinfo.value.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    assert excinfo.value.error.details == message


def test_query_field_names():
    assert tag_kind_of_field("__systemTag__") == "system"
    assert tag_kind_of_field("__userTag__") == "user"
    assert tag_kind_of_field("name") is None
