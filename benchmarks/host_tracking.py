"""Host tracking cost: the CPU one MN spends pinging the hosts it owns.

Run: python benchmarks/host_tracking.py [--hosts N] [--agent-hosts N] [--window S]
     [--short-interval S] [--short-window S] [--idle-window S] [--db-server URL] [--bus-url URL]

Issue 8: "Host tracking: 10,000 hosts tracked with under 10% of one core."

One MN process (``zstack-ctl start --foreground``: gunicorn master + one MN
worker) on a fresh MariaDB database and RabbitMQ vhost; a zone, a Simulator
cluster and a KVM cluster made through the REST API. Every ``host/ping.interval``
seconds the MN's host tracker (``mn/host/tracker.py``) pings each host it owns.
The MN's CPU share is the CPU seconds (utime + stime from /proc/<pid>/stat)
of the master and the worker over a window, divided by the window's wall
seconds: 1.0 is one core busy.

Phases, one after the other on the same MN:

1. **idle**: no hosts, ``--idle-window`` seconds (heartbeats, resyncs: the floor).
2. **simulator**: ``--hosts`` Simulator hosts (default 10,000), Connected, in the
   Simulator cluster. Their rows (HostVO, HostCapacityVO from
   ``mn.host.capacity.capacity_row``, SimulatorHostVO and the admin's
   AccountResourceRefVO, as AddSimulatorHost writes them) are inserted straight
   into the database: through the API 10,000 adds take minutes and add nothing a
   tracker sees. A Simulator ping does no I/O, so this is the tracker's own cost
   per host (read the hosts, pick this MN's on the ring, schedule each ping).
   ``host/ping.interval`` is set to ``--short-interval`` (5 s; the change wakes the
   tracker) for ``--short-window`` seconds, which gives the cost of one round,
   then back to the default 60 s for ``--window`` seconds (two rounds: the one
   the change wakes at once and the one 60 s later). The rows are then deleted.
3. **kvm**: ``--agent-hosts`` KVM hosts (default 1,000) with simulated-driver
   agents (``agents.kvm``) in this process on 127.1.x.y, all on one port
   (the MN's ``ZSTACK_KVM_AGENT_PORT``), added with AddKVMHost through the REST
   API (``--parallel`` in flight): each add pings, connects, asks the capacity
   and syncs the VMs of its agent, so the hosts are what an operator gets (the
   agents run this tree's package, so no Ansible). A ping is a real HTTP
   request (``/host/ping``). The same two windows follow; each agent's last ping
   (``agent.last_ping``: the MN's uuid and the time) shows every host was pinged
   in every round, and how long one round of pings took.

The agents are the agent's own WSGI app and server classes
(``agents.kvm.server.create_app`` and the classes ``ThreadedAgentServer``
uses) served by one selector thread instead of one polling thread each:
1,000 ``ThreadedAgentServer`` threads polling every 50 ms cost more than half
a core on their own and take tens of seconds to start and stop, which would
load the machine the MN is measured on.

Figures go to stdout and to benchmarks/results/host_tracking.json
(``host_tracking.cpu_share`` is the Simulator hosts at the default interval);
the MN, agents, database and vhost are removed at the end. Nothing is
asserted on time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import selectors
import shutil
import socketserver
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from api_read import DEFAULT_BUS_URL, DEFAULT_DB_SERVER, fresh_database, fresh_vhost, running_mns  # noqa: E402
from procstat import cpu_seconds, memory_mib, process_tree  # noqa: E402
from sqlalchemy import create_engine, delete, insert, update  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from agents.kvm.config import AgentConfig  # noqa: E402
from agents.kvm.server import _QuietHandler, _ThreadingWSGIServer, create_app  # noqa: E402
from mn.db.models.cluster import ClusterVO  # noqa: E402
from mn.db.models.host import HostCapacityVO, HostVO, SimulatorHostVO  # noqa: E402
from mn.db.models.identity import AccountResourceRefVO  # noqa: E402
from mn.db.types import utcnow  # noqa: E402
from mn.host.capacity import capacity_row  # noqa: E402
from mn.identity.constants import ADMIN_ACCOUNT_UUID, PERMISSION_WRITE  # noqa: E402
from mn.ids import new_uuid  # noqa: E402
from plugins.kvm.deploy import AGENTS_DIR, source_checksum  # noqa: E402
from tests.support.api_client import ZStackClient  # noqa: E402
from tests.support.cluster import free_port  # noqa: E402
from tests.support.kvm_world import set_global_config  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "host_tracking.json"
TARGET = "10,000 hosts tracked with under 10% of one core"
DEFAULT_INTERVAL = 60
GIB = 1 << 30


# -- the MN's processes ------------------------------------------------------------------


def cpu_window(pids: list[int], seconds: float, began: float | None = None) -> dict:
    """The processes' CPU over ``seconds`` of wall time from ``began`` (monotonic, default now)."""
    cpu0 = cpu_seconds(pids)
    began = time.monotonic() if began is None else began
    time.sleep(max(0.0, began + seconds - time.monotonic()))
    wall = time.monotonic() - began
    cpu = cpu_seconds(pids) - cpu0
    return {"window_s": round(wall, 1), "cpu_s": round(cpu, 2), "cpu_share": round(cpu / wall, 4)}


