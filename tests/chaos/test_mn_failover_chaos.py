"""Three MNs, twenty test bed hosts with simulated agents, three hundred VM
creations in flight through the REST API; one MN killed with ``kill -9`` at
a random moment, RabbitMQ restarted once, MariaDB restarted once. After
recovery every API job has ended, ``zstack-ctl check`` is clean, nothing is
in a transitional state, and each VM exists completely (record, volume,
address, running on its host) or not at all (nor on any host).

It also measures how long the survivors take to agree on the ring and to
track every host of the dead MN again, and prints it (ZStack's default
detection is 30 s; ours must stay under 10 s).
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from mn.ids import new_uuid
from plugins.kvm.deploy import AGENTS_DIR, source_checksum
from tests.support.api_client import ZStackClient
from tests.support.cluster import start_cluster
from tests.support.kvm_agent import start_in_namespace
from tests.support.kvm_world import add_kvm_host, build_kvm_world, set_global_config, wait_for
from tests.support.services import restart_mariadb, restart_rabbitmq
from tests.support.testbed import Testbed, require_testbed

pytestmark = [pytest.mark.chaos, pytest.mark.e2e, pytest.mark.slow]

HOSTS = 20
VMS = 300
#: VMs asked for per second: creations keep arriving through every fault.
RATE = 8.0
STORAGE_PATH = "/var/lib/zstack-test/chaos-local-storage"
TRANSITIONAL = {"Starting", "Stopping", "Rebooting", "Destroying", "Migrating", "Pausing", "Resuming",
                "Expunging", "VolumeMigrating", "VolumeRecovering", "Created"}
FAILOVER_LIMIT = 10.0


@pytest.fixture(scope="module")
def bed():
    require_testbed()
    testbed = Testbed(HOSTS)
    try:
        testbed.up()
        yield testbed
    finally:
        testbed.down()


@pytest.fixture(scope="module")
def agents(bed):
    version = source_checksum(AGENTS_DIR)
    # Each VM operation takes a little while, as on a real host.
    return [start_in_namespace(h, version, simulated_delay=0.3, callback_retry_interval=0.5)
            for h in bed.test_hosts()]


@pytest.fixture(scope="module")
def mns(bed, tmp_path_factory, mariadb_url, amqp_url):
    nodes = start_cluster(tmp_path_factory.mktemp("chaos"), 3, db_url=mariadb_url, bus_url=amqp_url,
                          extra_env={"ZSTACK_BIND": "0.0.0.0", "ZSTACK_NODE_IP": bed.mn_ip})
    yield nodes
    for node in nodes:
        node.stop()


def client(mn) -> ZStackClient:
    api = ZStackClient(mn.url, timeout=30)
    api.login()
    return api


def ring_of(mn) -> set[str]:
    body = httpx.get(f"{mn.url}/zstack/v1/management-nodes", timeout=5).json()
    return {n["uuid"] for n in body["inventories"]}


class Submitter:
    """Asks for VMs with client-chosen job uuids (``X-Job-UUID``), through the live
    MNs in turn; a request that fails (its MN died, the broker or the database
    is restarting) is sent again, with the same job uuid, elsewhere."""

    def __init__(self, mns, session: str, world: dict):
        self.mns, self.session, self.world = list(mns), session, world
        self.dead: set[str] = set()
        self.jobs: dict[str, dict] = {}  # job uuid -> {"name", "mn"}
        self.retries = 0
        self.lock = threading.Lock()

    def live(self) -> list:
        return [m for m in self.mns if m.uuid not in self.dead]

    def submit(self, index: int) -> None:
        job, name = new_uuid(), f"chaos-{index}"
        body = {"params": {"name": name, "instanceOfferingUuid": self.world["offering"],
                           "imageUuid": self.world["image"], "l3NetworkUuids": [self.world["l3"]]}}
        deadline = time.monotonic() + 180
        attempt = index
        while True:
            mn = self.live()[attempt % len(self.live())]
            attempt += 1
            try:
                rsp = httpx.post(f"{mn.url}/zstack/v1/vm-instances", json=body, timeout=30,
                                 headers={"Authorization": f"OAuth {self.session}", "X-Job-UUID": job})
                if rsp.status_code == 202:
                    with self.lock:
                        self.jobs[job] = {"name": name, "mn": mn.uuid}
                    return
                failure = f"{rsp.status_code} {rsp.text[:200]}"
            except httpx.HTTPError as exc:
                failure = repr(exc)
            with self.lock:
                self.retries += 1
            assert time.monotonic() < deadline, f"create {name} never accepted: {failure}"
            time.sleep(0.5)


def job_state(mns, dead: set[str], session: str, job: str) -> tuple[int, dict]:
    for mn in mns:
        if mn.uuid in dead:
            continue
        try:
            rsp = httpx.get(f"{mn.url}/zstack/v1/api-jobs/{job}", timeout=10,
                            headers={"Authorization": f"OAuth {session}"})
            return rsp.status_code, (rsp.json() if rsp.content else {})
        except httpx.HTTPError:
            continue
    raise AssertionError("no MN answers")


def test_creations_survive_a_dead_mn_and_restarted_broker_and_database(bed, agents, mns, mariadb_url):
    api = client(mns[0])
    set_global_config(api, "host", "ping.interval", 5)
    Path(STORAGE_PATH).mkdir(parents=True, exist_ok=True)
    # Room for every VM: a creation may fail only because of the faults.
    world = build_kvm_world(api, "chaos", storage_path=STORAGE_PATH, physical_interface="data0",
                            ip_range=("172.20.0.10", "172.20.3.250", "255.255.252.0", "172.20.0.1"))
    clients = [client(m) for m in mns]
    with ThreadPoolExecutor(10) as pool:
        hosts = list(pool.map(lambda i: add_kvm_host(clients[i % 3], world, f"chaos-h{i}", bed.test_hosts()[i].ip),
                              range(HOSTS)))
    assert all(h["status"] == "Connected" for h in hosts)
    host_ips = {h["uuid"]: h["managementIp"] for h in hosts}

    submitter = Submitter(mns, api.session, world)
    victim = random.choice(mns)
    survivors = [m for m in mns if m is not victim]
    events: dict[str, float] = {}

    def chaos() -> None:
        time.sleep(random.uniform(2.0, 8.0))
        tracked_before = {u: agent_last_ping(ip) for u, ip in host_ips.items()}
        victims_hosts = [u for u, ping in tracked_before.items() if ping["managementNodeUuid"] == victim.uuid]
        victim.kill()
        killed = time.monotonic()
        killed_at = time.time()
        submitter.dead.add(victim.uuid)
        events["killed"] = killed
        wait_for("the survivors agree on the ring",
                 lambda: all(ring_of(m) == {s.uuid for s in survivors} for m in survivors), 60, 0.1)
        events["ring"] = time.monotonic() - killed

        def retracked() -> bool:
            pings = [agent_last_ping(host_ips[u]) for u in victims_hosts]
            return all(p["managementNodeUuid"] in {s.uuid for s in survivors} and p["time"] > killed_at
                       for p in pings)

        wait_for("the dead MN's hosts tracked again", retracked, 60, 0.1)
        events["retracked"] = time.monotonic() - killed
        events["victim_hosts"] = len(victims_hosts)
        events["rabbitmq_down"] = restart_rabbitmq()
        time.sleep(2)
        events["mariadb_down"] = restart_mariadb()

    chaos_thread = threading.Thread(target=chaos, name="chaos")
    chaos_thread.start()
    with ThreadPoolExecutor(40) as pool:
        futures = []
        for i in range(VMS):
            futures.append(pool.submit(submitter.submit, i))
            time.sleep(1 / RATE)
        for future in futures:
            future.result()
    chaos_thread.join(300)
    assert not chaos_thread.is_alive()
    print(f"\nfailover: ring agreed {events['ring']:.1f}s after kill -9, {events['victim_hosts']} hosts of the "
          f"dead MN tracked again after {events['retracked']:.1f}s; RabbitMQ down {events['rabbitmq_down']:.1f}s, "
          f"MariaDB down {events['mariadb_down']:.1f}s; {submitter.retries} create requests sent again")
    assert events["retracked"] < FAILOVER_LIMIT and events["ring"] < FAILOVER_LIMIT

    # Every job ends.
    results: dict[str, tuple[int, dict]] = {}
    deadline = time.monotonic() + 600
    while len(results) < len(submitter.jobs):
        for job in submitter.jobs:
            if job not in results:
                status, body = job_state(mns, submitter.dead, api.session, job)
                assert status != 404, f"job {job} was accepted but is unknown"
                if status != 202:
                    results[job] = (status, body)
        assert time.monotonic() < deadline, f"{len(submitter.jobs) - len(results)} jobs still running"
        time.sleep(1)
    succeeded = {submitter.jobs[j]["name"] for j, (status, _) in results.items() if status == 200}
    failed = {j: body for j, (status, body) in results.items() if status != 200}
    for job, body in failed.items():
        assert "error" in body and body["error"].get("code"), (job, body)

    causes: dict[str, int] = {}
    for body in failed.values():
        error = body["error"]
        cause = (error.get("cause") or {}).get("code") or error["code"]
        causes[f"{error['code']}/{cause}"] = causes.get(f"{error['code']}/{cause}", 0) + 1
    print(f"\nfailed creations by error/cause: {causes}")
    assert not [b for b in failed.values() if "no host" in str(b) or "IP" in str(b)], "failed for want of room"

    live = client(survivors[0])
    # Nothing half done: no transitional state, and every VM whole, on its host too.
    vms = live.query("/vm-instances", "name~=chaos-%", limit=1000)["inventories"]
    assert not [v for v in vms if v["state"] in TRANSITIONAL], "VMs left in transitional states"
    on_agents = {uuid: state for ip in host_ips.values() for uuid, state in agent_vms(ip).items()}
    for vm in vms:
        assert vm["state"] == "Running" and vm["hostUuid"], vm
        root = [v for v in vm["allVolumes"] if v["type"] == "Root"]
        assert len(root) == 1 and root[0]["status"] == "Ready", vm
        assert len(vm["vmNics"]) == 1 and vm["vmNics"][0]["ip"], vm
        assert on_agents.get(vm["uuid"]) == "Running", f"{vm['uuid']} is not running on its host"
    recorded = {v["uuid"] for v in vms}
    strays = [uuid for uuid in on_agents if uuid not in recorded]
    assert not strays, f"VMs on hosts with no record: {strays}"
    names = {v["name"] for v in vms}
    # Jobs that succeeded made their VM; jobs the survivors failed made none. A
    # job of the dead MN is failed whatever its chain became (finished or rolled
    # back by the takeover), so only its VM's wholeness is asserted.
    assert succeeded <= names
    for job in failed:
        if submitter.jobs[job]["mn"] != victim.uuid:
            assert submitter.jobs[job]["name"] not in names, (job, failed[job])
    volumes = live.query("/volumes", limit=2000)["inventories"]
    assert not [v for v in volumes if v["status"] not in ("Ready", "NotInstantiated")], "volumes half made"

    check = subprocess.run([str(Path(sys.executable).with_name("zstack-ctl")), "check", "--db-url", mariadb_url],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    print(f"{len(names)} VMs made, {len(failed)} creations failed cleanly of {len(submitter.jobs)}")


def agent_last_ping(ip: str) -> dict:
    return httpx.post(f"http://{ip}:7070/testing/lastping", json={}, timeout=5).json()


def agent_vms(ip: str) -> dict[str, str]:
    return httpx.post(f"http://{ip}:7070/vm/vmsync", json={}, timeout=10).json()["states"]
