"""zstack-cli: tables, records, JSON and errors (mn/cli/output.py)."""

import json

from mn.cli.output import NESTED_WIDTH, cell, columns_of, format_error, render

ZONES = [
    {"uuid": "a" * 32, "name": "z1", "state": "Enabled", "description": None},
    {"uuid": "b" * 32, "name": "zone-two", "state": "Disabled", "type": "zstack"},
]


def test_inventories_are_a_table_with_a_column_per_field_present():
    lines = render({"inventories": ZONES}).splitlines()
    assert lines[0].split() == ["uuid", "name", "state", "description", "type"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["a" * 32, "z1", "Enabled"]
    assert lines[3].split() == ["b" * 32, "zone-two", "Disabled", "zstack"]
    # columns line up
    assert lines[2].index("z1") == lines[3].index("zone-two") == lines[0].index("name")


def test_fields_order_the_columns():
    assert columns_of(ZONES, ["state", "name", "nonexistent"]) == ["state", "name", "uuid", "description", "type"]
    assert render({"inventories": ZONES}, fields=["name", "uuid"]).splitlines()[0].split()[:2] == ["name", "uuid"]


def test_total_is_shown_after_the_table_or_alone():
    assert render({"inventories": ZONES, "total": 7}).splitlines()[-1] == "total: 7"
    assert render({"inventories": [], "total": 3}) == "total: 3"
    assert render({"inventories": []}) == ""


def test_one_inventory_is_a_record():
    text = render({"inventory": {"uuid": "u1", "name": "z1", "isDefault": False, "description": None}})
    assert text.splitlines() == ["uuid        : u1", "name        : z1", "isDefault   : false",
                                 "description :"]


def test_other_bodies_are_records_and_an_empty_one_prints_nothing():
    assert render({"version": "4.8.0", "success": True}) == "version : 4.8.0\nsuccess : true"
    assert render({}) == ""


def test_json_prints_the_body_unchanged():
    body = {"inventories": ZONES, "total": 2}
    assert json.loads(render(body, as_json=True)) == body


def test_nested_values_are_compact_json_cut_in_tables_only():
    nics = [{"ip": f"10.0.0.{i}", "mac": "fa:16:3e:00:00:00"} for i in range(10)]
    table = render({"inventories": [{"uuid": "u", "vmNics": nics}]})
    cut = table.splitlines()[2].split(None, 1)[1]
    assert len(cut) == NESTED_WIDTH and cut.endswith("...")
    record = render({"inventory": {"vmNics": nics}})
    assert json.loads(record.split(" : ", 1)[1]) == nics


def test_cell_keeps_one_line():
    assert cell("a\nb") == "a\\nb"
    assert cell(3) == "3"
    assert cell(None) == ""


def test_errors_show_code_description_details_and_causes():
    text = format_error({"code": "SYS.1006", "description": "An operation failed", "details": "boom",
                         "cause": {"code": "HOST.1000", "description": "cannot connect", "details": None,
                                   "elaboration": "check the agent"}})
    assert text.splitlines() == ["Error: SYS.1006 An operation failed", "  details: boom",
                                 "  caused by: HOST.1000 cannot connect", "    elaboration: check the agent"]
