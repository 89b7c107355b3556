"""API read throughput of one real MN with N concurrent clients.

Run: python benchmarks/api_read.py [--clients N] [--seconds S] [--db-server URL] [--bus-url URL]

Issue 8: "API read throughput: requests per second of GET
/zstack/v1/zones/{uuid} and of a small query, with N concurrent clients."

One MN process is started as ``zstack-ctl start --foreground`` does
(tests/support/cluster.py MNProcess) on a fresh MariaDB database and a fresh
RabbitMQ vhost; the admin logs in and creates a zone. Then ``--clients``
threads, each with its own HTTP connection (httpx.Client), send requests
back to back for ``--seconds`` per phase:

* **zone_get**: ``GET /zstack/v1/zones/{uuid}``;
* **query**: ``GET /zstack/v1/zones?q=name=<name>&limit=10``.

Every response must be a 200 (others are counted as errors). The client
threads share this machine's CPUs (and one GIL) with the MN, so on a small
machine the figures are a floor. Figures go to stdout and to
benchmarks/results/api_read.json; the MN, the database and the vhost are
removed at the end. Nothing is asserted on time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from mn.db import ensure_database_exists  # noqa: E402
from tests.support.api_client import ZStackClient  # noqa: E402
from tests.support.cluster import MNProcess  # noqa: E402

DEFAULT_DB_SERVER = os.environ.get("ZSTACK_BENCH_DB_URL") or "mysql+pymysql://root@127.0.0.1/"
DEFAULT_BUS_URL = os.environ.get("ZSTACK_BENCH_BUS_URL") or "amqp://guest:guest@127.0.0.1:5672/"
RESULTS = ROOT / "benchmarks" / "results" / "api_read.json"


# -- fresh backing services (shared with failover.py) ---------------------------------


@contextlib.contextmanager
def fresh_database(server_url: str, prefix: str) -> Iterator[str]:
    """URL of a new empty MariaDB database, dropped on exit."""
    server = make_url(server_url)
    name = f"{prefix}_{secrets.token_hex(6)}"
    url = server.set(database=name).render_as_string(hide_password=False)
    ensure_database_exists(url)
    try:
        yield url
    finally:
        engine = create_engine(server.set(database=""), poolclass=NullPool)
        try:
            with engine.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        finally:
            engine.dispose()


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@contextlib.contextmanager
def fresh_vhost(base_url: str, prefix: str) -> Iterator[str]:
    """URL of a new RabbitMQ virtual host (guest may use it), deleted on exit."""
    vhost = f"{prefix}_{secrets.token_hex(6)}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"{base_url.rstrip('/')}/{vhost}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)


@contextlib.contextmanager
def running_mns(count: int, db_url: str, bus_url: str, **kwargs) -> Iterator[list[MNProcess]]:
    """``count`` MN processes, ready; stopped on exit (killed ones are skipped)."""
    base = Path(tempfile.mkdtemp(prefix="zstack-bench-"))
    nodes = [MNProcess(base / f"mn{i}", db_url=db_url, bus_url=bus_url, **kwargs) for i in range(count)]
    try:
        # One at a time: every MN migrates the schema at start, under a lock.
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_ready(timeout=120)
        yield nodes
    finally:
        for node in nodes:
            if node.proc is not None:
                node.stop()
        shutil.rmtree(base, ignore_errors=True)


# -- the load ------------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else 0.0


def hammer(base_url: str, session: str, path: str, params: dict | None, clients: int, seconds: float) -> dict:
    """``clients`` threads GET ``path`` back to back for ``seconds``: rps and latency."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(index: int) -> None:
        headers = {"Authorization": f"OAuth {session}"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=30) as http:
            try:
                http.get(path, params=params)  # connect before the clock starts
            finally:
                start.wait()  # never leave the others waiting
            mine = latencies[index]
            while True:
                begin = time.perf_counter()
                if begin >= stop_at[0]:
                    return
                try:
                    ok = http.get(path, params=params).status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    mine.append((time.perf_counter() - begin) * 1000)
                else:
                    errors[index] += 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + 3600  # set for real once everyone is connected
    start.wait()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    samples = [x for per_client in latencies for x in per_client]
    return {"requests": len(samples), "errors": sum(errors), "seconds": round(elapsed, 2),
            "rps": round(len(samples) / elapsed, 1),
            "p50_ms": round(percentile(samples, 0.50), 2), "p99_ms": round(percentile(samples, 0.99), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each phase")
    parser.add_argument("--db-server", default=DEFAULT_DB_SERVER)
    parser.add_argument("--bus-url", default=DEFAULT_BUS_URL)
    args = parser.parse_args()

    began = time.monotonic()
    zone_name = f"bench-zone-{secrets.token_hex(3)}"
    with fresh_database(args.db_server, "zstack_bench_api") as db_url, \
            fresh_vhost(args.bus_url, "zstack_bench_api") as bus_url, \
            running_mns(1, db_url, bus_url) as (mn,):
        admin = ZStackClient(mn.url)
        try:
            session = admin.login()
            zone = admin.create("/zones", {"name": zone_name})
        finally:
            admin.close()
        print(f"MN {mn.url} up; {args.clients} clients, {args.seconds:g} s per phase")
        zone_get = hammer(mn.url, session, f"/zstack/v1/zones/{zone['uuid']}", None, args.clients, args.seconds)
        query = hammer(mn.url, session, "/zstack/v1/zones", {"q": f"name={zone_name}", "limit": 10},
                       args.clients, args.seconds)

    result = {
        "clients": args.clients, "seconds_per_phase": args.seconds,
        "zone_get_rps": zone_get["rps"], "zone_get_p50_ms": zone_get["p50_ms"],
        "zone_get_p99_ms": zone_get["p99_ms"], "zone_get_errors": zone_get["errors"],
        "query_rps": query["rps"], "query_p50_ms": query["p50_ms"], "query_p99_ms": query["p99_ms"],
        "query_errors": query["errors"],
        "setup": "one MN process (gunicorn master + one MN worker); load from threads in one process "
                 "on the same machine",
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "total_seconds": round(time.monotonic() - began, 1),
    }
    print()
    print(f"{'request':<48}{'rps':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for label, figures in (("GET /zstack/v1/zones/{uuid}", zone_get),
                           ("GET /zstack/v1/zones?q=name=<name>&limit=10", query)):
        print(f"{label:<48}{figures['rps']:>10}{figures['p50_ms']:>10}{figures['p99_ms']:>10}"
              f"{figures['errors']:>8}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"api_read": result}, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
