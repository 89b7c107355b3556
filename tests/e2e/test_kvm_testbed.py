"""KVM hosts as users run them: two test bed hosts (network namespaces with
their own sshd) added through the REST API, the agent deployed into each
over SSH by Ansible, real qemu domains on the libvirt-driven host, a killed
agent brought back by the host tracker, an agent upgraded on reconnect, and
a domain stopped behind the MN's back seen Stopped.

Host 1 runs the libvirt driver (libvirtd inside its namespace), host 2 the
simulated driver. The MN deploys a copy of ``agents/`` so that the upgrade
test can change it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from plugins.kvm.deploy import AGENTS_DIR, source_checksum
from tests.support.api_client import ZStackClient
from tests.support.cluster import MNProcess
from tests.support.kvm_world import (add_kvm_host, admin_client, build_kvm_world, create_vm, host_status, vm_state,
                                     wait_for)
from tests.support.testbed import Testbed, require_testbed

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PING_INTERVAL = 3
#: Where the LocalStorage lives on the hosts: libvirt's qemu user must reach it.
STORAGE_PATH = "/var/lib/zstack-test/e2e-local-storage"
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def bed():
    require_testbed()
    testbed = Testbed(2, libvirt_host=1)
    try:
        testbed.up()
        yield testbed
    finally:
        testbed.down()


@pytest.fixture(scope="module")
def agent_source(tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("agent-source") / "agents"
    shutil.copytree(AGENTS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist"))
    return copy


@pytest.fixture(scope="module")
def mn(bed, agent_source, tmp_path_factory, mariadb_url, amqp_url):
    node = MNProcess(tmp_path_factory.mktemp("e2e-mn"), db_url=mariadb_url, bus_url=amqp_url,
                     extra_env={"ZSTACK_BIND": "0.0.0.0", "ZSTACK_NODE_IP": bed.mn_ip,
                                "ZSTACK_ANSIBLE_HOST_VARS_DIR": str(bed.host_vars_dir),
                                "ZSTACK_KVM_AGENT_SOURCE": str(agent_source)})
    node.start()
    node.wait_ready()
    yield node
    node.stop()


@pytest.fixture(scope="module")
def api(mn):
    client = admin_client(mn.url, {("host", "ping.interval"): PING_INTERVAL, ("host", "ping.maxFailure"): 2,
                           ("kvm", "vm.gracefulStopTimeout"): 3})
    yield client
    client.close()


@pytest.fixture(scope="module")
def world(api):
    Path(STORAGE_PATH).mkdir(parents=True, exist_ok=True)
    os.chmod("/var/lib/zstack-test", 0o755)
    yield build_kvm_world(api, "e2e", storage_path=STORAGE_PATH, physical_interface="data0")
    shutil.rmtree(STORAGE_PATH, ignore_errors=True)


@pytest.fixture(scope="module")
def hosts(api, world, bed):
    test_hosts = bed.test_hosts()
    return [add_kvm_host(api, world, f"e2e-{h.name}", h.ip, username=h.username, password=h.password,
                         ssh_port=h.ssh_port, timeout=900) for h in test_hosts]


def virsh(bed: Testbed, *args: str) -> str:
    host = bed.test_hosts()[0]
    return host.exec("virsh", "-c", "qemu:///system", *args, timeout=60).stdout


def domain_state(bed: Testbed, vm_uuid: str) -> str:
    done = bed.test_hosts()[0].exec("virsh", "-c", "qemu:///system", "domstate", vm_uuid, check=False)
    return done.stdout.strip() if done.returncode == 0 else "undefined"


def agent_post(ip: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(f"http://{ip}:7070{path}", data=json.dumps(body or {}).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    with _opener.open(request, timeout=10) as answer:
        return json.load(answer)


def action(api: ZStackClient, vm_uuid: str, name: str, **params) -> dict:
    return api.action(f"/vm-instances/{vm_uuid}/actions", name, params, poll_timeout=120)["inventory"]


def test_hosts_are_deployed_over_ssh_and_connected(api, hosts, bed, agent_source):
    version = source_checksum(agent_source)
    for added, host in zip(hosts, bed.test_hosts()):
        assert added["status"] == "Connected" and added["managementIp"] == host.ip
        ping = agent_post(host.ip, "/host/ping", {"hostUuid": added["uuid"]})
        assert (ping["hostUuid"], ping["version"]) == (added["uuid"], version)
        assert added["cpuNum"] == os.cpu_count() and added["totalMemoryCapacity"] > 0


def test_a_real_vm_runs_on_the_libvirt_host(api, world, hosts, bed):
    vm = create_vm(api, world, "e2e-real", hostUuid=hosts[0]["uuid"])
    assert vm["state"] == "Running"
    assert vm["uuid"] in virsh(bed, "list", "--name").split()
    root = next(v for v in vm["allVolumes"] if v["type"] == "Root")
    assert Path(root["installPath"]).is_file()
    info = subprocess.run(["qemu-img", "info", "--output=json", "-U", root["installPath"]], capture_output=True,
                          text=True, check=True)
    assert json.loads(info.stdout)["format"] == "qcow2"

    assert action(api, vm["uuid"], "stopVmInstance")["state"] == "Stopped"
    assert domain_state(bed, vm["uuid"]) in ("shut off", "undefined")
    assert action(api, vm["uuid"], "startVmInstance")["state"] == "Running"
    assert domain_state(bed, vm["uuid"]) == "running"
    assert action(api, vm["uuid"], "rebootVmInstance")["state"] == "Running"
    assert domain_state(bed, vm["uuid"]) == "running"
    assert action(api, vm["uuid"], "pauseVmInstance")["state"] == "Paused"
    assert domain_state(bed, vm["uuid"]) == "paused"
    assert action(api, vm["uuid"], "resumeVmInstance")["state"] == "Running"
    assert domain_state(bed, vm["uuid"]) == "running"

    volume = api.create("/volumes/data", {"name": "e2e-data", "diskOfferingUuid": world["disk"]})
    api.call("POST", f"/volumes/{volume['uuid']}/vm-instances/{vm['uuid']}", json={"params": {}})
    attached = api.query("/volumes", f"uuid={volume['uuid']}")["inventories"][0]
    assert attached["installPath"] in virsh(bed, "domblklist", vm["uuid"])
    assert Path(attached["installPath"]).is_file()

    api.call("DELETE", f"/vm-instances/{vm['uuid']}", params={"deleteMode": "Permissive"}, poll_timeout=120)
    assert vm_state(api, vm["uuid"]) == "Destroyed"
    assert domain_state(bed, vm["uuid"]) == "undefined"
    assert Path(root["installPath"]).is_file()  # a Destroyed VM can be recovered

    # Expunged: the files go from the host (a GC job queued with the rows' deletion).
    api.action(f"/vm-instances/{vm['uuid']}/actions", "expungeVmInstance", poll_timeout=120)
    wait_for("the root volume's file deleted", lambda: not Path(root["installPath"]).exists(), 30)
    api.call("DELETE", f"/volumes/{volume['uuid']}", params={"deleteMode": "Permissive"})
    api.action(f"/volumes/{volume['uuid']}/actions", "expungeDataVolume")
    wait_for("the data volume's file deleted", lambda: not Path(attached["installPath"]).exists(), 30)


def test_a_domain_stopped_behind_our_back_is_seen_stopped(api, world, hosts, bed):
    vm = create_vm(api, world, "e2e-behind", hostUuid=hosts[0]["uuid"])
    virsh(bed, "destroy", vm["uuid"])
    wait_for("the VM seen Stopped", lambda: vm_state(api, vm["uuid"]) == "Stopped", 30)
    api.call("DELETE", f"/vm-instances/{vm['uuid']}", params={"deleteMode": "Permissive"}, poll_timeout=120)


def test_a_killed_agent_is_brought_back_by_the_tracker(api, hosts, bed):
    host, added = bed.test_hosts()[1], hosts[1]
    pid = int(Path(host.host_vars["kvmagent_state_dir"], "kvmagent.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    wait_for("the host seen Disconnected", lambda: host_status(api, added["uuid"]) == "Disconnected",
             3 * PING_INTERVAL)
    assert time.monotonic() - killed <= 2 * PING_INTERVAL + 1.5
    wait_for("the host Connected again", lambda: host_status(api, added["uuid"]) == "Connected", 180)
    assert agent_post(host.ip, "/host/ping", {"hostUuid": added["uuid"]})["hostUuid"] == added["uuid"]


def test_reconnect_upgrades_a_changed_agent(api, hosts, bed, agent_source):
    host, added = bed.test_hosts()[1], hosts[1]
    before = agent_post(host.ip, "/host/ping", {"hostUuid": added["uuid"]})["version"]
    marker = agent_source / "kvm" / "__init__.py"
    marker.write_text(marker.read_text() + f"\n# upgraded by the e2e test at {time.time()}\n")
    after = source_checksum(agent_source)
    assert after != before
    reconnected = api.action(f"/hosts/{added['uuid']}/actions", "reconnectHost", poll_timeout=600)["inventory"]
    assert reconnected["status"] == "Connected"
    assert agent_post(host.ip, "/host/ping", {"hostUuid": added["uuid"]})["version"] == after
