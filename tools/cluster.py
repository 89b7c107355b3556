"""``make cluster``: several management nodes on this machine, for development.

    .venv/bin/python tools/cluster.py up --mns 3      # MNs on ports 8081, 8082, 8083
    .venv/bin/python tools/cluster.py status
    .venv/bin/python tools/cluster.py down

Each MN is started with ``zstack-ctl start`` (its daemon mode), exactly as an
operator would start it, with its own port and var dir (``<var-dir>/mn1``,
``mn2``, ...), all on one MariaDB database and one RabbitMQ. ``up`` returns
once every MN answers and all of them see the same N members.

Any other ``ZSTACK_*`` variable in the environment reaches the MNs unchanged
(``zstack-ctl`` reads them), e.g. ``ZSTACK_BIND=0.0.0.0 ZSTACK_NODE_IP=10.250.0.1``
for MNs that test-bed hosts can call back.

This lives in ``tools/``, not in the ``mn`` package, because it is a
developer's convenience that only drives ``zstack-ctl``; a real deployment
runs one systemd unit per MN (``deploy/``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click
import httpx

REPO = Path(__file__).resolve().parents[1]
#: What the ``zstack-ctl`` script runs; with cwd=REPO it works without the script on PATH.
CTL = [sys.executable, "-m", "mn.ctl"]
DEFAULT_DB_URL = "mysql+pymysql://root@127.0.0.1/zstack_cluster"
DEFAULT_BUS_URL = "amqp://guest:guest@127.0.0.1:5672//"
DEFAULT_VAR_DIR = Path("var/cluster")
PROBE = "/zstack/v1/management-nodes"
#: zstack-ctl waits 60 s for its MN; the first MN also creates the schema.
START_TIMEOUT = 120.0


@dataclass
class Node:
    var_dir: Path
    port: int | None = None

    @property
    def name(self) -> str:
        return self.var_dir.name

    @property
    def info(self) -> dict:
        """``node.json``, written by a running MN (uuid, pid, port, nodeIp)."""
        try:
            return json.loads((self.var_dir / "node.json").read_text())
        except (OSError, ValueError):
            return {}

    @property
    def running(self) -> bool:
        """Whether the MN's process (its gunicorn master, ``mn.pid``) lives."""
        pid = _read_pid(self.var_dir / "mn.pid")
        return pid is not None and _alive(pid)

    def url(self) -> str:
        return f"http://{_local_host()}:{self.port or self.info.get('port')}"


def _local_host() -> str:
    # Where this machine reaches an MN: the address it binds, or loopback
    # when it binds every address (as zstack-ctl itself probes).
    bind = os.environ.get("ZSTACK_BIND") or "127.0.0.1"
    return "127.0.0.1" if bind == "0.0.0.0" else bind


def _nodes(var_dir: Path) -> list[Node]:
    """The MN var dirs under ``var_dir`` (mn1, mn2, ...), in number order."""
    dirs = [d for d in var_dir.glob("mn*") if re.fullmatch(r"mn\d+", d.name) and d.is_dir()]
    return [Node(d) for d in sorted(dirs, key=lambda d: int(d.name[2:]))]


def _listing(node: Node) -> list[dict] | None:
    """The MNs this MN lists, or None when it does not answer."""
    try:
        rsp = httpx.get(node.url() + PROBE, timeout=3)
    except httpx.HTTPError:
        return None
    return rsp.json().get("inventories", []) if rsp.status_code == 200 else None


def wait_for_ring(nodes: list[Node], timeout: float) -> list[dict]:
    """Wait until every MN lists exactly ``nodes`` and each rebuilt its ring since.

    The listing is ``ManagementNodeVO``, the table every MN rebuilds its ring
    from when it heartbeats (stamp its row, read all rows, one transaction).
    Seeing all N rows is not enough: an MN may have read the table just
    before the last one joined. So after all N rows are seen, wait for every
    heartbeat to move twice; the second transaction began after the first
    committed, which was after all N rows were visible.
    """
    deadline = time.monotonic() + timeout
    expected = {n.info.get("uuid") for n in nodes}
    last: dict[str, str] = {}
    moves: dict[str, int] = {}
    while True:
        listings = [_listing(n) for n in nodes]
        if all(l is not None and {m["uuid"] for m in l} == expected for l in listings):
            for member in listings[0]:
                uuid, beat = member["uuid"], member["heartBeat"]
                if uuid in last and last[uuid] != beat:
                    moves[uuid] = moves.get(uuid, 0) + 1
                last[uuid] = beat
            if all(moves.get(u, 0) >= 2 for u in expected):
                return sorted(listings[0], key=lambda m: m["port"])
        else:
            last.clear()
            moves.clear()
        if time.monotonic() > deadline:
            seen = [sorted(m["uuid"] for m in l) if l is not None else "no answer" for l in listings]
            raise click.ClickException(f"the MNs did not agree on {sorted(expected)} in {timeout:g}s; "
                                       f"they list {seen} (a leftover row of a killed MN goes "
                                       "after 3 missed heartbeats; another MN on this database stays)")
        time.sleep(0.3)


