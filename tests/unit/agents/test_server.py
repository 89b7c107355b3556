"""The agent's HTTP app with the simulated driver: dispatch, callbacks, reports."""

import json
import logging
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from falcon.testing import TestClient

from agents.kvm import callback
from agents.kvm.agent import Agent
from agents.kvm.config import AgentConfig
from agents.kvm.drivers.impl_simulated import SimulatedDriver
from agents.kvm.server import ThreadedAgentServer, create_app
from tests.unit.agents.fake_mn import FakeMN


@pytest.fixture
def mn():
    with FakeMN() as fake:
        yield fake


@pytest.fixture
def make_client(tmp_path):
    """``make_client(driver=None, **settings)``: a TestClient on a new agent's app
    (``client.app.agent``); all agents share one state dir, like restarts."""
    agents = []

    def make(driver=None, **settings):
        settings = {"callback_retry_interval": 0.01, **settings}
        config = AgentConfig(driver="simulated", state_dir=str(tmp_path / "state"), **settings)
        agent = Agent(config, driver=driver(config) if driver else None)
        agent.start()
        agents.append(agent)
        return TestClient(create_app(config, agent=agent))

    yield make
    for agent in agents:
        agent.close()


@pytest.fixture
def client(make_client):
    return make_client()


def post(client, path, body=None, **headers):
    result = client.simulate_post(path, json=body if body is not None else {}, headers=headers)
    assert result.status_code == 200, result.text
    return result.json


def post_async(client, mn, path, body, task_uuid):
    answer = client.simulate_post(path, json=body, headers={"taskuuid": task_uuid, "callbackurl": mn.callback_url})
    assert (answer.status_code, answer.json) == (200, {})
    return answer


def vm_start(vm_uuid, **extra):
    return {"vmInstanceUuid": vm_uuid, "vmName": vm_uuid, "memory": 2**30, "cpuNum": 1,
            "rootVolume": {"volumeUuid": f"root-{vm_uuid}", "installPath": f"/ps/{vm_uuid}.qcow2"},
            "dataVolumes": [], "nics": [], **extra}


# -- host ----------------------------------------------------------------------------------


def test_echo_answers_anything(client):
    assert client.simulate_get("/host/echo").json == {}
    assert client.simulate_post("/host/echo", body="whatever").json == {}
    assert client.simulate_post("/host/echo", json={"x": 1}, headers={"taskuuid": "t", "callbackurl": "http://x"}
                                ).json == {}


def test_connect_then_ping_returns_the_host_uuid(client, tmp_path):
    assert post(client, "/host/ping") == {"success": True, "error": "", "hostUuid": None,
                                          "sendCommandUrl": None, "version": "dev"}
    connected = post(client, "/host/connect", {"hostUuid": "host-1", "sendCommandUrl": "http://mn/send",
                                               "version": "1", "managementNodes": ["http://mn"]})
    assert connected["success"] and connected["libvirtVersion"] and connected["qemuVersion"]
    ping = post(client, "/host/ping", {"hostUuid": "host-1"})
    assert (ping["hostUuid"], ping["sendCommandUrl"]) == ("host-1", "http://mn/send")
    saved = json.loads((tmp_path / "state" / "connect.json").read_text())
    assert saved == {"hostUuid": "host-1", "sendCommandUrl": "http://mn/send", "managementNodes": ["http://mn"]}


def test_capacity(client):
    capacity = post(client, "/host/capacity")
    assert capacity["success"]
    assert capacity["cpuNum"] >= 1 and capacity["totalMemory"] > capacity["usedMemory"] >= 0
    assert {"cpuSpeed", "usedCpu", "cpuSockets"} <= set(capacity)


# -- dispatch and errors -------------------------------------------------------------------


def test_unknown_path_is_404_and_bad_bodies_400(client):
    assert client.simulate_post("/vm/teleport", json={}).status_code == 404
    assert client.simulate_post("/vm/stop", body="{not json").status_code == 400
    assert client.simulate_post("/vm/stop", json=["a list"]).status_code == 400
    assert client.simulate_get("/vm/stop").status_code == 405
    # No body at all is a command without fields.
    assert client.simulate_post("/vm/vmsync").json == {"success": True, "error": "", "states": {},
                                                       "vmInShutdowns": []}


