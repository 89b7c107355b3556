"""Global config entries without a database: types, value checks, declarations."""

from __future__ import annotations

import pytest

from mn.errors import OperationError
from mn.globalconfig import (GlobalConfig, GlobalConfigRegistry, at_least, at_most, matches, not_empty,
                             number_range, valid_values)
from mn.globalconfig import values


@pytest.fixture
def registry():
    return GlobalConfigRegistry()


@pytest.mark.parametrize("value_type, given, expected", [
    (int, "42", 42), (int, " -7 ", -7), (int, 5, 5),
    (float, "2.5", 2.5), (float, "10", 10.0), (float, 3, 3.0), (float, "1e3", 1000.0),
    (bool, "true", True), (bool, "FALSE", False), (bool, " True ", True), (bool, False, False),
    (str, "kvm", "kvm"), (str, "", ""),
])
def test_convert_accepts(value_type, given, expected):
    converted = values.convert(value_type, given)
    assert converted == expected and type(converted) is value_type


@pytest.mark.parametrize("value_type, given", [
    (int, "4.2"), (int, "1_000"), (int, ""), (int, True), (int, 4.0), (int, None),
    (float, "nan"), (float, "inf"), (float, "1_0"), (float, "ten"), (float, True),
    (bool, "yes"), (bool, "1"), (bool, 1), (bool, None),
    (str, 5), (str, None),
])
def test_convert_refuses(value_type, given):
    with pytest.raises(ValueError):
        values.convert(value_type, given)


@pytest.mark.parametrize("value_type, value, text", [
    (bool, True, "true"), (bool, False, "false"), (int, 42, "42"), (float, 10.0, "10.0"),
    (float, 0.1, "0.1"), (str, "a b", "a b"),
])
def test_text_reads_back_to_the_same_value(value_type, value, text):
    assert values.to_text(value_type, value) == text
    assert values.convert(value_type, text) == value


def test_value_checks():
    number_range(1, 100)(1)
    number_range(1, 100)(100)
    with pytest.raises(ValueError, match=r"range \[1, 100\], got 101"):
        number_range(1, 100)(101)
    at_least(0)(0)
    with pytest.raises(ValueError, match="less than 0"):
        at_least(0)(-1)
    at_most(5)(5)
    with pytest.raises(ValueError, match="greater than 5"):
        at_most(5)(6)
    valid_values("kvm", "xen")("xen")
    with pytest.raises(ValueError, match="one of kvm, xen, got esx"):
        valid_values("kvm", "xen")("esx")
    with pytest.raises(ValueError, match="empty"):
        not_empty()("  ")
    matches(r"[a-z]+")("abc")
    with pytest.raises(ValueError, match="must match"):
        matches(r"[a-z]+")("abc1")
    with pytest.raises(Exception):
        matches("(")  # a bad pattern fails at declaration


def test_entry_starts_at_its_default(registry):
    entry = GlobalConfig("test.values", "ratio", float, "10", description="a ratio",
                         validators=[number_range(1, 100)], registry=registry)
    assert entry.value == entry.default == 10.0
    assert (entry.text, entry.default_text) == ("10.0", "10.0")
    assert registry.find("test.values", "ratio") is entry
    assert list(registry) == [entry]
    inventory = entry.inventory()
    assert inventory.model_dump() == {"id": None, "name": "ratio", "category": "test.values", "description": "a ratio",
                                      "defaultValue": "10.0", "value": "10.0"}


def test_bad_declarations_fail_at_import_time(registry):
    with pytest.raises(ValueError, match="bad default"):
        GlobalConfig("test.values", "a", int, 0, validators=[at_least(1)], registry=registry)
    with pytest.raises(ValueError, match="bad default"):
        GlobalConfig("test.values", "b", int, "many", registry=registry)
    with pytest.raises(TypeError, match="type must be one of"):
        GlobalConfig("test.values", "c", list, [], registry=registry)
    with pytest.raises(ValueError, match="longer than 64"):
        GlobalConfig("c" * 65, "d", int, 1, registry=registry)
    with pytest.raises(ValueError, match="category and a name"):
        GlobalConfig("test.values", "", int, 1, registry=registry)
    assert len(registry) == 0  # nothing half-declared was registered


def test_same_declaration_twice_is_the_same_entry(registry):
    first = GlobalConfig("test.values", "mode", str, "kvm", validators=[valid_values("kvm", "xen")],
                         registry=registry)
    listener = first.on_change(lambda old, new: None)
    again = GlobalConfig("test.values", "mode", str, "kvm", validators=[valid_values("kvm", "xen")],
                         registry=registry)
    assert again is first and len(registry) == 1
    assert first._listeners  # re-declaring did not reset the first entry
    listener()


def test_different_declaration_of_the_same_name_is_refused(registry):
    GlobalConfig("test.values", "size", int, 1, registry=registry)
    with pytest.raises(ValueError, match="declared twice"):
        GlobalConfig("test.values", "size", int, 2, registry=registry)
    with pytest.raises(ValueError, match="declared twice"):
        GlobalConfig("test.values", "size", float, 1, registry=registry)
    assert registry.find("test.values", "size").default == 1


async def test_validate_reports_invalid_argument(registry):
    entry = GlobalConfig("test.values", "size", int, 5, validators=[number_range(1, 10)], registry=registry)
    with pytest.raises(OperationError) as err:
        entry.convert("five")
    assert err.value.error.code == "SYS.1007"
    assert "GlobalConfig[category:test.values, name:size] is of type int" in err.value.error.details
    with pytest.raises(OperationError) as err:
        await entry.validate(11)
    assert err.value.error.code == "SYS.1007"
    assert err.value.error.details == ("GlobalConfig[category:test.values, name:size] "
                                       "must be in the range [1, 10], got 11")


async def test_update_without_a_manager_is_not_ready(registry):
    entry = GlobalConfig("test.values", "size", int, 5, registry=registry)
    with pytest.raises(OperationError) as err:
        await entry.update(6)
    assert err.value.error.code == "SYS.1010"
    assert entry.value == 5
