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
    query = report.get("query")
    if query:
        out.append(f"| Query ({_n(query.get('vms'))} VMs with nics and volumes; `query.p99_ms`) "
                   f"| page of 100 with count, 2 conditions + 1 nested, sorted: p50 {_fmt(query.get('p50_ms'))} ms, "
                   f"p99 {_fmt(query.get('p99_ms'))} ms; count over all: p99 {_fmt(query.get('count_p99_ms'))} ms "
                   f"| {_fmt(query.get('reference'))} |")
    reads = report.get("api_read")
    if reads:
        out.append(f"| API reads ({_fmt(reads.get('clients'))} clients, one MN) "
                   f"| GET zone: {_fmt(reads.get('zone_get_rps'))}/s (p99 {_fmt(reads.get('zone_get_p99_ms'))} ms); "
                   f"small query: {_fmt(reads.get('query_rps'))}/s (p99 {_fmt(reads.get('query_p99_ms'))} ms) | |")
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


#: The issue's targets on a 2-core machine: (what, latest.json key, how it is met).
TARGETS = (
    ("10,000 VMs created in at most 4 minutes (Simulator hosts)", "vm_create",
     lambda r: _vm_target(r)),
    ("VM creation within 2x of the floor", "vm_create.floor_ratio",
     lambda r: (r.get("floor_ratio"), r.get("floor_ratio") is not None and r["floor_ratio"] <= 2)),
    ("Query p99 under 100 ms at 100,000 VMs", "query.p99_ms",
     lambda r: (r.get("p99_ms"), r.get("p99_ms") is not None and r["p99_ms"] < 100
                and (r.get("vms") or 0) >= 100_000)),
    ("10,000 hosts tracked with under 10% of one core", "host_tracking.cpu_share",
     lambda r: (r.get("cpu_share"), r.get("cpu_share") is not None and r["cpu_share"] < 0.10
                and ((r.get("simulator") or {}).get("hosts") or 0) >= 10_000)),
    ("Failover under 10 s", "failover.seconds",
     lambda r: (r.get("seconds"), r.get("seconds") is not None and r["seconds"] < 10)),
)


def _vm_target(vm: dict) -> tuple:
    """Seconds for 10,000 VMs: measured when the run made 10,000, else
    extrapolated from the run's rate (and so not counted as met)."""
    rate, vms = vm.get("vms_per_s"), vm.get("vms") or 0
    if not rate:
        return None, False
    seconds = round(10_000 / rate, 1)
    if vms >= 10_000:
        return f"{seconds} s", seconds <= 240
    return f"{seconds} s extrapolated from {vms} VMs", False


def targets(report: dict) -> list[str]:
    rows = []
    for what, key, judge in TARGETS:
        name = key.split(".")[0]
        if name not in report:
            rows.append(f"| {what} | `{key}` | not measured in this run | - |")
            continue
        value, met = judge(report[name])
        rows.append(f"| {what} | `{key}` | {_fmt(value)} | {'met' if met else '**missed**'} |")
    return rows


def where_time_goes(profile: dict) -> list[str]:
    """The sampled profile of one MN creating VMs (benchmarks/profile_vm_create.py)."""
    if not profile or profile.get("error"):
        return [f"No profile: {profile.get('error')}" if profile else "No profile in this run.", ""]
    lines = [f"One MN creating {profile.get('vms')} VMs for {profile.get('clients')} REST clients, sampled by "
             f"py-spy at {profile.get('rate_hz')} Hz ({profile.get('samples')} samples of a thread holding "
             f"the GIL; the interpreter was busy {_pct(profile.get('gil_busy'))} of the run, "
             f"{_pct(profile.get('in_db_threads'))} of that in database transactions). "
             f"Raw stacks: `{profile.get('raw')}`; command: `{profile.get('command')}`.", ""]
    for title, key in (("By layer (the sampled frame's library)", "by_layer"),
                       ("By database transaction (with all it calls)", "by_transaction"),
                       ("On the event loop", "event_loop")):
        lines += [f"{title}:", "", "| share | where |", "|---:|---|"]
        lines += [f"| {share:.1%} | `{name[:110]}` |" for name, share in profile.get(key) or []]
        lines.append("")
    return lines


def markdown(report: dict, txt: str) -> str:
    lines = ["# Benchmark results", "",
             "Written by `benchmarks/report.py` (run by `make bench`); do not edit by hand.", "",
             f"Made by: `{report['command']}`", ""]
    rows = headline(report)
    if rows:
        lines += ["| benchmark | figures | against |", "|---|---|---|", *rows, ""]
    lines += ["## Targets (2-core machine)", "", "| target | key | this run | |", "|---|---|---|---|",
              *targets(report), ""]
    lines += ["## Where the time goes (VM creation)", "", *where_time_goes(report.get("profile")), ""]
    lines += ["## All figures (benchmarks/results/latest.txt)", "", "```", txt.rstrip("\n"), "```", ""]
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