def test_failures_answer_success_false_never_http_errors(client, caplog):
    assert post(client, "/vm/pause", {"uuid": "nobody"}) == {"success": False,
                                                             "error": "vm nobody is not on this host"}
    assert post(client, "/vm/stop", {}) == {"success": False, "error": "command field 'uuid' is missing"}

    def boom():
        raise ValueError("boom")

    client.app.agent.driver.vm_states = boom
    with caplog.at_level(logging.ERROR):
        assert post(client, "/vm/vmsync") == {"success": False, "error": "ValueError: boom"}
    assert "Traceback" in caplog.text


def test_vm_commands_sync(client):
    assert post(client, "/vm/start", vm_start("vm-1"))["success"]
    assert post(client, "/vm/pause", {"uuid": "vm-1"})["success"]
    assert post(client, "/vm/vmsync")["states"] == {"vm-1": "Paused"}
    assert post(client, "/vm/resume", {"uuid": "vm-1"})["success"]
    volume = {"volumeUuid": "data-1", "installPath": "/ps/data-1.qcow2", "type": "Data"}
    assert post(client, "/vm/attachdatavolume", {"vmInstanceUuid": "vm-1", "volume": volume})["success"]
    assert len(client.app.agent.driver.attached_volumes("vm-1")) == 2
    assert post(client, "/vm/detachdatavolume", {"vmInstanceUuid": "vm-1", "volume": volume})["success"]
    assert post(client, "/vm/reboot", {"uuid": "vm-1"})["success"]
    assert post(client, "/vm/stop", {"uuid": "vm-1", "type": "cold"})["success"]
    assert post(client, "/vm/vmsync")["states"] == {"vm-1": "Shutdown"}
    assert post(client, "/vm/destroy", {"uuid": "vm-1"})["success"]
    assert post(client, "/vm/destroy", {"uuid": "vm-1"})["success"]
    assert post(client, "/vm/vmsync")["states"] == {}


def test_bridges(client):
    bridge = {"bridgeName": "br_eth0_10", "physicalInterfaceName": "eth0", "vlan": 10,
              "l2NetworkUuid": "l2-1", "mtu": 1500}
    assert not post(client, "/network/l2vlan/checkbridge", bridge)["success"]
    assert post(client, "/network/l2vlan/createbridge", bridge)["success"]
    assert post(client, "/network/l2vlan/createbridge", bridge)["success"]
    assert post(client, "/network/l2vlan/checkbridge", bridge) == {"success": True, "error": ""}
    assert client.app.agent.driver.bridges["br_eth0_10"] == {"physicalInterface": "eth0", "vlan": 10, "mtu": 1500}
    assert post(client, "/network/l2vlan/deletebridge", bridge)["success"]
    assert post(client, "/network/l2vlan/deletebridge", bridge)["success"]
    assert post(client, "/network/l2novlan/checkbridge", {"bridgeName": "br_eth0_10"})["error"] == \
        "bridge br_eth0_10 does not exist on the host"
    assert not post(client, "/network/l2vlan/createbridge", {**bridge, "vlan": "ten"})["success"]


def test_local_storage(client, tmp_path):
    ps = str(tmp_path / "ps")
    common = {"storagePath": ps, "hostUuid": "host-1"}
    init = post(client, "/localstorage/init", {**common, "path": ps})
    assert init["success"] and init["totalCapacity"] >= init["availableCapacity"] > 0
    created = post(client, "/localstorage/volume/createempty",
                   {**common, "installUrl": f"{ps}/vol-1/vol-1.qcow2", "size": 2**30, "volumeUuid": "vol-1"})
    assert created["success"] and created["size"] == 2**30 and created["actualSize"] > 0
    assert "totalCapacity" in created
    assert post(client, "/localstorage/getphysicalcapacity", common)["availableCapacity"] > 0
    deleted = post(client, "/localstorage/delete", {**common, "path": f"{ps}/vol-1/vol-1.qcow2"})
    assert deleted["success"] and "availableCapacity" in deleted
    assert client.app.agent.driver.volumes == {}


# -- async dispatch and callbacks ----------------------------------------------------------


def test_async_answers_at_once_and_calls_back(make_client, mn):
    client = make_client(simulated_delay=1.0)
    post_async(client, mn, "/vm/start", vm_start("vm-1"), "task-1")
    # Answered while the command still runs.
    assert client.app.agent.driver.vm_states() == {}
    assert mn.callbacks("task-1") == []
    done = mn.wait_callback("task-1")
    assert done.body == {"success": True, "error": ""}
    assert done.path == "/zstack/asyncrest/callback"
    assert done.headers["content-type"] == "application/json"
    assert post(client, "/vm/vmsync")["states"] == {"vm-1": "Running"}


