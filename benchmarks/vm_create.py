"""VM creation through the REST API of one real MN, against a raw floor.

Run: python benchmarks/vm_create.py [--vms N] [--clients C]

What one run does, on the real MariaDB and RabbitMQ (a fresh database
``zstack_bench_<hex>`` and a fresh vhost, both dropped at the end):

1. **count**: an in-process ManagementNode (the real node and HTTP app,
   driven through falcon's ASGI conductor) builds the cloud through REST --
   a zone, Simulator hosts of 512 GiB, storage, an image, a 1 GiB offering, an
   L3 network of a /16 -- then creates a few VMs one at a time while counting
   database transactions (SQLAlchemy ``commit`` events: ``commits`` are those
   that wrote, ``read_transactions`` those that only read; the client's final
   poll of each job is one of them) and bus publishes (``CloudBus._publish``).
   That is what one creation costs the MN.
2. **ours**: one real MN process (``python -m mn.ctl start --foreground``, as
   users run it) on the same database; ``--clients`` threads, each with its
   own HTTP client, POST /zstack/v1/vm-instances and poll the job to its end,
   until ``--vms`` VMs exist. We report VMs/s, p50/p99 completion time, MN CPU
   seconds per VM (utime+stime of the MN's processes from /proc) and the MN
   worker's peak memory (VmHWM).
3. **floor**: the same number of transactions and bus round trips per VM,
   done with raw pymysql (INSERT + COMMIT per commit, SELECT by primary key +
   COMMIT per read-only transaction) and kombu (a persistent request with
   publisher confirms to a durable queue, a responder publishing the reply),
   by the same number of client threads, for the same number of VMs.
   ``floor_ratio`` = our wall time / floor wall time.
4. **kvm** (``--kvm-vms``, 0 to skip): the same creation on KVM hosts whose
   agents are real HTTP servers: ``agents.kvm.server.ThreadedAgentServer``s
   with the simulated driver on 127.1.0.N, all on one port (the MN's
   ``ZSTACK_KVM_AGENT_PORT``), served by a child process (so the clients'
   threads do not share their interpreter), added with AddKVMHost to a KVM
   cluster with LocalStorage; a fresh database and vhost, one real MN process.
   Each creation then makes its volume, bridge and VM through agent commands
   with HTTP callbacks. ``vm_create.vms_per_s`` stays the Simulator figure.

ZStack's published figures for one MN (1,000 VMs in 103 s, 10,000 VMs in
23 min) are printed beside ours. Figures go to stdout and to
benchmarks/results/vm_create.json. Not a test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import multiprocessing
import os
import queue
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pymysql  # noqa: E402
from kombu import Connection, Consumer, Producer, Queue  # noqa: E402
from sqlalchemy import create_engine, event, make_url, text  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from mn.db import ensure_database_exists  # noqa: E402
from procstat import cpu_times, memory_mib, process_tree  # noqa: E402
from tests.support.api_client import ApiError, ZStackClient, sha512  # noqa: E402
from tests.support.cluster import MNProcess, free_port  # noqa: E402
from tests.support.kvm_world import add_kvm_host, build_kvm_world  # noqa: E402

DEFAULT_DB_SERVER = os.environ.get("ZSTACK_BENCH_DB_URL") or "mysql+pymysql://root@127.0.0.1/"
DEFAULT_BUS_SERVER = os.environ.get("ZSTACK_BENCH_BUS_URL") or "amqp://guest:guest@127.0.0.1:5672/"
RESULTS = ROOT / "benchmarks" / "results" / "vm_create.json"

GIB = 1 << 30
#: Simulator host size: 512 GiB and 128 cores (x10 CPU overcommit) hold 512 small VMs.
HOST_MEMORY, HOST_CPUS = 512 * GIB, 128
VMS_PER_HOST = 500
VM_CPUS, VM_MEMORY = 1, GIB
IMAGE_SIZE = GIB
#: VMs created one by one in the in-process node to count what a creation does.
COUNTED_VMS = 5
#: ZStack's published figures for one MN: (VMs, seconds).
ZSTACK_PUBLISHED = {1000: 103.0, 10000: 23 * 60.0}

log = logging.getLogger("bench.vm_create")


# -- fresh database and vhost ------------------------------------------------------------


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


class Backends:
    """A fresh MariaDB database and RabbitMQ vhost, removed by ``close``."""

    def __init__(self, db_server: str, bus_server: str):
        token = secrets.token_hex(6)
        self.server = make_url(db_server)
        self.db_name = f"zstack_bench_{token}"
        self.db_url = self.server.set(database=self.db_name).render_as_string(hide_password=False)
        self.vhost = f"zstack_bench_{token}"
        self.bus_url = f"{bus_server.rstrip('/')}/{self.vhost}"
        ensure_database_exists(self.db_url)
        _rabbitmqctl("add_vhost", self.vhost)
        _rabbitmqctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")

    def pymysql_args(self) -> dict:
        url = self.server
        return dict(host=url.host or "127.0.0.1", port=url.port or 3306, user=url.username or "root",
                    password=url.password or "", database=self.db_name, autocommit=False)

    def close(self) -> None:
        engine = create_engine(self.server.set(database=""), poolclass=NullPool)
        try:
            with engine.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{self.db_name}`"))
        finally:
            engine.dispose()
        _rabbitmqctl("delete_vhost", self.vhost)


# -- the cloud, built through REST ---------------------------------------------------------


class AsyncApi:
    """The few REST calls the world needs, through an in-process ASGI conductor."""

    def __init__(self, conductor):
        self.conductor = conductor
        self.session: str | None = None

    async def _request(self, method: str, path: str, body: dict | None = None):
        headers = {"Authorization": f"OAuth {self.session}"} if self.session else {}
        result = await self.conductor.simulate_request(method, path, json=body, headers=headers)
        deadline = time.monotonic() + 60
        while result.status_code == 202:
            location = urlsplit(result.json["location"]).path
            while True:
                result = await self.conductor.simulate_get(location)
                if result.status_code != 202 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.01)
        if result.status_code >= 300:
            raise ApiError(result.status_code, result.json)
        return result.json

    async def login(self) -> None:
        body = await self._request("PUT", "/zstack/v1/accounts/login",
                                   {"logInByAccount": {"accountName": "admin", "password": sha512("password")}})
        self.session = body["inventory"]["uuid"]

    async def create(self, path: str, params: dict) -> dict:
        return (await self._request("POST", "/zstack/v1" + path, {"params": params}))["inventory"]

    async def attach(self, path: str) -> None:
        await self._request("POST", "/zstack/v1" + path, {"params": {}})


async def build_world(api: AsyncApi, vms: int) -> dict:
    """Zone, cluster, enough 512 GiB Simulator hosts, storage, image, offering, /16 L3."""
    zone = (await api.create("/zones", {"name": "bench-zone"}))["uuid"]
    cluster = (await api.create("/clusters", {"zoneUuid": zone, "name": "bench-cluster",
                                              "hypervisorType": "Simulator"}))["uuid"]
    for i in range(math.ceil(vms / VMS_PER_HOST)):
        await api.create("/hosts/simulators", {"name": f"bench-host{i}", "managementIp": f"172.20.{i // 250}.{i % 250 + 1}",
                                               "clusterUuid": cluster, "cpuCapacity": HOST_CPUS,
                                               "memoryCapacity": HOST_MEMORY})
    big = 1 << 50
    ps = (await api.create("/primary-storage/simulators", {
        "name": "bench-ps", "url": "/ps", "zoneUuid": zone, "totalCapacity": big, "availableCapacity": big,
        "totalPhysicalCapacity": big, "availablePhysicalCapacity": big}))["uuid"]
    await api.attach(f"/clusters/{cluster}/primary-storage/{ps}")
    bs = (await api.create("/backup-storage/simulators", {"name": "bench-bs", "url": "/bs", "totalCapacity": big,
                                                          "availableCapacity": big}))["uuid"]
    await api.attach(f"/zones/{zone}/backup-storage/{bs}")
    image = await api.create("/images", {"name": "bench-image", "url": f"http://images.test/bench.qcow2?size={IMAGE_SIZE}",
                                         "format": "qcow2", "mediaType": "RootVolumeTemplate", "platform": "Linux",
                                         "backupStorageUuids": [bs]})
    offering = (await api.create("/instance-offerings", {"name": "bench-small", "cpuNum": VM_CPUS,
                                                         "memorySize": VM_MEMORY}))["uuid"]
    l2 = (await api.create("/l2-networks/no-vlan", {"name": "bench-l2", "zoneUuid": zone,
                                                    "physicalInterface": "eth0"}))["uuid"]
    await api.attach(f"/l2-networks/{l2}/clusters/{cluster}")
    l3 = (await api.create("/l3-networks", {"name": "bench-l3", "l2NetworkUuid": l2}))["uuid"]
    await api.create(f"/l3-networks/{l3}/ip-ranges", {"name": "bench-range", "startIp": "10.50.0.10",
                                                      "endIp": "10.50.255.250", "netmask": "255.255.0.0",
                                                      "gateway": "10.50.0.1"})
    return {"image": image["uuid"], "offering": offering, "l3": l3}


def vm_params(world: dict, name: str) -> dict:
    return {"name": name, "instanceOfferingUuid": world["offering"], "imageUuid": world["image"],
            "l3NetworkUuids": [world["l3"]]}


# -- 1. count what one creation does -------------------------------------------------------


async def count_one_creation(backends: Backends, vms: int, var_dir: Path) -> tuple[dict, dict]:
    """Build the world in-process, then count commits and publishes of a few creations."""
    from falcon import testing

    from mn.config import Settings
    from mn.node import ManagementNode
    from mn.web.app import create_app

    # No heartbeat during the count: only the creations' own work is counted.
    settings = Settings(var_dir=var_dir, db_url=backends.db_url, bus_url=backends.bus_url,
                        heartbeat_interval=3600.0, log_level="WARNING")
    node = ManagementNode(settings, exit_process=lambda: log.error("in-process MN was fenced"))
    async with testing.ASGIConductor(create_app(node)) as conductor:
        api = AsyncApi(conductor)
        await api.login()
        world = await build_world(api, vms + COUNTED_VMS)
        await api.create("/vm-instances", vm_params(world, "bench-warmup"))
        counts = {"commits": 0, "read_transactions": 0, "publishes": 0, "bus_messages": 0}

        def on_statement(conn, cursor, statement, parameters, context, executemany) -> None:
            if statement.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE", "REPLAC"):
                conn.info["bench_wrote"] = True

        def on_commit(conn) -> None:
            counts["commits" if conn.info.pop("bench_wrote", False) else "read_transactions"] += 1

        def on_rollback(conn) -> None:
            conn.info.pop("bench_wrote", None)

        def counting(name: str, key: str):
            original = getattr(node.bus, name)

            async def wrapper(*args, **kwargs):
                counts[key] += 1
                return await original(*args, **kwargs)
            return wrapper

        # _publish is what reaches the broker; call/send/publish are the bus
        # messages the code sends, most of them delivered locally (one MN).
        wrapped = {"_publish": "publishes", "call": "bus_messages", "send": "bus_messages",
                   "publish": "bus_messages"}
        listeners = (("before_cursor_execute", on_statement), ("commit", on_commit), ("rollback", on_rollback))
        for name, listener in listeners:
            event.listen(node.db.engine, name, listener)
        for name, key in wrapped.items():
            setattr(node.bus, name, counting(name, key))
        try:
            for i in range(COUNTED_VMS):
                await api.create("/vm-instances", vm_params(world, f"bench-counted{i}"))
        finally:
            for name in wrapped:
                delattr(node.bus, name)  # the instance attributes hid the methods
            for name, listener in listeners:
                event.remove(node.db.engine, name, listener)
    per_vm = {key: math.ceil(value / COUNTED_VMS) for key, value in counts.items()}
    # The floor does what reaches the broker; a floor round trip is two
    # publishes (request and reply). Local deliveries cost no broker trip.
    per_vm["bus_round_trips"] = math.ceil(per_vm["publishes"] / 2)
    return world, per_vm


# -- 2. ours: one real MN, concurrent REST clients ------------------------------------------------


def _percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def run_ours(mn: MNProcess, world: dict, vms: int, clients: int) -> dict:
    admin = ZStackClient(mn.url, timeout=120)
    admin.login()
    pids = process_tree(mn.proc.pid)  # the gunicorn master and its MN worker
    next_index = iter(range(vms))
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[str] = []

    def client_loop() -> None:
        client = ZStackClient(mn.url, session=admin.session, timeout=120)
        try:
            while True:
                with lock:
                    index = next(next_index, None)
                if index is None:
                    return
                t0 = time.perf_counter()
                try:
                    client.call("POST", "/vm-instances", json={"params": vm_params(world, f"bench-vm{index}")},
                                poll_timeout=600)
                    latencies.append(time.perf_counter() - t0)
                except (ApiError, TimeoutError, OSError) as exc:
                    failures.append(str(exc))
        finally:
            client.close()

    user0, system0 = cpu_times(pids)
    start = time.perf_counter()
    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    user1, system1 = cpu_times(pids)
    user, system = user1 - user0, system1 - system0
    cpu = user + system
    admin.close()
    if failures:
        log.warning("%d creations failed, first: %s", len(failures), failures[0])
    created = len(latencies)
    return {"vms": created, "failed": len(failures), "wall_s": round(wall, 2),
            "vms_per_s": round(created / wall, 2) if wall else None,
            "p50_s": round(_percentile(latencies, 50), 3) if latencies else None,
            "p99_s": round(_percentile(latencies, 99), 3) if latencies else None,
            "mn_cpu_s_per_vm": round(cpu / created, 4) if created else None,
            "mn_cpu_s": round(cpu, 1),
            # The kernel's part: socket calls and the wake-ups of threads
            # handing work to each other.
            "mn_cpu_system_share": round(system / cpu, 3) if cpu else None,
            # The worker (the MN) is the biggest of the processes.
            "mn_peak_rss_mib": max(memory_mib(pid) or 0 for pid in pids)}


# -- 3. the floor: the same commits and round trips with raw clients ----------------------------


class Responder(threading.Thread):
    """Answers every request of the floor's durable queue to its ``reply_to``."""

    def __init__(self, url: str, request_queue: Queue):
        super().__init__(daemon=True)
        self.url, self.request_queue = url, request_queue
        self.stopping = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        with Connection(self.url, heartbeat=0) as conn:
            producer = Producer(conn.channel())

            def answer(body, message) -> None:
                producer.publish(body, routing_key=message.properties["reply_to"], serializer="json",
                                 correlation_id=message.properties["correlation_id"], delivery_mode=1)
                message.ack()

            with Consumer(conn.channel(), [self.request_queue], callbacks=[answer], prefetch_count=200,
                          accept=["json"]):
                self.ready.set()
                while not self.stopping.is_set():
                    try:
                        conn.drain_events(timeout=0.2)
                    except TimeoutError:
                        pass
                    except OSError as exc:  # socket.timeout on older Pythons
                        if "timed out" not in str(exc):
                            raise


