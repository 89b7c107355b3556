"""``make cluster``: tools/cluster.py starts three MNs with zstack-ctl and stops them.

The tool runs as ``make cluster`` runs it, a separate process, on a fresh
MariaDB database and RabbitMQ vhost, in a tmp var dir, on free ports.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.api_client import ZStackClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "cluster.py"
HAPROXY_CFG = REPO / "deploy" / "haproxy" / "haproxy.cfg"
MNS = 3


def tool(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    # The MNs take their settings from the options only, not from whatever
    # ZSTACK_* variables the test run has.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZSTACK_")}
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def free_base_port(count: int) -> int:
    """A port p with p .. p+count-1 all free (the tool numbers MNs from it)."""
    for _ in range(200):
        base = random.randrange(20000, 60000 - count)
        try:
            for port in range(base, base + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port range")


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, mariadb_url, amqp_url):
    var_dir = tmp_path_factory.mktemp("devcluster")
    base = free_base_port(MNS)
    up = tool("up", "--mns", MNS, "--base-port", base, "--db-url", mariadb_url,
              "--bus-url", amqp_url, "--var-dir", var_dir)
    try:
        assert up.returncode == 0, f"up failed:\n{up.stdout}\n{up.stderr}"
        yield var_dir, [f"http://127.0.0.1:{base + i}" for i in range(MNS)]
    finally:
        tool("down", "--var-dir", var_dir)


def test_every_mn_answers_and_lists_all_three(cluster):
    var_dir, urls = cluster
    uuids = {json.loads((var_dir / f"mn{i}" / "node.json").read_text())["uuid"] for i in range(1, MNS + 1)}
    assert len(uuids) == MNS
    for url in urls:
        rsp = httpx.get(f"{url}/zstack/v1/management-nodes", timeout=10)
        assert rsp.status_code == 200
        assert {m["uuid"] for m in rsp.json()["inventories"]} == uuids
    status = tool("status", "--var-dir", var_dir)
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.count(f"lists {MNS} MN(s)") == MNS


def test_zone_created_through_mn1_is_seen_through_mn3(cluster):
    _, urls = cluster
    first, second, third = (ZStackClient(u) for u in urls)
    try:
        session = first.login()
        rsp = first.request("POST", "/zones", json={"params": {"name": "devcluster-zone"}})
        assert rsp.status_code == 202, rsp.text
        # The job is a database row: another MN answers its poll.
        location = rsp.json()["location"].replace(urls[0], urls[1])
        second.session = session
        zone = second.wait(location)["inventory"]
        # The session is a row too: MN 3 accepts it and sees the zone.
        third.session = session
        found = third.query("/zones", f"uuid={zone['uuid']}")["inventories"]
        assert [z["name"] for z in found] == ["devcluster-zone"]
    finally:
        for client in (first, second, third):
            client.close()


def test_down_stops_every_process(cluster):
    var_dir, urls = cluster
    pids = []
    for i in range(1, MNS + 1):
        node = var_dir / f"mn{i}"
        pids += [int((node / "mn.pid").read_text()), json.loads((node / "node.json").read_text())["pid"]]
    assert all(alive(pid) for pid in pids)

    down = tool("down", "--var-dir", var_dir)
    assert down.returncode == 0, down.stdout + down.stderr
    # Masters and workers are gone when `down` returns, and nothing answers.
    assert [pid for pid in pids if alive(pid)] == []
    for url in urls:
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{url}/zstack/v1/management-nodes", timeout=2)
    assert tool("status", "--var-dir", var_dir).returncode == 1


def test_haproxy_cfg_is_valid():
    haproxy = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(p, os.X_OK)), None)
    if haproxy is None:
        pytest.skip("haproxy is not installed (Debian: apt-get install haproxy): "
                    "deploy/haproxy/haproxy.cfg not checked")
    check = subprocess.run([haproxy, "-c", "-f", str(HAPROXY_CFG)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
