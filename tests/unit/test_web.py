"""The falcon ASGI app of a real (embedded: SQLite + memory bus) management node."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime

import pytest
import pytest_asyncio
from falcon import testing

from mn.config import Settings
from mn.ids import is_uuid, new_uuid
from mn.node import ManagementNode
from mn.web.app import create_app
from mn.web.json import dumps, format_timestamp
from mn.web.resources import CALLBACK_PATH

#: Gson's default date format: "Nov 21, 2026 1:25:38 PM".
GSON_DATE = re.compile(r"^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                       r"([1-9]|[12][0-9]|3[01]), \d{4} ([1-9]|1[0-2]):[0-5][0-9]:[0-5][0-9] (AM|PM)$")
NODES_PATH = "/zstack/v1/management-nodes"

# One node for the module: starting it (migrations, bus) is the slow part.
in_module_loop = pytest.mark.asyncio(loop_scope="module")


class Served:
    def __init__(self, node: ManagementNode, conductor: testing.ASGIConductor, fenced: list):
        self.node = node
        self.conductor = conductor
        self.fenced = fenced


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(tmp_path_factory):
    fenced: list[bool] = []
    settings = Settings(var_dir=tmp_path_factory.mktemp("mn"), bus_url="memory://",
                        heartbeat_interval=0.2)
    # A fenced node would SIGTERM the test process; record it instead.
    node = ManagementNode(settings, exit_process=lambda: fenced.append(True))
    async with testing.ASGIConductor(create_app(node)) as conductor:
        assert node.started
        yield Served(node, conductor, fenced)
    assert not node.started
    assert fenced == []


def check_inventory(inv: dict, node: ManagementNode) -> None:
    assert set(inv) == {"uuid", "hostName", "port", "state", "joinDate", "heartBeat"}
    assert inv["uuid"] == node.uuid and is_uuid(inv["uuid"])
    assert inv["hostName"] == node.settings.host_name
    assert inv["port"] == node.settings.port
    assert inv["state"] == "Running"
    for field in ("joinDate", "heartBeat"):
        assert GSON_DATE.match(inv[field]), inv[field]


@in_module_loop
async def test_list_management_nodes(served):
    result = await served.conductor.simulate_get(NODES_PATH)
    assert result.status_code == 200
    assert result.headers["content-type"].startswith("application/json")
    inventories = result.json["inventories"]
    assert len(inventories) == 1
    check_inventory(inventories[0], served.node)


@in_module_loop
async def test_get_one_management_node(served):
    result = await served.conductor.simulate_get(f"{NODES_PATH}/{served.node.uuid}")
    assert result.status_code == 200
    [inv] = result.json["inventories"]
    check_inventory(inv, served.node)


@in_module_loop
async def test_unknown_path_is_a_zstack_404(served):
    result = await served.conductor.simulate_get("/zstack/v1/no-such-resource")
    assert result.status_code == 404
    err = result.json["error"]
    assert err["code"] == "SYS.1003"
    assert {"code", "description", "details", "elaboration", "cause"} <= set(err)


@in_module_loop
async def test_callback_without_taskuuid_is_a_400(served):
    result = await served.conductor.simulate_post(CALLBACK_PATH, json={"success": True})
    assert result.status_code == 400
    err = result.json["error"]
    assert set(err) == {"code", "description", "details", "elaboration", "cause"}
    assert err["code"] == "SYS.1007"
    assert "taskuuid" in err["details"]
    assert err["description"]


@in_module_loop
async def test_callback_with_non_json_body_is_a_400(served):
    task = new_uuid()
    future = served.node.callbacks.expect(task, timeout=5)
    result = await served.conductor.simulate_post(
        CALLBACK_PATH, headers={"taskuuid": task, "content-type": "application/json"}, body=b"{not json")
    assert result.status_code == 400
    assert result.json["error"]["code"] == "SYS.1007"
    assert not future.done()
    future.cancel()


@in_module_loop
async def test_callback_resolves_its_waiter(served):
    task = new_uuid()
    future = served.node.callbacks.expect(task, timeout=5)
    body = {"success": True, "error": None, "vmUuid": new_uuid(), "n": [1, 2, 3]}
    result = await served.conductor.simulate_post(CALLBACK_PATH, headers={"taskuuid": task}, json=body)
    assert result.status_code == 200
    assert result.json == {}
    assert await asyncio.wait_for(future, 1) == body


@in_module_loop
async def test_callback_for_unknown_task_is_ignored(served):
    waiting = new_uuid()
    future = served.node.callbacks.expect(waiting, timeout=5)
    result = await served.conductor.simulate_post(
        CALLBACK_PATH, headers={"taskuuid": new_uuid()}, json={"success": True})
    assert result.status_code == 200
    assert result.json == {}
    assert not future.done()  # another task's waiter is untouched
    future.cancel()


# -- dates as ZStack (Gson) writes them -------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (datetime(2026, 1, 2, 0, 5, 0), "Jan 2, 2026 12:05:00 AM"),
    (datetime(2026, 11, 21, 12, 0, 0), "Nov 21, 2026 12:00:00 PM"),
    (datetime(2026, 12, 31, 23, 59, 0), "Dec 31, 2026 11:59:00 PM"),
    (datetime(2026, 11, 21, 13, 25, 38), "Nov 21, 2026 1:25:38 PM"),
    (datetime(2014, 5, 2, 11, 59, 59), "May 2, 2014 11:59:59 AM"),
    (datetime(2014, 5, 2, 1, 2, 3, 999999), "May 2, 2014 1:02:03 AM"),
])
def test_format_timestamp(value, expected):
    assert format_timestamp(value) == expected
    assert GSON_DATE.match(expected)


def test_dumps_formats_nested_datetimes():
    text = dumps({"inventories": [{"joinDate": datetime(2026, 3, 4, 0, 0, 1)}]})
    assert text == '{"inventories":[{"joinDate":"Mar 4, 2026 12:00:01 AM"}]}'