def run_floor(backends: Backends, vms: int, clients: int, per_vm: dict) -> dict:
    """``vms`` x (commits INSERT+COMMITs, read transactions SELECT+COMMITs and bus round
    trips), by ``clients`` threads."""
    args = backends.pymysql_args()
    setup = pymysql.connect(**args)
    with setup.cursor() as cur:
        cur.execute("CREATE TABLE BenchFloorVO (uuid CHAR(32) PRIMARY KEY, name VARCHAR(255) NOT NULL,"
                    " createDate TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB")
    setup.commit()
    setup.close()
    request_queue = Queue(f"bench.floor.{uuid.uuid4().hex[:8]}", durable=True)
    responder = Responder(backends.bus_url, request_queue)
    with Connection(backends.bus_url) as conn:
        request_queue(conn.channel()).declare()
    responder.start()
    responder.ready.wait(30)
    next_index = iter(range(vms))
    lock = threading.Lock()
    done: list[int] = []

    def client_loop() -> None:
        db = pymysql.connect(**args)
        replies: queue.SimpleQueue = queue.SimpleQueue()
        with Connection(backends.bus_url, heartbeat=0, transport_options={"confirm_publish": True}) as bus:
            reply_queue = Queue(f"bench.floor.reply.{uuid.uuid4().hex}", exclusive=True, auto_delete=True)
            producer = Producer(bus.channel())
            consumer = Consumer(bus.channel(), [reply_queue], no_ack=True, accept=["json"],
                                callbacks=[lambda body, message: replies.put(body)])
            consumer.consume()
            try:
                while True:
                    with lock:
                        index = next(next_index, None)
                    if index is None:
                        return
                    with db.cursor() as cur:
                        key = uuid.uuid4().hex
                        for _ in range(per_vm["commits"]):
                            key = uuid.uuid4().hex
                            cur.execute("INSERT INTO BenchFloorVO (uuid, name) VALUES (%s, %s)",
                                        (key, f"vm{index}"))
                            db.commit()
                        for _ in range(per_vm["read_transactions"]):
                            cur.execute("SELECT name FROM BenchFloorVO WHERE uuid = %s", (key,))
                            cur.fetchall()
                            db.commit()
                    for _ in range(per_vm["bus_round_trips"]):
                        producer.publish({"vm": index}, routing_key=request_queue.name, serializer="json",
                                         reply_to=reply_queue.name, correlation_id=uuid.uuid4().hex,
                                         delivery_mode=2)
                        while replies.empty():
                            bus.drain_events(timeout=30)
                        replies.get()
                    done.append(index)
            finally:
                consumer.cancel()
                db.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    responder.stopping.set()
    responder.join(10)
    return {"vms": len(done), "wall_s": round(wall, 2),
            "vms_per_s": round(len(done) / wall, 2) if wall else None, **per_vm}