@click.group()
def main() -> None:
    """Run several management nodes on this machine."""


@main.command()
@click.option("--mns", default=3, show_default=True, type=click.IntRange(1), help="how many MNs")
@click.option("--base-port", default=8081, show_default=True, help="port of mn1; mnK gets base+K-1")
@click.option("--db-url", default=DEFAULT_DB_URL, show_default=True,
              help="one MariaDB database for all (created if missing)")
@click.option("--bus-url", default=DEFAULT_BUS_URL, show_default=True, help="one RabbitMQ for all")
@click.option("--var-dir", default=DEFAULT_VAR_DIR, show_default=True, type=click.Path(path_type=Path),
              help="holds mn1, mn2, ...: each MN's pid file, node.json and log")
@click.option("--timeout", default=START_TIMEOUT, show_default=True, help="seconds to wait for the ring")
def up(mns: int, base_port: int, db_url: str, bus_url: str, var_dir: Path, timeout: float) -> None:
    """Start MNS management nodes and wait until they form one ring."""
    var_dir = var_dir.resolve()
    nodes = [Node(var_dir / f"mn{i}", base_port + i - 1) for i in range(1, mns + 1)]
    # All at once: each `zstack-ctl start` returns when its MN answers; the
    # first to take the migration lock creates the schema, the others wait.
    starting = []
    for node in nodes:
        if node.running:
            click.echo(f"{node.name} already runs from {node.var_dir}")
            continue
        starting.append((node, subprocess.Popen(
            [*CTL, "start", "--port", str(node.port), "--var-dir", str(node.var_dir),
             "--db-url", db_url, "--bus-url", bus_url],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    failed = []
    for node, proc in starting:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            failed.append(f"{node.name} (port {node.port}): {out.strip()}")
    started = [node for node, _ in starting]
    if failed:
        # Leave nothing half up (MNs that ran before stay); the logs stay in the var dirs.
        _stop(started)
        raise click.ClickException("could not start:\n  " + "\n  ".join(failed))
    try:
        members = wait_for_ring(nodes, timeout)
    except click.ClickException:
        _stop(started)
        raise
    click.echo(f"{len(members)} management nodes, one ring:")
    for node in nodes:
        click.echo(f"  {node.name}  {node.url()}  uuid {node.info.get('uuid')}  log {node.var_dir}/management-server.log")
    first = nodes[0].url()
    click.echo(f"""
Any MN answers any API call (and any job poll). Log in through one of them:
  .venv/bin/zstack-cli -s {first} LogInByAccount accountName=admin password=password
  .venv/bin/zstack-cli -s {first} QueryManagementNode
or put HAProxy in front (deploy/haproxy/haproxy.cfg, deploy/README.md).
Stop them with `make cluster-stop` (tools/cluster.py down --var-dir {var_dir}).""")


@main.command()
@click.option("--var-dir", default=DEFAULT_VAR_DIR, show_default=True, type=click.Path(path_type=Path))
def status(var_dir: Path) -> None:
    """Show each MN of the var dir and the members it lists; exit 1 unless all run."""
    nodes = _nodes(var_dir.resolve())
    if not nodes:
        click.echo(f"no management nodes under {var_dir}")
        sys.exit(1)
    healthy = True
    for node in nodes:
        listing = _listing(node) if node.running else None
        healthy &= listing is not None
        if listing is not None:
            click.echo(f"{node.name}  Running   {node.url()}  uuid {node.info.get('uuid')}  "
                       f"lists {len(listing)} MN(s)")
        else:
            click.echo(f"{node.name}  {'Starting' if node.running else 'Stopped'}")
    sys.exit(0 if healthy else 1)


@main.command()
@click.option("--var-dir", default=DEFAULT_VAR_DIR, show_default=True, type=click.Path(path_type=Path))
def down(var_dir: Path) -> None:
    """Stop every MN of the var dir (each leaves the ring cleanly)."""
    running = [n for n in _nodes(var_dir.resolve()) if n.running]
    if left := _stop(running):
        raise click.ClickException(f"processes {left} still run after zstack-ctl stop")
    click.echo(f"stopped {len(running)} management node(s) under {var_dir}" if running
               else f"no management node runs under {var_dir}")


def _stop(nodes: list[Node], timeout: float = 15.0) -> list[int]:
    # `zstack-ctl stop` returns when the pid file is gone, a moment before
    # the gunicorn master has exited; wait for the processes themselves so
    # that nothing is left when `down` returns.
    pids = [pid for n in nodes for pid in (_read_pid(n.var_dir / "mn.pid"), n.info.get("pid")) if pid]
    # In parallel: each `zstack-ctl stop` waits for its MN's graceful stop.
    stopping = [subprocess.Popen([*CTL, "stop", "--var-dir", str(n.var_dir)], cwd=REPO,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for n in nodes]
    for proc in stopping:
        proc.wait()
    deadline = time.monotonic() + timeout
    while (left := [pid for pid in pids if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (exited, not yet reaped) does not."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


if __name__ == "__main__":
    main()