def test_async_failure_is_called_back(client, mn):
    post_async(client, mn, "/vm/pause", {"uuid": "nobody"}, "task-2")
    assert mn.wait_callback("task-2").body == {"success": False, "error": "vm nobody is not on this host"}


def test_callback_is_retried_on_5xx_until_delivered(client, mn):
    mn.fail_next(2, status=503)
    post_async(client, mn, "/vm/vmsync", {}, "task-3")
    mn.wait_callback("task-3")
    assert [r.status for r in mn.callbacks("task-3")] == [503, 503, 200]


def test_callback_is_given_up_after_the_bound(make_client, mn, caplog):
    client = make_client(callback_retries=2)
    mn.fail_always(500)
    with caplog.at_level(logging.ERROR, logger="agents.kvm.callback"):
        post_async(client, mn, "/vm/vmsync", {}, "task-4")
        mn.wait_for(lambda r: r.headers.get("taskuuid") == "task-4", count=3)
        time.sleep(0.3)  # far beyond the next retry's 0.04s
    assert [r.status for r in mn.callbacks("task-4")] == [500, 500, 500]
    assert "giving up" in caplog.text


def test_callback_4xx_is_not_retried(client, mn):
    mn.fail_next(1, status=404)
    post_async(client, mn, "/vm/vmsync", {}, "task-5")
    mn.wait_for(lambda r: r.headers.get("taskuuid") == "task-5")
    time.sleep(0.2)
    assert [r.status for r in mn.callbacks("task-5")] == [404]


def test_post_with_retries_waits_doubling_intervals_on_connection_errors():
    waits = []
    # Port 9 (discard) on loopback: nothing listens, the connection is refused.
    assert not callback.post_with_retries("http://127.0.0.1:9/cb", {}, retries=3, interval=0.5, sleep=waits.append)
    assert waits == [0.5, 1.0, 2.0]


class RecordingDriver(SimulatedDriver):
    """Records when each VM operation ran."""

    def __init__(self, config):
        super().__init__(config)
        self.ran = []
        self._ran_lock = threading.Lock()

    def _record(self, operation, vm_uuid, run):
        began = time.monotonic()
        run()
        with self._ran_lock:
            self.ran.append((vm_uuid, operation, began, time.monotonic()))

    def start_vm(self, spec):
        self._record("start", spec["vmInstanceUuid"], lambda: super(RecordingDriver, self).start_vm(spec))

    def stop_vm(self, vm_uuid, stop_type, timeout):
        self._record("stop", vm_uuid, lambda: super(RecordingDriver, self).stop_vm(vm_uuid, stop_type, timeout))

    def pause_vm(self, vm_uuid, timeout):
        self._record("pause", vm_uuid, lambda: super(RecordingDriver, self).pause_vm(vm_uuid, timeout))

    def resume_vm(self, vm_uuid, timeout):
        self._record("resume", vm_uuid, lambda: super(RecordingDriver, self).resume_vm(vm_uuid, timeout))


def test_commands_for_one_vm_run_one_at_a_time_in_arrival_order(make_client, mn):
    client = make_client(driver=RecordingDriver, simulated_delay=0.1)
    operations = [("start", "/vm/start"), ("pause", "/vm/pause"), ("resume", "/vm/resume"), ("stop", "/vm/stop"),
                  ("start", "/vm/start")]
    for i, (_, path) in enumerate(operations):
        for vm in ("a", "b"):
            body = vm_start(vm) if path == "/vm/start" else {"uuid": vm}
            post_async(client, mn, path, body, f"{vm}-{i}")
    results = mn.wait_for(lambda r: r.status == 200, count=2 * len(operations))
    assert all(r.body["success"] for r in results), [r.body for r in results]

    ran = client.app.agent.driver.ran
    for vm in ("a", "b"):
        mine = [r for r in ran if r[0] == vm]
        assert [r[1] for r in mine] == [name for name, _ in operations]
        assert all(earlier[3] <= later[2] for earlier, later in zip(mine, mine[1:])), "overlapping operations"
    # ...while different VMs' commands ran side by side.
    a_runs, b_runs = [r for r in ran if r[0] == "a"], [r for r in ran if r[0] == "b"]
    assert any(a[2] < b[3] and b[2] < a[3] for a in a_runs for b in b_runs)
    assert post(client, "/vm/vmsync")["states"] == {"a": "Running", "b": "Running"}


def test_a_sync_vm_command_waits_for_earlier_async_ones(make_client, mn):
    client = make_client(simulated_delay=0.3)
    post_async(client, mn, "/vm/start", vm_start("vm-1"), "task-6")
    started = time.monotonic()
    assert post(client, "/vm/stop", {"uuid": "vm-1"})["success"]
    assert time.monotonic() - started >= 0.55  # the start's 0.3s, then its own
    assert client.app.agent.driver.vm_states() == {"vm-1": "Shutdown"}
    mn.wait_callback("task-6")


