"""Where an MN's time goes while it creates VMs: a sampled profile of the real MN.

Run: python benchmarks/profile_vm_create.py [--vms N] [--clients C] [--rate HZ]

The VM creation benchmark's second phase again (``benchmarks/vm_create.py``:
a fresh database and vhost, the cloud built through REST, one real MN
process, ``--clients`` REST clients creating ``--vms`` VMs), with py-spy
(``pip install .[bench]``) attached to the MN for the whole run. py-spy reads
the process from outside (``--nonblocking``: the MN is never paused) and
keeps only samples of a thread holding the GIL (``--gil``), so a share
below is a share of the interpreter's busy time, the one resource a single
MN process cannot have more of.

It reports:

* ``gil_busy``: samples / (seconds x rate): how much of the run one
  interpreter was busy (1.0 = the MN is bound by its own CPU);
* ``by_layer``: the leaf frame's library (SQLAlchemy, PyMySQL, the HTTP
  server, falcon, pydantic, json, asyncio, our ``mn`` code...);
* ``by_transaction``: the function each database transaction runs (the
  ``fn`` of ``Database.run``), with everything it calls;
* ``event_loop``: what runs on the event loop, by the first two frames
  under the loop (requests, flow steps, jobs).

The raw stacks go to benchmarks/results/vm_create.profile.txt (collapsed
format: flamegraph.pl or speedscope read it), the figures to stdout and to
benchmarks/results/profile.json. The profiled run's speed is not a figure:
the sampler shares the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import vm_create  # noqa: E402
from tests.support.cluster import MNProcess  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "profile.json"
RAW = ROOT / "benchmarks" / "results" / "vm_create.profile.txt"

#: Leaf frame's file (as py-spy names it, relative to its sys.path entry)
#: prefix -> layer; first match wins.
LAYERS = (
    (("sqlalchemy/", "<sqlalchemy"), "SQLAlchemy"),
    (("pymysql/",), "PyMySQL"),
    (("uvicorn", "h11/", "httptools/"), "HTTP server (uvicorn, h11)"),
    (("falcon/",), "falcon"),
    (("pydantic",), "pydantic"),
    (("json/",), "json"),
    (("asyncio/", "selectors.py", "socket.py"), "asyncio and sockets"),
    (("concurrent/", "threading.py", "queue.py"), "thread pool"),
    (("kombu/", "amqp/"), "kombu/amqp"),
    (("mn/", "plugins/"), "mn (ours)"),
)


def layer_of(frame: str) -> str:
    where = frame.rpartition(" (")[2]
    for prefixes, layer in LAYERS:
        if where.startswith(prefixes):
            return layer
    return "other (stdlib: logging, uuid, datetime...)"


def frame_name(frame: str) -> str:
    """``function (file.py)`` without the directory and line."""
    function, _, where = frame.partition(" (")
    return f"{function} ({where.split(':')[0].rsplit('/', 1)[-1]})" if where else function


#: Frames between ``Database._call`` and the transaction's own function.
SESSION_FRAMES = ("Database.session", "_GeneratorContextManager", "sessionmaker", "Session.", "__exit__",
                  "__enter__", "begin ", "_go ", "Context.run")
#: Frames of the session's commit (the transaction's end, not its function).
COMMIT_FRAMES = ("TransactionalContext", "_maker_context_manager", "commit ", "SessionTransaction")


def summarize(raw_lines: list[str], seconds: float, rate: int) -> dict:
    """Shares of the busiest process's GIL samples (the MN worker; the
    gunicorn master barely runs)."""
    by_process: dict[str, list[tuple[list[str], int]]] = collections.defaultdict(list)
    for line in raw_lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        by_process[frames[0]].append((frames[1:], int(count)))
    if not by_process:
        return {"error": "py-spy recorded no samples"}
    samples = max(by_process.values(), key=lambda rows: sum(n for _, n in rows))
    total = sum(n for _, n in samples)
    layers: collections.Counter = collections.Counter()
    transactions: collections.Counter = collections.Counter()
    loop: collections.Counter = collections.Counter()
    for frames, n in samples:
        layers[layer_of(frames[-1])] += n
        names = [frame_name(f) for f in frames]
        if "Database._call (engine.py)" in names:
            below = names[names.index("Database._call (engine.py)") + 1:]
            # The transaction's own function: the first frame that is not
            # the session's context manager.
            own = next((name for name in below if not name.startswith(SESSION_FRAMES)),
                       "commit and session handling")
            if own.startswith(COMMIT_FRAMES):
                own = "commit and session handling"
            transactions[own] += n
        elif "Handle._run (events.py)" in names:
            below = names[names.index("Handle._run (events.py)") + 1:]
            loop[" > ".join(below[:2]) or "the loop itself"] += n
        elif len(names) <= 1:
            loop["native code (no Python frame: C extensions, the GIL hand-off)"] += n
        else:
            loop["outside callbacks: " + names[-1]] += n

    def shares(counter: collections.Counter, top: int) -> list[list]:
        return [[name, round(n / total, 3)] for name, n in counter.most_common(top)]

    return {"samples": total, "gil_busy": round(total / (seconds * rate), 3),
            "in_db_threads": round(sum(transactions.values()) / total, 3),
            "by_layer": shares(layers, 12), "by_transaction": shares(transactions, 15),
            "event_loop": shares(loop, 12)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=500)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    parser.add_argument("--db-server", default=vm_create.DEFAULT_DB_SERVER)
    parser.add_argument("--bus-server", default=vm_create.DEFAULT_BUS_SERVER)
    opts = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    py_spy = shutil.which("py-spy") or (str(Path(sys.executable).parent / "py-spy")
                                        if (Path(sys.executable).parent / "py-spy").exists() else None)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if py_spy is None:
        result = {"error": "py-spy is not installed: pip install '.[bench]'"}
        print(result["error"])
        RESULTS.write_text(json.dumps({"profile": result}, indent=2) + "\n")
        return

    backends = vm_create.Backends(opts.db_server, opts.bus_server)
    mn = None
    try:
        with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
            world, _ = asyncio.run(vm_create.count_one_creation(backends, opts.vms, Path(tmp) / "inproc"))
            mn = MNProcess(Path(tmp) / "mn", db_url=backends.db_url, bus_url=backends.bus_url)
            mn.start()
            mn.wait_ready(120)
            raw = Path(tmp) / "raw.txt"
            sampler = subprocess.Popen(
                [py_spy, "record", "--pid", str(mn.proc.pid), "--subprocesses", "--gil", "--nonblocking",
                 "--rate", str(opts.rate), "--format", "raw", "--output", str(raw)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            time.sleep(1)  # attached before the load starts
            started = time.perf_counter()
            ours = vm_create.run_ours(mn, world, opts.vms, opts.clients)
            seconds = time.perf_counter() - started
            sampler.send_signal(2)  # SIGINT: py-spy writes what it has and exits
            output, _ = sampler.communicate(timeout=60)
            if not raw.exists():
                raise RuntimeError(f"py-spy wrote nothing (is ptrace allowed?):\n{output}")
            lines = raw.read_text().splitlines()
            shutil.copyfile(raw, RAW)
    finally:
        if mn is not None:
            mn.stop()
        backends.close()

    result = {"vms": ours["vms"], "clients": opts.clients, "rate_hz": opts.rate,
              "seconds": round(seconds, 1), **summarize(lines, seconds, opts.rate),
              "raw": str(RAW.relative_to(ROOT)),
              "command": "python benchmarks/profile_vm_create.py " + " ".join(sys.argv[1:])}
    print(f"profile of one MN creating {result['vms']} VMs ({result['samples']} GIL samples at "
          f"{opts.rate} Hz over {result['seconds']} s; interpreter busy {result['gil_busy']:.0%}, "
          f"{result['in_db_threads']:.0%} of it in database threads)")
    for title, key in (("by layer (leaf frame)", "by_layer"), ("by database transaction", "by_transaction"),
                       ("on the event loop", "event_loop")):
        print(f"  {title}:")
        for name, share in result[key]:
            print(f"    {share:6.1%}  {name}")
    RESULTS.write_text(json.dumps({"profile": result}, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)} and {RAW.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
