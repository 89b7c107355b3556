"""Merge every benchmark's results into one report, with the machine that made them.

Run: python benchmarks/report.py [--command "make bench VMS=10000"]

Reads benchmarks/results/<name>.json (each ``{"<name>": {...}}``, written by
the benchmarks), and writes:

* benchmarks/results/latest.json: ``{"machine": {...}, "command": ..., "<name>": {...}, ...}``;
* benchmarks/results/latest.txt: the same as a readable table;
* benchmarks/RESULTS.md: the latest figures, the machine and the command.

The machine: CPU cores (os.cpu_count), memory (/proc/meminfo), Python,
MariaDB and RabbitMQ versions (asked of the servers the benchmarks use) and
the git commit (with ``-dirty`` when the tree has changes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "benchmarks" / "results"
LATEST_JSON = RESULTS_DIR / "latest.json"
LATEST_TXT = RESULTS_DIR / "latest.txt"
RESULTS_MD = ROOT / "benchmarks" / "RESULTS.md"
#: Files in results/ that are reports, not benchmark results.
REPORT_FILES = {LATEST_JSON.name}

DB_SERVER = os.environ.get("ZSTACK_BENCH_DB_URL") or "mysql+pymysql://root@127.0.0.1/"


def _run(*cmd: str) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / (1 << 20), 1)
    except OSError:
        pass
    return None


def mariadb_version() -> str | None:
    try:
        import pymysql
        from sqlalchemy import make_url

        url = make_url(DB_SERVER)
        conn = pymysql.connect(host=url.host or "127.0.0.1", port=url.port or 3306,
                               user=url.username or "root", password=url.password or "", connect_timeout=5)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT VERSION()")
                return cur.fetchone()[0]
        finally:
            conn.close()
    except Exception:  # a report without the version beats no report
        return None


def git_commit() -> str | None:
    commit = _run("git", "rev-parse", "--short=12", "HEAD")
    if commit and _run("git", "status", "--porcelain", "--untracked-files=no"):
        commit += "-dirty"
    return commit


def machine() -> dict:
    return {"cores": os.cpu_count(), "memory_gib": memory_gib(),
            "python": platform.python_version(), "mariadb": mariadb_version(),
            "rabbitmq": _run("rabbitmqctl", "-q", "version"), "git_commit": git_commit(),
            "os": f"{platform.system()} {platform.release()}",
            "reported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def load_results() -> dict:
    merged: dict = {}
    for path in sorted(RESULTS_DIR.glob("*.json")):
        if path.name in REPORT_FILES:
            continue
        try:
            data = json.loads(path.read_text())
        except ValueError as exc:
            print(f"skipping {path.name}: {exc}", file=sys.stderr)
            continue
        if isinstance(data, dict):
            merged.update(data)
    return merged


def flatten(value, prefix: str = "") -> list[tuple[str, object]]:
    """Leaf (dotted.key, value) pairs; lists are shown inline."""
    if isinstance(value, dict):
        rows = []
        for key, inner in value.items():
            rows.extend(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return rows
    return [(prefix, value)]


def table(report: dict) -> str:
    lines = ["Benchmarks", "", f"command: {report['command']}", ""]
    lines += [f"  {key:<14} {value}" for key, value in report["machine"].items()]
    for name, figures in report.items():
        if name in ("machine", "command"):
            continue
        lines += ["", name]
        rows = flatten(figures)
        width = max((len(key) for key, _ in rows), default=0)
        lines += [f"  {key:<{width}}  {json.dumps(value) if isinstance(value, (list, dict)) else value}"
                  for key, value in rows]
    return "\n".join(lines) + "\n"


def _fmt(value) -> str:
    return "-" if value is None else str(value)


def headline(report: dict) -> list[str]:
    """The figures the issue asks for, where the benchmarks produced them."""
    out = []
    vm = report.get("vm_create")
    if vm:
        ours, floor = vm.get("ours", {}), vm.get("floor", {})
        out.append(f"| VM creation ({vm.get('vms')} VMs, {vm.get('clients')} REST clients, one MN) "
                   f"| {_fmt(vm.get('vms_per_s'))} VMs/s, p50 {_fmt(ours.get('p50_s'))} s, "
                   f"p99 {_fmt(ours.get('p99_s'))} s, {_fmt(ours.get('mn_cpu_s_per_vm'))} MN CPU s/VM, "
                   f"peak {_fmt(ours.get('mn_peak_rss_mib'))} MiB, {_fmt(ours.get('failed'))} failed "
                   f"| floor {_fmt(floor.get('vms_per_s'))} VMs/s ({_fmt(floor.get('commits'))} commits + "
                   f"{_fmt(floor.get('bus_round_trips'))} bus round trips per VM); ours/floor time "
                   f"{_fmt(vm.get('floor_ratio'))} |")
        for key, z in (vm.get("zstack_published") or {}).items():
            out.append(f"| ZStack published, {key.replace('_', ' ')} | {z['seconds']:.0f} s = "
                       f"{z['vms_per_s']} VMs/s | our rate / theirs {_fmt(z.get('ours_ratio'))} |")
    bus = report.get("bus")
    if bus:
        out.append(f"| CloudBus request/reply | {_fmt(bus.get('roundtrips_per_s_c1'))}/s at concurrency 1, "
                   f"{_fmt(bus.get('roundtrips_per_s_c100'))}/s at 100 | floor ratio "
                   f"{_fmt(bus.get('ratio_c1'))} / {_fmt(bus.get('ratio_c100'))} |")
    tracking = report.get("host_tracking")
    if tracking:
        sim, kvm = tracking.get("simulator") or {}, tracking.get("kvm") or {}
        figures = [f"{_pct(tracking.get('cpu_share'))} of one core for {_n(sim.get('hosts'))} Simulator hosts "
                   f"every 60 s (idle {_pct((tracking.get('idle') or {}).get('cpu_share'))})"]
        if kvm:
            default, short = kvm.get("default_interval") or {}, kvm.get("short_interval") or {}
            figures.append(f"{_pct(default.get('cpu_share'))} for {_n(kvm.get('added'))} KVM hosts "
                           f"(simulated agents, HTTP pings) every 60 s, "
                           f"{_fmt(short.get('cpu_ms_per_host_ping'))} CPU ms per ping")
        figures.append(f"peak {_fmt(tracking.get('mn_peak_rss_mib'))} MiB")
        out.append(f"| Host tracking (one MN; `host_tracking.cpu_share`) | {', '.join(figures)} "
                   f"| target: {tracking.get('target') or '10,000 hosts tracked with under 10% of one core'} |")
    failover = report.get("failover")
    if failover:
        out.append(f"| Failover (3 MNs, {_n(failover.get('hosts'))} {_fmt(failover.get('host_type'))} hosts, "
                   f"kill -9 one; `failover.seconds`) | {_fmt(failover.get('seconds'))} s: "
                   f"{_fmt(failover.get('seconds_is'))}; ring agreed after "
                   f"{_fmt(failover.get('ring_seconds'))} s (max of {_fmt(failover.get('runs'))} runs) "
                   f"| target: {failover.get('target') or 'failover under 10 s'} |")
    return out


def _n(value) -> str:
    return f"{value:,}" if isinstance(value, int) else _fmt(value)


def _pct(share) -> str:
    return "-" if share is None else f"{share:.1%}"


def markdown(report: dict, txt: str) -> str:
    lines = ["# Benchmark results", "",
             "Written by `benchmarks/report.py` (run by `make bench`); do not edit by hand.", "",
             f"Made by: `{report['command']}`", ""]
    rows = headline(report)
    if rows:
        lines += ["| benchmark | figures | against |", "|---|---|---|", *rows, ""]
    lines += ["All figures (benchmarks/results/latest.txt):", "", "```", txt.rstrip("\n"), "```", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--command", default=os.environ.get("ZSTACK_BENCH_COMMAND") or "make bench",
                        help="the command that produced the results, shown in the report")
    opts = parser.parse_args()
    results = load_results()
    if not results:
        sys.exit(f"no results in {RESULTS_DIR}: run the benchmarks first")
    report = {"machine": machine(), "command": opts.command, **results}
    LATEST_JSON.write_text(json.dumps(report, indent=2) + "\n")
    txt = table(report)
    LATEST_TXT.write_text(txt)
    RESULTS_MD.write_text(markdown(report, txt))
    print(txt, end="")
    print(f"written: {', '.join(str(p.relative_to(ROOT)) for p in (LATEST_JSON, LATEST_TXT, RESULTS_MD))}")


if __name__ == "__main__":
    main()
