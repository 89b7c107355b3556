"""The global config APIs over SQLite and the memory bus."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mn.api.message import QueryCondition
from mn.api.query import QueryEngine
from mn.db.models.global_config import GlobalConfigVO
from mn.errors import OperationError, SysErrors
from mn.globalconfig import GlobalConfig, GlobalConfigInventory, GlobalConfigRegistry, number_range, valid_values
from mn.globalconfig.api import (
    APIGetGlobalConfigOptionsMsg,
    APIQueryGlobalConfigMsg,
    APIResetGlobalConfigMsg,
    APIUpdateGlobalConfigEvent,
    APIUpdateGlobalConfigMsg,
    GlobalConfigOptions,
    GlobalConfigService,
)
from mn.globalconfig.validators import at_least
from tests.support.small_node import SmallNode

CATEGORY = "test.api"


@pytest.fixture
def registry():
    registry = GlobalConfigRegistry()
    GlobalConfig(CATEGORY, "ratio", float, 10.0, description="vCPUs per CPU",
                 validators=[number_range(1, 100)], registry=registry)
    GlobalConfig(CATEGORY, "mode", str, "host-model", validators=[valid_values("host-model", "none")],
                 registry=registry)
    GlobalConfig(CATEGORY, "retries", int, 3, validators=[at_least(0)], registry=registry)
    GlobalConfig(CATEGORY, "enabled", bool, True, registry=registry)
    return registry


@pytest.fixture
async def node(sqlite_url, registry):
    node = SmallNode(sqlite_url, registry=registry)
    await node.start(GlobalConfigService)
    yield node
    await node.stop()


def stored(node, name) -> str:
    with node.db.session() as s:
        return s.scalar(select(GlobalConfigVO.value).where(GlobalConfigVO.category == CATEGORY,
                                                           GlobalConfigVO.name == name))


async def failure(call) -> OperationError:
    with pytest.raises(OperationError) as excinfo:
        await call
    return excinfo.value


async def test_update_stores_the_value_and_returns_the_rows_inventory(node, registry):
    event = await node.call(APIUpdateGlobalConfigMsg(category=CATEGORY, name="ratio", value="12.5"))
    assert isinstance(event, APIUpdateGlobalConfigEvent)
    inventory = event.inventory
    assert inventory.model_dump(exclude={"id"}) == {
        "name": "ratio", "category": CATEGORY, "description": "vCPUs per CPU",
        "defaultValue": "10.0", "value": "12.5"}
    assert isinstance(inventory.id, int)
    assert registry.find(CATEGORY, "ratio").value == 12.5 and stored(node, "ratio") == "12.5"


@pytest.mark.parametrize("value, text", [(7, "7"), (True, "true")])
async def test_json_numbers_and_booleans_are_taken_as_text(node, value, text):
    name = "retries" if isinstance(value, int) and not isinstance(value, bool) else "enabled"
    msg = APIUpdateGlobalConfigMsg.model_validate({"category": CATEGORY, "name": name, "value": value})
    assert msg.value == text
    assert (await node.call(msg)).inventory.value == text


@pytest.mark.parametrize("name, value, reason", [
    ("ratio", "101", "must be in the range [1, 100]"),
    ("ratio", "fast", "is of type float"),
    ("mode", "passthrough", "must be one of host-model, none"),
    ("retries", None, "is of type int"),
])
async def test_refused_values_change_nothing(node, name, value, reason):
    before = stored(node, name)
    err = await failure(node.call(APIUpdateGlobalConfigMsg(category=CATEGORY, name=name, value=value)))
    assert err.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    assert reason in err.error.details and f"name:{name}" in err.error.details
    assert stored(node, name) == before


async def test_unknown_entries_are_invalid_arguments(node):
    err = await failure(node.call(APIUpdateGlobalConfigMsg(category=CATEGORY, name="nope", value="1")))
    assert err.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value
    assert "GlobalConfig[category:test.api, name:nope]" in err.error.details
    err = await failure(node.call(APIGetGlobalConfigOptionsMsg(category="none", name="nope")))
    assert err.error.code == SysErrors.INVALID_ARGUMENT_ERROR.value


async def test_reset_puts_every_entry_back_to_its_default(node, registry):
    await node.call(APIUpdateGlobalConfigMsg(category=CATEGORY, name="ratio", value="50"))
    await node.call(APIUpdateGlobalConfigMsg(category=CATEGORY, name="mode", value="none"))
    event = await node.call(APIResetGlobalConfigMsg())
    assert event.success and event.model_dump(exclude={"success", "error"}) == {}
    assert (registry.find(CATEGORY, "ratio").value, registry.find(CATEGORY, "mode").value) == (10.0, "host-model")
    assert (stored(node, "ratio"), stored(node, "mode")) == ("10.0", "host-model")


@pytest.mark.parametrize("name, options", [
    ("ratio", GlobalConfigOptions(numberGreaterThanOrEqual=1, numberLessThanOrEqual=100)),
    ("mode", GlobalConfigOptions(validValue=["host-model", "none"])),
    ("retries", GlobalConfigOptions(numberGreaterThanOrEqual=0)),
    ("enabled", GlobalConfigOptions()),
])
async def test_options_come_from_the_declared_checks(node, name, options):
    reply = await node.call(APIGetGlobalConfigOptionsMsg(category=CATEGORY, name=name))
    assert reply.options == options


def test_one_inventory_class_for_entries_and_rows(registry):
    entry = registry.find(CATEGORY, "ratio")
    assert GlobalConfigInventory.resource_type() == "GlobalConfigVO"
    assert entry.inventory() == GlobalConfigInventory(
        name="ratio", category=CATEGORY, description="vCPUs per CPU", defaultValue="10.0", value="10.0")
    row = GlobalConfigVO(id=7, name="ratio", category=CATEGORY, description=None, defaultValue="1", value="2")
    assert GlobalConfigInventory.of_vo(row).model_dump() == {
        "id": 7, "name": "ratio", "category": CATEGORY, "description": None, "defaultValue": "1", "value": "2"}


async def test_queries_read_the_rows(node):
    await node.call(APIUpdateGlobalConfigMsg(category=CATEGORY, name="retries", value="5"))
    reply = await QueryEngine(node).query(APIQueryGlobalConfigMsg(
        conditions=[QueryCondition(name="category", op="=", value=CATEGORY)], sortBy="name"))
    assert [(inv["name"], inv["value"]) for inv in reply.inventories] == [
        ("enabled", "true"), ("mode", "host-model"), ("ratio", "10.0"), ("retries", "5")]
    assert all(isinstance(inv["id"], int) for inv in reply.inventories)