# -- 4. on KVM hosts: simulated-driver agents over real HTTP ------------------------------------


#: Each agent's simulated machine: as big as a Simulator host, and a local disk
#: for VMS_PER_HOST root volumes.
KVM_STORAGE = 2 * VMS_PER_HOST * IMAGE_SIZE


def agent_ip(index: int) -> str:
    return f"127.1.0.{index + 1}"


def serve_agents(count: int, port: int, version: str, state_dir: str, ready, stop) -> None:
    """The child process's work: ``count`` agents on agent_ip(i):port until ``stop``."""
    from agents.kvm.config import AgentConfig
    from agents.kvm.server import ThreadedAgentServer

    logging.basicConfig(level=logging.WARNING)
    servers = [ThreadedAgentServer(AgentConfig(
        driver="simulated", host=agent_ip(i), port=port, state_dir=str(Path(state_dir) / f"agent{i}"),
        version=version, simulated_cpu_num=HOST_CPUS, simulated_memory=HOST_MEMORY,
        simulated_storage_capacity=KVM_STORAGE)) for i in range(count)]
    ready.set()
    stop.wait()
    for server in servers:
        server.close()


def run_kvm(db_server: str, bus_server: str, vms: int, clients: int, tmp: Path) -> dict:
    """``vms`` creations by ``clients`` REST clients on KVM hosts with simulated-driver agents."""
    from plugins.kvm.deploy import AGENTS_DIR, source_checksum

    hosts = math.ceil(vms / VMS_PER_HOST)
    port = free_port()
    spawn = multiprocessing.get_context("spawn")
    ready, stop = spawn.Event(), spawn.Event()
    agents = spawn.Process(target=serve_agents, name="bench-agents", daemon=True,
                           args=(hosts, port, source_checksum(AGENTS_DIR), str(tmp / "agents"), ready, stop))
    backends = Backends(db_server, bus_server)
    mn = None
    try:
        agents.start()
        if not ready.wait(120):
            raise RuntimeError("the KVM agents did not start")
        mn = MNProcess(tmp / "kvm-mn", db_url=backends.db_url, bus_url=backends.bus_url,
                       extra_env={"ZSTACK_KVM_AGENT_PORT": str(port)})
        mn.start()
        mn.wait_ready(120)
        api = ZStackClient(mn.url, timeout=120)
        api.login()
        storage = tmp / "local-storage"
        storage.mkdir()
        world = build_kvm_world(api, "bench", storage_path=str(storage), image_size=IMAGE_SIZE, vm_memory=VM_MEMORY,
                                ip_range=("10.60.0.10", "10.60.255.250", "255.255.0.0", "10.60.0.1"))
        for i in range(hosts):
            add_kvm_host(api, world, f"bench-kvm{i}", agent_ip(i), timeout=120)
        api.close()
        ours = run_ours(mn, world, vms, clients)
        return {"hosts": hosts, **ours}
    finally:
        if mn is not None:
            mn.stop()
        stop.set()
        agents.join(30)
        if agents.is_alive():
            agents.kill()
        backends.close()