# -- agents on loopback addresses --------------------------------------------------------


def agent_ip(index: int) -> str:
    """127.1.x.y: 250 addresses per x, so 64,000 hosts at most."""
    return f"127.1.{index // 250}.{index % 250 + 1}"


class _FarmServer(_ThreadingWSGIServer):
    """The agent's in-process server, without the reverse DNS lookup
    (``socket.getfqdn``) HTTPServer makes of its address at bind."""

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]
        self.setup_environ()


class AgentFarm:
    """``count`` simulated-driver KVM agents (``agents.kvm``) on ``agent_ip(i)``:``port``.

    Each is the agent's app (``create_app``: a started :class:`agents.kvm.agent.Agent`)
    behind the WSGI server class ``ThreadedAgentServer`` uses (a thread per
    request); one thread waits on all the listening sockets at once.
    """

    def __init__(self, count: int, port: int, version: str, state_dir: Path, *, build_threads: int = 4):
        self.port = port
        self.ips = [agent_ip(i) for i in range(count)]
        self.servers: list[_FarmServer | None] = [None] * count
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()

        def build(index: int) -> None:
            config = AgentConfig(driver="simulated", host=self.ips[index], port=port,
                                 state_dir=str(state_dir / f"agent-{index}"), version=version)
            server = _FarmServer((self.ips[index], port), _QuietHandler)
            server.set_app(create_app(config))
            server.socket.setblocking(False)
            self.servers[index] = server
            self._selector.register(server.socket, selectors.EVENT_READ, server)

        self._thread = threading.Thread(target=self._serve, name="agent-farm", daemon=True)
        self._thread.start()
        try:
            with ThreadPoolExecutor(build_threads) as pool:
                list(pool.map(build, range(count)))
        except BaseException:
            self.close()
            raise

    def _serve(self) -> None:
        while not self._stop.is_set():
            if not self._selector.get_map():
                time.sleep(0.05)
                continue
            for key, _ in self._selector.select(0.2):
                key.data._handle_request_noblock()  # accept, then a thread runs the request

    def agents(self) -> list:
        return [s.get_app().agent for s in self.servers if s is not None]

    def last_pings(self) -> list[dict | None]:
        """Each agent's last ``/host/ping``: ``{"managementNodeUuid", "time"}`` or None."""
        return [getattr(s.get_app().agent, "last_ping", None) if s is not None else None for s in self.servers]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for server in self.servers:
            if server is None:
                continue
            server.server_close()
            server.get_app().agent.close(wait=False)
        self._selector.close()


