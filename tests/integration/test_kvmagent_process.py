"""The real ``zstack-kvmagent`` process (gunicorn, simulated driver) driven over HTTP,
started and stopped with its CLI as a deployer would."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.support.kvm_agent import KVMAGENT, REPO, AgentProcess, alive, opener
from tests.unit.agents.fake_mn import FakeMN

pytestmark = pytest.mark.integration

@pytest.fixture
def mn():
    with FakeMN() as fake:
        yield fake


@pytest.fixture
def agent(tmp_path):
    process = AgentProcess(tmp_path)
    yield process
    process.cli("stop", expect=None)
    process.kill_if_left()


def vm_start(vm_uuid: str) -> dict:
    return {"vmInstanceUuid": vm_uuid, "vmName": vm_uuid, "memory": 2**30, "cpuNum": 1,
            "rootVolume": {"volumeUuid": f"root-{vm_uuid}", "installPath": f"/ps/{vm_uuid}.qcow2"},
            "dataVolumes": [], "nics": []}


def test_agent_lifecycle_connect_commands_and_restart(agent, mn):
    assert agent.cli("status", expect=3).stdout.strip() == "zstack-kvmagent is not running"
    started = agent.cli("start", "--daemon")
    pid = agent.pid()
    assert f"started (pid {pid})" in started.stdout and alive(pid)
    assert "is running" in agent.cli("status").stdout
    assert "already running" in agent.cli("start", "--daemon", expect=1).stderr

    with opener.open(agent.url + "/host/echo", timeout=10) as echo:
        assert json.load(echo) == {}
    assert agent.post("/host/ping")["hostUuid"] is None
    connected = agent.post("/host/connect", {"hostUuid": "host-1", "sendCommandUrl": mn.send_command_url,
                                             "version": "mn-1", "managementNodes": [mn.url]})
    assert connected["success"], connected
    ping = agent.post("/host/ping", {"hostUuid": "host-1"})
    assert (ping["hostUuid"], ping["version"]) == ("host-1", "checksum-1")

    assert agent.post("/vm/start", vm_start("vm-1"), taskuuid="task-1", callbackurl=mn.callback_url) == {}
    assert mn.wait_callback("task-1").body == {"success": True, "error": ""}
    agent.post("/vm/start", vm_start("vm-2"))
    assert agent.post("/vm/vmsync")["states"] == {"vm-1": "Running", "vm-2": "Running"}

    agent.post("/testing/simulated/setvmstate", {"vmUuid": "vm-2", "state": "Shutdown"})
    assert mn.wait_report("/kvm/reportvmstate").body == {"hostUuid": "host-1", "vmUuid": "vm-2",
                                                          "vmState": "Shutdown"}

    # A restart keeps the host's VMs and asks the MN to reconnect.
    assert f"stopped (pid {pid})" in agent.cli("stop").stdout
    assert not agent.pid_file.exists() and not alive(pid)
    agent.cli("status", expect=3)
    assert mn.reports("/kvm/reconnectme") == []
    agent.cli("start", "--daemon")
    assert mn.wait_report("/kvm/reconnectme").body == {"hostUuid": "host-1", "reason": "agent restarted"}
    assert agent.post("/vm/vmsync")["states"] == {"vm-1": "Running", "vm-2": "Shutdown"}
    assert agent.post("/host/ping")["sendCommandUrl"] == mn.send_command_url

    agent.cli("stop")
    assert not agent.pid_file.exists()
    with pytest.raises(urllib.error.URLError):
        opener.open(agent.url + "/host/echo", timeout=5)
    assert "not running" in agent.cli("stop").stdout


def test_stop_lets_running_commands_finish_and_call_back(tmp_path, mn):
    agent = AgentProcess(tmp_path, simulated_delay=1.5)
    try:
        agent.cli("start", "--daemon")
        assert agent.post("/vm/start", vm_start("vm-1"), taskuuid="task-2", callbackurl=mn.callback_url) == {}
        time.sleep(0.2)  # the command is running
        agent.cli("stop")
        assert mn.callbacks("task-2")[0].body == {"success": True, "error": ""}
        assert not agent.pid_file.exists()
    finally:
        agent.kill_if_left()


def test_start_fails_clearly_when_the_port_is_taken(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        agent = AgentProcess(tmp_path, port=taken.getsockname()[1])
        try:
            failed = agent.cli("start", "--daemon", expect=1)
        finally:
            agent.kill_if_left()
    assert "exited with status" in failed.stderr and "in use" in failed.stderr
    assert not agent.pid_file.exists()


def test_foreground_start_serves_until_sigterm(tmp_path):
    """As systemd runs it: ``start`` stays in the foreground; SIGTERM ends it cleanly."""
    agent = AgentProcess(tmp_path)
    process = subprocess.Popen([str(KVMAGENT), "start", "--config", str(agent.config_file)], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with opener.open(agent.url + "/host/echo", timeout=1):
                    break
            except OSError:
                assert process.poll() is None, agent.log_tail()
                assert time.monotonic() < deadline, agent.log_tail()
                time.sleep(0.1)
        assert agent.pid() == process.pid
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert not agent.pid_file.exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
