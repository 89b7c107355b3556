"""Query latency over a large MariaDB: QueryVmInstance with nested conditions.

Run: python benchmarks/query.py [--db-server mysql+pymysql://root@127.0.0.1/] [--vms N] [--runs N]
     python benchmarks/query.py --keep ...; then --database <kept name> measures again without seeding

Issue 8: "Queries: 100,000 VMs (with NICs and volumes) in MariaDB;
QueryVmInstance with two conditions and one nested condition, page of 100
with count, sorted: p50/p99 latency; and a count over all."

A fresh database ``zstack_bench_q_<hex>`` is migrated (``mn.db.upgrade``),
given a small cloud (zone, cluster, 10 Simulator hosts, storage, image,
offerings, 10 L3 networks, through the ORM) and then ``--vms`` VMs, each
with a root volume, a nic and its UsedIpVO, inserted in bulk with
SQLAlchemy Core. The query engine then runs in-process exactly as the API
runs it (``QueryEngine.query(msg)`` over ``node.db``), as admin:

* **page**: ``state=Running``, ``hostUuid=<host 3>``, nested
  ``vmNics.l3Network.name=<l3 3>``; ``limit 100``, ``replyWithCount``,
  ``sortBy createDate desc`` (1 % of the VMs match: 1,000 of 100,000);
* **count**: ``count=true`` with no condition (all VMs).

Figures go to stdout and to benchmarks/results/query.json; the database is
dropped at the end (``--keep`` keeps it; ``--database`` reuses a kept one,
migrated to the newest schema first, and keeps it). Nothing is asserted on time.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import json
import os
import platform
import secrets
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from mn.api.message import QueryCondition  # noqa: E402
from mn.api.query import QueryEngine  # noqa: E402
from mn.db import Database, ensure_database_exists, upgrade  # noqa: E402
from mn.db.models.network import IpRangeVO, L3NetworkVO, UsedIpVO  # noqa: E402
from mn.db.models.vm import VmInstanceVO, VmNicVO  # noqa: E402
from mn.db.models.volume import VolumeVO  # noqa: E402
from mn.db.types import utcnow  # noqa: E402
from mn.ids import new_uuid  # noqa: E402
from mn.vm.messages import APIQueryVmInstanceMsg  # noqa: E402
from tests.support.vm_world import GIB, build_world  # noqa: E402

DEFAULT_SERVER = os.environ.get("ZSTACK_BENCH_DB_URL") or "mysql+pymysql://root@127.0.0.1/"
RESULTS = ROOT / "benchmarks" / "results" / "query.json"
HOSTS = 10
L3_NETWORKS = 10
BATCH = 5000
#: Issue 8's reference point: CloudStack listing 25,000 VMs averaged about 12 s.
CLOUDSTACK_REFERENCE = "CloudStack: list of 25,000 VMs averaged about 12 s"


class BenchNode:
    """What QueryEngine needs of a node: ``db``, and no identity (admin view)."""

    def __init__(self, db: Database):
        self.db = db
        self.identity = None


def build_parents(db: Database) -> tuple[list[str], list[tuple[str, str, str, ipaddress.IPv4Network]], dict]:
    """Zone ... hosts through the ORM; returns hosts, L3s (uuid, name, range uuid, cidr), world."""
    with db.session() as session:
        world = build_world(session, hosts=HOSTS, host_cpu=10_000, host_memory=100_000 * GIB,
                            ps_capacity=10_000_000 * GIB, ip_count=60_000)
        first = session.get(IpRangeVO, world.ip_range)
        l3s = [(world.l3, "l3", world.ip_range, ipaddress.IPv4Network(first.networkCidr))]
        for i in range(1, L3_NETWORKS):
            l3 = L3NetworkVO(name=f"l3-{i}", zoneUuid=world.zone, l2NetworkUuid=world.l2, state="Enabled")
            session.add(l3)
            session.flush()
            cidr = ipaddress.IPv4Network(f"10.{i}.0.0/16")
            ip_range = IpRangeVO(name=f"range-{i}", l3NetworkUuid=l3.uuid, startIp=str(cidr.network_address + 10),
                                 endIp=str(cidr.broadcast_address - 1), netmask=str(cidr.netmask),
                                 gateway=str(cidr.network_address + 1), networkCidr=str(cidr),
                                 prefixLen=cidr.prefixlen)
            session.add(ip_range)
            session.flush()
            l3s.append((l3.uuid, l3.name, ip_range.uuid, cidr))
    return world.hosts, l3s, world


def seed_vms(db: Database, count: int, hosts: list[str], l3s: list, world) -> None:
    """``count`` VMs with a root volume, a nic and its UsedIpVO, in bulk batches.

    VM i sits on host (i // 10) % 10 and its nic on L3 i % 10, so host and
    L3 conditions are independent; one VM in ten is Stopped (no host).
    """
    base = utcnow()
    for start in range(0, count, BATCH):
        volumes, vms, ips, nics = [], [], [], []
        for i in range(start, min(start + BATCH, count)):
            vm_uuid, vol_uuid, nic_uuid, ip_uuid = new_uuid(), new_uuid(), new_uuid(), new_uuid()
            created = base - timedelta(seconds=count - i)
            running = i % 10 != 9
            host = hosts[(i // 10) % len(hosts)]
            l3_uuid, _, range_uuid, cidr = l3s[i % len(l3s)]
            address = cidr.network_address + 10 + i // len(l3s)
            volumes.append(dict(
                uuid=vol_uuid, name=f"ROOT-for-vm-{i}", description=None, primaryStorageUuid=world.ps,
                vmInstanceUuid=vm_uuid, diskOfferingUuid=None, rootImageUuid=world.image,
                installPath=f"/ps/{vol_uuid}.qcow2", type="Root", status="Ready", size=10 * GIB,
                actualSize=GIB, deviceId=0, format="qcow2", state="Enabled", isShareable=False,
                createDate=created, lastOpDate=created))
            vms.append(dict(
                uuid=vm_uuid, name=f"vm-{i}", description=None, zoneUuid=world.zone, clusterUuid=world.cluster,
                imageUuid=world.image, hostUuid=host if running else None, lastHostUuid=host, internalId=i + 1,
                instanceOfferingUuid=world.offering, rootVolumeUuid=vol_uuid, defaultL3NetworkUuid=l3_uuid,
                type="UserVm", hypervisorType="Simulator", cpuNum=1 + i % 4, cpuSpeed=0,
                memorySize=GIB * (1 + i % 8), reservedMemorySize=0, platform="Linux", architecture="x86_64",
                allocatorStrategy="DefaultHostAllocatorStrategy", guestOsType="Linux",
                state="Running" if running else "Stopped", createDate=created, lastOpDate=created))
            ips.append(dict(
                uuid=ip_uuid, ipRangeUuid=range_uuid, l3NetworkUuid=l3_uuid, vmNicUuid=nic_uuid, ipVersion=4,
                ip=str(address), gateway=str(cidr.network_address + 1), netmask=str(cidr.netmask),
                ipInLong=int(address), usedFor="Vm", createDate=created, lastOpDate=created))
            nics.append(dict(
                uuid=nic_uuid, vmInstanceUuid=vm_uuid, usedIpUuid=ip_uuid, l3NetworkUuid=l3_uuid,
                ip=str(address), netmask=str(cidr.netmask), gateway=str(cidr.network_address + 1), ipVersion=4,
                mac="fa:%02x:%02x:%02x:%02x:%02x" % tuple((i >> s) & 0xFF for s in (32, 24, 16, 8, 0)),
                hypervisorType="Simulator", deviceId=0, internalName=f"vnic{i + 1}.0", driverType="virtio",
                type="VNIC", state="enable", createDate=created, lastOpDate=created))
        with db.engine.begin() as conn:
            # Volumes first: VmInstanceVO.rootVolumeUuid refers to them;
            # nics last: they refer to their VM and their UsedIpVO.
            conn.execute(insert(VolumeVO.__table__), volumes)
            conn.execute(insert(VmInstanceVO.__table__), vms)
            conn.execute(insert(UsedIpVO.__table__), ips)
            conn.execute(insert(VmNicVO.__table__), nics)
        print(f"\r  seeded {min(start + BATCH, count):,}/{count:,} VMs", end="", flush=True)
    print()
    with db.engine.connect() as conn:
        # Fresh statistics, as a long-lived database would have.
        for table in ("VmInstanceVO", "VmNicVO", "VolumeVO", "UsedIpVO", "L3NetworkVO"):
            conn.execute(text(f"ANALYZE TABLE `{table}`"))


class FullCollections:
    """Pauses of Python's full (generation 2) garbage collections while measuring.

    A full collection walks every object of the process (about 60 ms here
    for ~120,000 objects); a query it lands on takes that much longer,
    which is what the worst samples are made of.
    """

    def __init__(self):
        self.pauses: list[float] = []
        self._began = 0.0

    def __enter__(self):
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc):
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.pauses.append((time.perf_counter() - self._began) * 1000)

    def summary(self) -> dict:
        return {"full_gcs": len(self.pauses), "full_gc_max_ms": round(max(self.pauses, default=0.0), 1)}


async def measure(engine: QueryEngine, make_msg, runs: int, warmup: int) -> tuple[list[float], object, dict]:
    reply = None
    for _ in range(warmup):
        reply = await engine.query(make_msg())
    samples = []
    with FullCollections() as collections:
        for _ in range(runs):
            msg = make_msg()  # building the message is part of what the API does per request
            begin = time.perf_counter()
            reply = await engine.query(msg)
            samples.append((time.perf_counter() - begin) * 1000)
    return samples, reply, collections.summary()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(samples: list[float]) -> dict:
    return {"p50_ms": round(percentile(samples, 0.50), 2), "p99_ms": round(percentile(samples, 0.99), 2),
            "mean_ms": round(statistics.fmean(samples), 2)}


def query_targets(db: Database) -> tuple[str, str, int]:
    """The page query's host and L3 name (host 3 and L3 3 of :func:`build_parents`), and the VM count.

    Read back from the VMs (VM i has ``internalId`` i + 1 and last ran on
    host (i // 10) % 10), so a kept database can be measured again.
    """
    with db.engine.connect() as conn:
        host = conn.execute(text("SELECT lastHostUuid FROM VmInstanceVO WHERE internalId = 31")).scalar_one()
        vms = conn.execute(text("SELECT COUNT(*) FROM VmInstanceVO")).scalar_one()
    return host, "l3-3", vms


async def run_queries(db: Database, host: str, l3_name: str, runs: int, warmup: int) -> dict:
    engine = QueryEngine(BenchNode(db))

    def page_msg():
        return APIQueryVmInstanceMsg(
            conditions=[QueryCondition(name="state", op="=", value="Running"),
                        QueryCondition(name="hostUuid", op="=", value=host),
                        QueryCondition(name="vmNics.l3Network.name", op="=", value=l3_name)],
            limit=100, replyWithCount=True, sortBy="createDate", sortDirection="desc")

    def count_msg():
        return APIQueryVmInstanceMsg(count=True)

    page, page_reply, page_gc = await measure(engine, page_msg, runs, warmup)
    count, count_reply, count_gc = await measure(engine, count_msg, runs, warmup)
    return {"page": {**summary(page), **page_gc, "total": page_reply.total,
                     "returned": len(page_reply.inventories)},
            "count_all": {**summary(count), **count_gc, "total": count_reply.total}}


def drop_database(server, name: str) -> None:
    engine = create_engine(server.set(database=""), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db-server", default=DEFAULT_SERVER, help="MariaDB server URL (database name ignored)")
    parser.add_argument("--vms", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="keep the database (printed) instead of dropping it")
    parser.add_argument("--database", help="measure a database kept by --keep (no seeding; --vms is ignored)")
    parser.add_argument("--gc-freeze", action=argparse.BooleanOptionalAction, default=True,
                        help="gc.freeze() the objects alive before measuring, as a node does once started "
                             "(mn/node.py): full collections then walk only what queries create; "
                             "--no-gc-freeze measures without it (the slowest samples are then the ones a "
                             "full collection lands on)")
    args = parser.parse_args()

    server = make_url(args.db_server)
    name = args.database or f"zstack_bench_q_{secrets.token_hex(6)}"
    keep = args.keep or args.database is not None
    url = server.set(database=name).render_as_string(hide_password=False)
    began = time.monotonic()
    ensure_database_exists(url)
    db = None
    seed_seconds = None
    try:
        upgrade(url)
        db = Database(url, threads=4)
        if args.database is None:
            print(f"seeding {args.vms:,} VMs (with nics, IPs, root volumes) into {name}")
            seed_began = time.monotonic()
            hosts, l3s, world = build_parents(db)
            seed_vms(db, args.vms, hosts, l3s, world)
            seed_seconds = round(time.monotonic() - seed_began, 1)
        host, l3_name, args.vms = query_targets(db)
        if args.gc_freeze:
            gc.collect()
            gc.freeze()
        figures = asyncio.run(run_queries(db, host, l3_name, args.runs, args.warmup))
    finally:
        if db is not None:
            db.close()
        if keep:
            print(f"kept database {name}")
        else:
            drop_database(server, name)

    page, count = figures["page"], figures["count_all"]
    result = {
        "vms": args.vms, "nics": args.vms, "volumes": args.vms, "hosts": HOSTS, "l3_networks": L3_NETWORKS,
        "runs": args.runs, "warmup": args.warmup,
        "page_query": "state=Running, hostUuid=<host>, vmNics.l3Network.name=<l3>; limit 100, "
                      "replyWithCount, sortBy createDate desc",
        "p50_ms": page["p50_ms"], "p99_ms": page["p99_ms"], "mean_ms": page["mean_ms"],
        "page_total": page["total"], "page_returned": page["returned"],
        "count_p50_ms": count["p50_ms"], "count_p99_ms": count["p99_ms"], "count_mean_ms": count["mean_ms"],
        "count_total": count["total"],
        "gc_freeze": args.gc_freeze, "page_full_gcs": page["full_gcs"],
        "page_full_gc_max_ms": page["full_gc_max_ms"],
        "seed_seconds": seed_seconds,
        "reference": CLOUDSTACK_REFERENCE,
        "database": "MariaDB (in-process QueryEngine, as the API runs it; no HTTP)",
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "total_seconds": round(time.monotonic() - began, 1),
    }
    print()
    print(f"QueryVmInstance over {args.vms:,} VMs ({HOSTS} hosts, {L3_NETWORKS} L3s), {args.runs} runs each")
    print(f"{'query':<44}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}{'total':>10}")
    print(f"{'2 conditions + nested, page 100, count, sort':<44}{page['p50_ms']:>10}{page['p99_ms']:>10}"
          f"{page['mean_ms']:>10}{page['total']:>10}")
    print(f"{'count over all':<44}{count['p50_ms']:>10}{count['p99_ms']:>10}{count['mean_ms']:>10}"
          f"{count['total']:>10}")
    print(f"full garbage collections during the page runs: {page['full_gcs']} "
          f"(longest {page['full_gc_max_ms']} ms){'; gc.freeze() before measuring' if args.gc_freeze else ''}")
    print(f"reference: {CLOUDSTACK_REFERENCE}")
    if seed_seconds is not None:
        print(f"seeding took {seed_seconds:.1f} s")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"query": result}, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