def pinged_since(farm: AgentFarm, since: float, mn_uuids: set[str]) -> list[float]:
    """Times of the agents' last pings at or after ``since`` (epoch) by one of ``mn_uuids``."""
    return [p["time"] for p in farm.last_pings()
            if p and p.get("time") and p["time"] >= since and p.get("managementNodeUuid") in mn_uuids]


# -- hosts -------------------------------------------------------------------------------


def insert_simulator_hosts(db_url: str, zone: str, cluster: str, count: int) -> tuple[list[str], float]:
    """``count`` Connected Simulator hosts as rows, as AddSimulatorHost leaves them."""
    began = time.monotonic()
    engine = create_engine(db_url, poolclass=NullPool)
    uuids = [new_uuid() for _ in range(count)]
    now = utcnow()
    cap = capacity_row("x", cpu_num=32, memory_size=256 * GIB)
    capacity = {c.name: getattr(cap, c.name) for c in HostCapacityVO.__table__.columns if c.name != "uuid"}
    try:
        with engine.begin() as conn:
            conn.execute(update(ClusterVO).where(ClusterVO.uuid == cluster, ClusterVO.architecture.is_(None))
                         .values(architecture="x86_64"))
            for start in range(0, count, 2000):
                chunk = list(enumerate(uuids[start:start + 2000], start))
                conn.execute(insert(HostVO.__table__), [
                    {"uuid": u, "name": f"sim-{i}", "description": None, "createDate": now, "lastOpDate": now,
                     "zoneUuid": zone, "clusterUuid": cluster,
                     "managementIp": f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
                     "hypervisorType": "Simulator", "architecture": "x86_64", "state": "Enabled",
                     "status": "Connected"} for i, u in chunk])
                conn.execute(insert(HostCapacityVO.__table__), [{"uuid": u, **capacity} for _, u in chunk])
                conn.execute(insert(SimulatorHostVO.__table__),
                             [{"uuid": u, "memoryCapacity": 256 * GIB, "cpuCapacity": 32} for _, u in chunk])
                conn.execute(insert(AccountResourceRefVO.__table__), [
                    {"accountUuid": ADMIN_ACCOUNT_UUID, "ownerAccountUuid": ADMIN_ACCOUNT_UUID, "resourceUuid": u,
                     "resourceType": "HostVO", "concreteResourceType": "HostVO", "permission": PERMISSION_WRITE,
                     "isShared": False, "createDate": now, "lastOpDate": now} for _, u in chunk])
    finally:
        engine.dispose()
    return uuids, time.monotonic() - began


