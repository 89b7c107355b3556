"""KVM hosts end to end through the REST API, with real ``zstack-kvmagent``
processes (simulated driver) on loopback addresses and an MN process on
MariaDB and RabbitMQ: adding hosts, the VM life cycle as agent commands
with HTTP callbacks, VM state reports, a killed agent seen Disconnected and
Connected again once it is back, and a command whose callback never comes
failing its operation and rolling back everything it took.

The agents run the package this MN ships (their version is its checksum),
so connecting never needs Ansible here; the e2e tests cover deployment.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from plugins.kvm.deploy import AGENTS_DIR, source_checksum
from tests.support.api_client import ApiError
from tests.support.cluster import MNProcess
from tests.support.kvm_agent import AgentProcess, free_port
from tests.support.kvm_world import (add_kvm_host, admin_client, build_kvm_world, create_vm, host_status,
                                     set_global_config, vm_state, wait_for)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PING_INTERVAL = 2


@pytest.fixture(scope="module")
def agent_port():
    return free_port()


@pytest.fixture(scope="module")
def mn(tmp_path_factory, mariadb_url, amqp_url, agent_port):
    node = MNProcess(tmp_path_factory.mktemp("kvm-mn"), db_url=mariadb_url, bus_url=amqp_url,
                     extra_env={"ZSTACK_KVM_AGENT_PORT": str(agent_port)})
    node.start()
    node.wait_ready()
    yield node
    node.stop()


@pytest.fixture(scope="module")
def api(mn):
    client = admin_client(mn.url, {("host", "ping.interval"): PING_INTERVAL, ("host", "ping.maxFailure"): 2,
                           ("host", "ping.sleepPeriodAfterFailure"): 1})
    yield client
    client.close()


@pytest.fixture(scope="module")
def agents(tmp_path_factory, agent_port):
    """Two agents: 127.0.0.2 answers at once, 127.0.0.3 takes 4 s per VM operation."""
    version = source_checksum(AGENTS_DIR)
    base = tmp_path_factory.mktemp("kvm-agents")
    quick = AgentProcess(base / "quick", host="127.0.0.2", port=agent_port, version=version)
    slow = AgentProcess(base / "slow", host="127.0.0.3", port=agent_port, version=version, simulated_delay=4)
    for agent in (quick, slow):
        agent.cli("start", "--daemon")
    yield quick, slow
    for agent in (quick, slow):
        agent.cli("stop", expect=None)
        agent.kill_if_left()


@pytest.fixture(scope="module")
def storage_path(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("local-storage"))


@pytest.fixture(scope="module")
def world(api, storage_path):
    return build_kvm_world(api, "kvm", storage_path=storage_path)


@pytest.fixture(scope="module")
def hosts(api, world, agents):
    return [add_kvm_host(api, world, f"kvm-{i}", agent.host) for i, agent in enumerate(agents)]


def agent_vms(agent: AgentProcess) -> dict[str, str]:
    return agent.post("/vm/vmsync")["states"]


def host(api, uuid) -> dict:
    return api.query("/hosts", f"uuid={uuid}")["inventories"][0]


def test_added_hosts_are_connected_with_the_machines_capacity(api, world, hosts, agents, storage_path):
    quick, _ = agents
    capacity = quick.post("/host/capacity")
    for added in hosts:
        assert (added["status"], added["hypervisorType"]) == ("Connected", "KVM")
        shown = host(api, added["uuid"])
        assert shown["cpuNum"] == capacity["cpuNum"] == os.cpu_count()
        assert shown["totalMemoryCapacity"] == capacity["totalMemory"] > 0
        assert shown["availableMemoryCapacity"] == capacity["totalMemory"]
    # Each host's share of the LocalStorage is its real disk (both hosts are on this one).
    disk = os.statvfs(storage_path)
    ps = api.query("/primary-storage", f"uuid={world['ps']}")["inventories"][0]
    assert ps["totalCapacity"] == 2 * disk.f_blocks * disk.f_frsize
    # The agent knows its host and where to report.
    ping = quick.post("/host/ping", {"hostUuid": hosts[0]["uuid"]})
    assert ping["hostUuid"] == hosts[0]["uuid"] and ping["sendCommandUrl"].endswith("/zstack/asyncrest/sendcommand")


def test_update_kvm_host_changes_its_name_and_login(api, hosts, mariadb_url):
    from sqlalchemy import create_engine, text

    updated = api.action(f"/hosts/kvm/{hosts[1]['uuid']}/actions", "updateKVMHost",
                         {"name": "kvm-renamed", "username": "admin", "sshPort": 2222})["inventory"]
    assert updated["name"] == "kvm-renamed"
    engine = create_engine(mariadb_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT username, port FROM KVMHostVO WHERE uuid = :u"),
                                {"u": hosts[1]["uuid"]}).one() == ("admin", 2222)
    finally:
        engine.dispose()
    with pytest.raises(ApiError) as info:
        api.action(f"/hosts/kvm/{hosts[1]['uuid']}/actions", "updateKVMHost",
                   {"name": "kvm-clash", "managementIp": hosts[0]["managementIp"]})
    assert info.value.status in (400, 503)
    assert host(api, hosts[1]["uuid"])["name"] == "kvm-renamed"  # nothing of the refused update stays


def test_a_host_that_cannot_be_reached_is_not_added(api, world):
    # No agent and no sshd on 127.0.0.9: deploying fails, nothing is left.
    with pytest.raises(ApiError) as info:
        add_kvm_host(api, world, "nowhere", "127.0.0.9")
    assert info.value.status == 503 and "HOST.1000" in str(info.value.body)
    assert api.query("/hosts", "managementIp=127.0.0.9")["inventories"] == []


def test_vm_life_cycle_runs_on_the_agent(api, world, hosts, agents):
    quick, _ = agents
    vm = create_vm(api, world, "vm-life", hostUuid=hosts[0]["uuid"])
    assert (vm["state"], vm["hostUuid"]) == ("Running", hosts[0]["uuid"])
    assert agent_vms(quick)[vm["uuid"]] == "Running"
    used = host(api, hosts[0]["uuid"])
    assert used["availableMemoryCapacity"] == used["totalMemoryCapacity"] - 64 * (1 << 20)

    actions = [("stopVmInstance", "Stopped", "Shutdown"), ("startVmInstance", "Running", "Running"),
               ("rebootVmInstance", "Running", "Running"), ("pauseVmInstance", "Paused", "Paused"),
               ("resumeVmInstance", "Running", "Running")]
    for action, state, on_agent in actions:
        result = api.action(f"/vm-instances/{vm['uuid']}/actions", action)["inventory"]
        assert result["state"] == state, action
        assert agent_vms(quick)[vm["uuid"]] == on_agent, action

    volume = api.create("/volumes/data", {"name": "data", "diskOfferingUuid": world["disk"]})
    attached = api.call("POST", f"/volumes/{volume['uuid']}/vm-instances/{vm['uuid']}", json={"params": {}})
    assert attached["inventory"]["vmInstanceUuid"] == vm["uuid"]

    api.call("DELETE", f"/vm-instances/{vm['uuid']}", params={"deleteMode": "Permissive"})
    assert vm["uuid"] not in agent_vms(quick)
    assert host(api, hosts[0]["uuid"])["availableMemoryCapacity"] == used["totalMemoryCapacity"]


def test_a_vm_stopped_behind_our_back_is_seen_stopped(api, world, hosts, agents):
    quick, _ = agents
    vm = create_vm(api, world, "vm-behind", hostUuid=hosts[0]["uuid"])
    quick.post("/testing/simulated/setvmstate", {"vmUuid": vm["uuid"], "state": "Shutdown"})
    wait_for("the VM seen Stopped", lambda: vm_state(api, vm["uuid"]) == "Stopped", 15)
    before = host(api, hosts[0]["uuid"])
    assert before["availableMemoryCapacity"] == before["totalMemoryCapacity"]


def test_a_never_stop_vm_stopped_behind_our_back_is_started_again(api, world, hosts, agents):
    quick, _ = agents
    vm = create_vm(api, world, "vm-never-stop", hostUuid=hosts[0]["uuid"], system_tags=["ha::NeverStop"])
    quick.post("/testing/simulated/setvmstate", {"vmUuid": vm["uuid"], "state": "Shutdown"})
    wait_for("the VM running again on its host", lambda: agent_vms(quick).get(vm["uuid"]) == "Running", 20)
    wait_for("the VM Running again", lambda: vm_state(api, vm["uuid"]) == "Running", 10)
    api.call("DELETE", f"/vm-instances/{vm['uuid']}", params={"deleteMode": "Permissive"})


def test_a_killed_agent_disconnects_the_host_until_it_is_back(api, world, hosts, agents):
    quick, _ = agents
    vm = create_vm(api, world, "vm-survivor", hostUuid=hosts[0]["uuid"])
    os.kill(quick.pid(), signal.SIGKILL)
    killed = time.monotonic()
    wait_for("the host seen Disconnected", lambda: host_status(api, hosts[0]["uuid"]) == "Disconnected",
             4 * PING_INTERVAL)
    seen = time.monotonic() - killed
    assert seen <= 2 * PING_INTERVAL + 1.5, f"Disconnected after {seen:.1f}s"
    wait_for("the VM seen Unknown", lambda: vm_state(api, vm["uuid"]) == "Unknown", 10)

    # Back with its state (a real host keeps its VMs when its agent restarts).
    quick.pid_file.unlink(missing_ok=True)
    quick.cli("start", "--daemon")
    wait_for("the host Connected again", lambda: host_status(api, hosts[0]["uuid"]) == "Connected", 60)
    wait_for("the VM Running again", lambda: vm_state(api, vm["uuid"]) == "Running", 15)


def test_a_command_whose_callback_never_comes_fails_and_rolls_back(api, world, hosts, agents):
    _, slow = agents
    before = host(api, hosts[1]["uuid"])
    free_ips = api.call("GET", f"/l3-networks/{world['l3']}/ip/free", params={"limit": 1000})["inventories"]
    set_global_config(api, "kvm", "agent.command.timeout", 2)
    try:
        started = time.monotonic()
        with pytest.raises(ApiError) as info:
            create_vm(api, world, "vm-too-slow", hostUuid=hosts[1]["uuid"])
        took = time.monotonic() - started
    finally:
        set_global_config(api, "kvm", "agent.command.timeout", 300)
    assert info.value.status == 503
    assert "SYS.1001" in str(info.value.body) and "did not answer" in str(info.value.body)
    assert took < 30
    assert api.query("/vm-instances", "name=vm-too-slow")["inventories"] == []
    after = host(api, hosts[1]["uuid"])
    assert (after["availableCpuCapacity"], after["availableMemoryCapacity"]) == (
        before["availableCpuCapacity"], before["availableMemoryCapacity"])
    assert api.query("/volumes", "name~=%vm-too-slow%")["inventories"] == []
    assert len(api.call("GET", f"/l3-networks/{world['l3']}/ip/free", params={"limit": 1000})["inventories"]) == (
        len(free_ips))