def test_ping_is_async_when_asked_and_not_queued_behind_slow_commands(make_client, mn):
    client = make_client(workers_threads=1, simulated_delay=1.0)
    post_async(client, mn, "/vm/start", vm_start("vm-1"), "task-start")  # takes the only command thread
    post_async(client, mn, "/host/ping", {}, "task-ping")
    assert mn.wait_callback("task-ping", timeout=0.8).body["hostUuid"] is None
    assert mn.callbacks("task-start") == []
    mn.wait_callback("task-start")


def test_sync_only_paths_ignore_async_headers(client, mn):
    post(client, "/vm/start", vm_start("vm-1"))
    answer = client.simulate_post("/testing/simulated/setvmstate", json={"vmUuid": "vm-1", "state": "Paused"},
                                  headers={"taskuuid": "t", "callbackurl": mn.callback_url})
    assert answer.json == {"success": True, "error": ""}


# -- reports to the MN ---------------------------------------------------------------------


def connect(client, mn, host_uuid="host-1"):
    post(client, "/host/connect", {"hostUuid": host_uuid, "sendCommandUrl": mn.send_command_url})


def test_a_vm_changing_state_by_itself_is_reported(client, mn):
    post(client, "/vm/start", vm_start("vm-1"))
    assert post(client, "/testing/simulated/setvmstate", {"vmUuid": "vm-1", "state": "Shutdown"})["success"]
    time.sleep(0.1)
    assert mn.received == []  # nobody connected us: nowhere to report to

    connect(client, mn)
    assert post(client, "/testing/simulated/setvmstate", {"vmUuid": "vm-1", "state": "Crashed"})["success"]
    report = mn.wait_report("/kvm/reportvmstate")
    assert report.path == "/zstack/asyncrest/sendcommand"
    assert report.body == {"hostUuid": "host-1", "vmUuid": "vm-1", "vmState": "Crashed"}
    assert not post(client, "/testing/simulated/setvmstate", {"vmUuid": "vm-1", "state": "Bored"})["success"]


def test_fail_paths_can_be_set_over_http(client):
    assert post(client, "/testing/simulated/setfailpaths", {"paths": ["/vm/start"]})["paths"] == ["/vm/start"]
    assert post(client, "/vm/start", vm_start("vm-1")) == {"success": False,
                                                          "error": "simulated failure of /vm/start"}
    post(client, "/testing/simulated/setfailpaths", {"paths": []})
    assert post(client, "/vm/start", vm_start("vm-1"))["success"]


def test_testing_paths_exist_only_with_the_simulated_driver(make_client):
    class OtherDriver(SimulatedDriver):
        name = "other"

    client = make_client(driver=OtherDriver)
    assert client.simulate_post("/testing/simulated/setvmstate", json={}).status_code == 404


def test_a_restarted_agent_keeps_its_vms_and_asks_to_be_reconnected(make_client, mn):
    first = make_client()
    post(first, "/vm/start", vm_start("vm-1"))
    time.sleep(0.1)
    assert mn.received == []  # never connected: no reconnectme
    connect(first, mn, "host-9")
    first.app.agent.close()

    second = make_client()
    report = mn.wait_report("/kvm/reconnectme")
    assert report.body == {"hostUuid": "host-9", "reason": "agent restarted"}
    assert post(second, "/host/ping")["hostUuid"] == "host-9"
    assert post(second, "/vm/vmsync")["states"] == {"vm-1": "Running"}


# -- serving -------------------------------------------------------------------------------


def test_threaded_server_serves_real_http(tmp_path, mn):
    config = AgentConfig(driver="simulated", host="127.0.0.1", port=0, state_dir=str(tmp_path))
    with ThreadedAgentServer(config) as server:
        request = urllib.request.Request(server.url + "/vm/start", data=json.dumps(vm_start("vm-1")).encode(),
                                         headers={"taskuuid": "task-7", "callbackurl": mn.callback_url})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert json.load(answer) == {}
        assert mn.wait_callback("task-7").body["success"]
        assert server.agent.driver.vm_states() == {"vm-1": "Running"}


def test_the_agent_imports_nothing_of_the_mn():
    code = ("import sys, agents.kvm.server, agents.kvm.cli; "
            "print([m for m in sys.modules if m == 'mn' or m.startswith('mn.')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