def delete_hosts_rows(db_url: str, uuids: list[str]) -> None:
    engine = create_engine(db_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            for start in range(0, len(uuids), 2000):
                chunk = uuids[start:start + 2000]
                conn.execute(delete(AccountResourceRefVO).where(AccountResourceRefVO.resourceUuid.in_(chunk)))
                for table in (SimulatorHostVO, HostCapacityVO, HostVO):
                    conn.execute(delete(table).where(table.uuid.in_(chunk)))
    finally:
        engine.dispose()


def add_kvm_hosts(clients: list[ZStackClient], cluster: str, ips: list[str], parallel: int) -> tuple[int, float]:
    """AddKVMHost for each ip through REST (spread over ``clients``); (added, seconds)."""
    failures: list[str] = []

    def add(i: int) -> bool:
        try:
            host = clients[i % len(clients)].create("/hosts/kvm", {
                "name": f"kvm-{i}", "managementIp": ips[i], "clusterUuid": cluster,
                "username": "root", "password": "password", "sshPort": 22}, poll_timeout=600)
            return host.get("status") == "Connected"
        except Exception as exc:  # counted and shown, the run goes on
            failures.append(f"{ips[i]}: {exc}"[:300])
            return False

    began = time.monotonic()
    added = 0
    with ThreadPoolExecutor(parallel) as pool:
        for done, ok in enumerate(pool.map(add, range(len(ips))), 1):
            added += ok
            if done % 100 == 0 or done == len(ips):
                print(f"\r  added {added}/{done} KVM hosts", end="", flush=True)
    print()
    for failure in failures[:5]:
        print(f"  failed: {failure}")
    return added, time.monotonic() - began


# -- the phases --------------------------------------------------------------------------


def busy_bursts(samples: list[tuple[float, float]], threshold: float = 0.3, gap: float = 1.0) -> list[tuple[float, float]]:
    """``(start, seconds)`` of the stretches where the MN used more than ``threshold``
    of a core (samples ``(monotonic, cpu seconds)``), stretches closer than ``gap`` merged:
    the tracker's rounds, when a round costs enough to stand out from the heartbeats."""
    bursts: list[list[float]] = []
    for (t0, c0), (t1, c1) in zip(samples, samples[1:]):
        if t1 > t0 and (c1 - c0) / (t1 - t0) > threshold:
            if bursts and t0 - bursts[-1][1] < gap:
                bursts[-1][1] = t1
            else:
                bursts.append([t0, t1])
    return [(b[0], b[1] - b[0]) for b in bursts]


def rounds_in(window: float, interval: float, round_s: float) -> int:
    """Rounds that end within ``window`` when the first starts at 0 and takes ``round_s``:
    the tracker waits ``interval`` after a round ends."""
    return max(1, int(max(0.0, window - round_s - 0.05) // (interval + round_s)) + 1)


def measure_intervals(api: ZStackClient, pids: list[int], idle_share: float, hosts: int, args,
                      farm: AgentFarm | None = None, mn_uuid: str | None = None) -> dict:
    """The short interval window, then the default interval window; each begins with the
    interval change that wakes the tracker (a round at once, then one per interval)."""
    out = {}
    for key, interval, window in (("short_interval", args.short_interval, args.short_window),
                                  ("default_interval", DEFAULT_INTERVAL, args.window)):
        print(f"  ping.interval {interval} s: {window:g} s window ...", flush=True)
        began, began_epoch = time.monotonic(), time.time()
        samples = [(began, cpu_seconds(pids))]
        set_global_config(api, "host", "ping.interval", interval)
        first_round = None
        while True:
            now = time.monotonic()
            if now >= began + window:
                break
            if farm is not None and first_round is None and now >= began + min(interval / 2, 10):
                # Between the first round and the second: when the first one's last ping came.
                times = pinged_since(farm, began_epoch, {mn_uuid})
                first_round = {"hosts_pinged": len(times),
                               "last_ping_after_s": round(max(times) - began_epoch, 2) if times else None}
            time.sleep(min(0.1, max(0.0, began + window - now)))
            samples.append((time.monotonic(), cpu_seconds(pids)))
        wall = samples[-1][0] - began
        cpu = samples[-1][1] - samples[0][1]
        bursts = busy_bursts(samples)
        # The first round: from the change until its burst of work ended (and, with
        # agents, until its last ping), and the CPU it took above idle.
        round_s = bursts[0][0] - began + bursts[0][1] if bursts and bursts[0][0] - began < 3 else 0.0
        if first_round and first_round["last_ping_after_s"]:
            round_s = max(round_s, first_round["last_ping_after_s"])
        rounds = rounds_in(wall, interval, round_s)
        first_end = began + round_s + 0.2
        first = [c for t, c in samples if t <= first_end]
        first_cpu = (first[-1] - samples[0][1]) - idle_share * (first_end - began) if round_s else None
        figures = {"interval_s": interval, "window_s": round(wall, 1), "rounds": rounds,
                   "cpu_s": round(cpu, 2), "cpu_share": round(cpu / wall, 4),
                   "cpu_share_above_idle": round(cpu / wall - idle_share, 4),
                   "cpu_s_per_round_above_idle": round((cpu - idle_share * wall) / rounds, 3),
                   "first_round_s": round(round_s, 2),
                   "first_round_cpu_s": round(first_cpu, 3) if first_cpu is not None else None,
                   "busy_bursts": [[round(b[0] - began, 1), round(b[1], 2)] for b in bursts][:20]}
        if hosts:
            figures["cpu_ms_per_host_ping"] = round(figures["cpu_s_per_round_above_idle"] * 1000 / hosts, 3)
            if first_cpu is not None:
                figures["first_round_cpu_ms_per_host"] = round(first_cpu * 1000 / hosts, 3)
        if farm is not None:
            # The last round of the window began at most one interval before its end:
            # every host pinged since, by this MN.
            figures["hosts_pinged_in_last_round"] = len(pinged_since(farm, began_epoch + wall - interval - round_s,
                                                                     {mn_uuid}))
            figures["first_round"] = first_round
        print(f"    MN CPU {figures['cpu_s']} s in {figures['window_s']} s: {figures['cpu_share']:.2%} of a core "
              f"({figures['cpu_share_above_idle']:.2%} above idle); {rounds} round(s), "
              f"{figures['cpu_s_per_round_above_idle']} CPU s per round above idle, "
              f"first round {figures['first_round_s']} s, {figures['first_round_cpu_s']} CPU s"
              + (f"; {figures['hosts_pinged_in_last_round']} hosts pinged in the last round"
                 if farm is not None else ""), flush=True)
        out[key] = figures
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10000, help="Simulator hosts (rows inserted)")
    parser.add_argument("--agent-hosts", type=int, default=1000, help="KVM hosts with in-process simulated agents")
    parser.add_argument("--window", type=float, default=120.0,
                        help="seconds measured at the default 60 s interval (120: two rounds)")
    parser.add_argument("--short-interval", type=int, default=5)
    parser.add_argument("--short-window", type=float, default=15.0)
    parser.add_argument("--idle-window", type=float, default=15.0)
    parser.add_argument("--parallel", type=int, default=32, help="AddKVMHost requests in flight")
    parser.add_argument("--db-server", default=DEFAULT_DB_SERVER)
    parser.add_argument("--bus-url", default=DEFAULT_BUS_URL)
    args = parser.parse_args()

    began = time.monotonic()
    result: dict = {"target": TARGET, "cpu_share": None}
    agent_port = free_port()
    version = source_checksum(AGENTS_DIR)
    state_dir = Path(tempfile.mkdtemp(prefix="zstack-bench-agents-"))
    farm: AgentFarm | None = None
    farm_box: dict = {}

    def build_farm() -> None:
        try:
            farm_box["farm"] = AgentFarm(args.agent_hosts, agent_port, version, state_dir)
        except BaseException as exc:  # shown when the KVM phase needs the farm
            farm_box["error"] = exc

    # The agents are built meanwhile (in this process, not the MN's).
    builder = threading.Thread(target=build_farm, name="farm-builder", daemon=True)
    try:
        with fresh_database(args.db_server, "zstack_bench_ht") as db_url, \
                fresh_vhost(args.bus_url, "zstack_bench_ht") as bus_url, \
                running_mns(1, db_url, bus_url, extra_env={"ZSTACK_KVM_AGENT_PORT": str(agent_port)}) as (mn,):
            if args.agent_hosts:
                builder.start()
            pids = process_tree(mn.proc.pid)
            api = ZStackClient(mn.url, timeout=120)
            session = api.login()
            zone = api.create("/zones", {"name": "bench-tracking"})["uuid"]
            sim_cluster = api.create("/clusters", {"zoneUuid": zone, "name": "bench-simulators",
                                                   "hypervisorType": "Simulator"})["uuid"]
            kvm_cluster = api.create("/clusters", {"zoneUuid": zone, "name": "bench-kvm",
                                                   "hypervisorType": "KVM"})["uuid"]
            print(f"MN {mn.url} up (pids {pids}); KVM agents on port {agent_port}")

            print(f"idle (0 hosts): {args.idle_window:g} s ...", flush=True)
            time.sleep(2)  # the login and creations above settle
            idle = cpu_window(pids, args.idle_window)
            idle["rss_mib"] = memory_mib(pids[-1], "VmRSS")
            result["idle"] = idle
            print(f"  MN CPU {idle['cpu_s']} s in {idle['window_s']} s: {idle['cpu_share']:.2%} of a core")

            if args.hosts:
                print(f"simulator: inserting {args.hosts} Simulator host rows ...", flush=True)
                uuids, insert_s = insert_simulator_hosts(db_url, zone, sim_cluster, args.hosts)
                print(f"  inserted in {insert_s:.1f} s")
                sim = {"hosts": args.hosts, "added": "rows inserted straight into MariaDB (HostVO, HostCapacityVO, "
                                                    "SimulatorHostVO, AccountResourceRefVO), Connected",
                       "insert_s": round(insert_s, 1),
                       **measure_intervals(api, pids, idle["cpu_share"], args.hosts, args)}
                sim["rss_mib"] = memory_mib(pids[-1], "VmRSS")
                result["simulator"] = sim
                result["cpu_share"] = sim["default_interval"]["cpu_share"]
                delete_hosts_rows(db_url, uuids)

            if args.agent_hosts:
                builder.join()
                if "error" in farm_box:
                    raise farm_box["error"]
                farm = farm_box["farm"]
                print(f"kvm: {args.agent_hosts} simulated agents up; AddKVMHost through REST "
                      f"({args.parallel} in flight) ...", flush=True)
                clients = [ZStackClient(mn.url, session=session, timeout=120) for _ in range(args.parallel)]
                try:
                    cpu0 = cpu_seconds(pids)
                    added, add_s = add_kvm_hosts(clients, kvm_cluster, farm.ips, args.parallel)
                    add_cpu = cpu_seconds(pids) - cpu0
                finally:
                    for client in clients:
                        client.close()
                print(f"  {added} added in {add_s:.1f} s ({added / add_s:.1f}/s, "
                      f"{add_cpu / max(added, 1) * 1000:.1f} MN CPU ms per add)")
                kvm = {"hosts": args.agent_hosts, "added": added,
                       "how": "AddKVMHost through REST; simulated-driver agents in the benchmark process "
                              "on 127.1.x.y",
                       "add_s": round(add_s, 1), "add_per_s": round(added / add_s, 1),
                       "add_mn_cpu_ms_per_host": round(add_cpu / max(added, 1) * 1000, 1)}
                time.sleep(2)
                kvm.update(measure_intervals(api, pids, idle["cpu_share"], added, args, farm, mn.uuid))
                kvm["rss_mib"] = memory_mib(pids[-1], "VmRSS")
                result["kvm"] = kvm
            api.close()
            result["mn_peak_rss_mib"] = max(memory_mib(pid) or 0 for pid in pids)
            result["mn_master_peak_rss_mib"] = memory_mib(pids[0])
    finally:
        if builder.is_alive():
            builder.join()
        farm = farm or farm_box.get("farm")
        if farm is not None:
            farm.close()
        shutil.rmtree(state_dir, ignore_errors=True)

    result.update({
        "setup": "one MN process (gunicorn master + one MN worker) on MariaDB and RabbitMQ; CPU share = "
                 "(utime+stime of both) / wall seconds, 1.0 = one core",
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "total_seconds": round(time.monotonic() - began, 1),
    })
    print()
    print(f"{'host tracking (one MN)':<58}{'CPU share of one core':>22}")
    print(f"{'  idle, 0 hosts':<58}{result['idle']['cpu_share']:>22.2%}")
    for key, label in (("simulator", "Simulator hosts"), ("kvm", "KVM hosts (simulated agents)")):
        part = result.get(key)
        if not part:
            continue
        for phase in ("default_interval", "short_interval"):
            f = part[phase]
            name = f"  {part['hosts']:,} {label}, every {f['interval_s']} s"
            print(f"{name:<58}{f['cpu_share']:>22.2%}")
    if result["cpu_share"] is not None:
        print(f"host_tracking.cpu_share ({args.hosts:,} Simulator hosts, every 60 s): {result['cpu_share']:.2%} "
              f"(target: {TARGET})")
    print(f"MN peak RSS {result['mn_peak_rss_mib']} MiB; total {result['total_seconds']} s")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"host_tracking": result}, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