# -- report ------------------------------------------------------------------------------------


def zstack_comparison(ours: dict) -> dict:
    out = {}
    for vms, seconds in ZSTACK_PUBLISHED.items():
        rate = vms / seconds
        out[f"{vms}_vms"] = {"seconds": seconds, "vms_per_s": round(rate, 2),
                             "ours_ratio": round(ours["vms_per_s"] / rate, 2) if ours["vms_per_s"] else None}
    return out


def print_table(result: dict) -> None:
    ours, floor = result["ours"], result["floor"]
    print(f"VM creation, {result['vms']} VMs by {result['clients']} concurrent REST clients, one MN")
    print(f"  {'':28} {'wall s':>8} {'VMs/s':>8}")
    print(f"  {'ours (REST, one MN)':28} {ours['wall_s']:>8} {ours['vms_per_s']:>8}")
    print(f"  {'floor (pymysql + kombu)':28} {floor['wall_s']:>8} {floor['vms_per_s']:>8}"
          f"   ({floor['commits']} commits + {floor['read_transactions']} read-only transactions +"
          f" {floor['bus_round_trips']} bus round trips per VM; {floor['bus_messages']} bus messages"
          f" delivered in-process)")
    print(f"  ours / floor time: {result['floor_ratio']}")
    print(f"  completion p50 {ours['p50_s']} s, p99 {ours['p99_s']} s; MN CPU {ours['mn_cpu_s_per_vm']} s/VM;"
          f" MN peak RSS {ours['mn_peak_rss_mib']} MiB; failed {ours['failed']}")
    kvm = result.get("kvm")
    if kvm:
        print(f"  {'ours on KVM hosts (agents)':28} {kvm['wall_s']:>8} {kvm['vms_per_s']:>8}"
              f"   ({kvm['vms']} VMs on {kvm['hosts']} hosts with simulated-driver agents over HTTP;"
              f" p50 {kvm['p50_s']} s, p99 {kvm['p99_s']} s; MN CPU {kvm['mn_cpu_s_per_vm']} s/VM;"
              f" failed {kvm['failed']})")
    for key, z in result["zstack_published"].items():
        print(f"  ZStack published, {key.replace('_', ' ')}: {z['seconds']:.0f} s = {z['vms_per_s']} VMs/s;"
              f" ours / theirs rate: {z['ours_ratio']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--kvm-vms", type=int, default=None,
                        help="VMs created on KVM hosts with simulated-driver agents (default: --vms; 0 skips)")
    parser.add_argument("--db-server", default=DEFAULT_DB_SERVER, help="MariaDB server URL (database ignored)")
    parser.add_argument("--bus-server", default=DEFAULT_BUS_SERVER, help="RabbitMQ URL without vhost")
    opts = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    backends = Backends(opts.db_server, opts.bus_server)
    mn = None
    try:
        with tempfile.TemporaryDirectory(prefix="bench-vm-") as tmp:
            t0 = time.perf_counter()
            world, per_vm = asyncio.run(count_one_creation(backends, opts.vms, Path(tmp) / "inproc"))
            print(f"built the cloud and counted in {time.perf_counter() - t0:.1f} s: per VM {per_vm}", flush=True)
            mn = MNProcess(Path(tmp) / "mn", db_url=backends.db_url, bus_url=backends.bus_url)
            mn.start()
            mn.wait_ready(120)
            ours = run_ours(mn, world, opts.vms, opts.clients)
            mn.stop()
            mn = None
            print(f"ours: {ours}", flush=True)
            floor = run_floor(backends, opts.vms, opts.clients, per_vm)
            print(f"floor: {floor}", flush=True)
            backends.close()
            backends = None
            kvm_vms = opts.vms if opts.kvm_vms is None else opts.kvm_vms
            kvm = run_kvm(opts.db_server, opts.bus_server, kvm_vms, opts.clients, Path(tmp)) if kvm_vms else None
            if kvm:
                print(f"kvm: {kvm}", flush=True)
    finally:
        if mn is not None:
            mn.stop()
        if backends is not None:
            backends.close()

    result = {"vms": ours["vms"], "requested_vms": opts.vms, "clients": opts.clients,
              "vms_per_s": ours["vms_per_s"],
              "floor_ratio": round(ours["wall_s"] / floor["wall_s"], 2) if floor["wall_s"] else None,
              "ours": ours, "floor": floor, "kvm": kvm, "zstack_published": zstack_comparison(ours),
              "command": "python benchmarks/vm_create.py " + " ".join(sys.argv[1:])}
    print_table(result)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"vm_create": result}, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
