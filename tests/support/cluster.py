"""Run real management nodes as separate processes, as zstack-ctl does."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MNProcess:
    """One MN: ``python -m mn.ctl start --foreground`` (gunicorn master + MN worker)."""

    def __init__(self, var_dir: Path, *, db_url: str, bus_url: str, services: str = "",
                 heartbeat_interval: float | None = None, extra_env: dict | None = None):
        self.var_dir = var_dir
        self.port = free_port()
        self.db_url = db_url
        self.bus_url = bus_url
        self.env = {**os.environ, "ZSTACK_SERVICES": services, "PYTHONPATH": str(REPO),
                    **(extra_env or {})}
        if heartbeat_interval is not None:
            self.env["ZSTACK_HEARTBEAT_INTERVAL"] = str(heartbeat_interval)
        self.proc: subprocess.Popen | None = None
        self.uuid: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.var_dir / "management-server.log"

    def start(self) -> None:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        (self.var_dir / "node.json").unlink(missing_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mn.ctl", "start", "--foreground", "--port", str(self.port),
             "--var-dir", str(self.var_dir), "--db-url", self.db_url, "--bus-url", self.bus_url],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
        log.close()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"MN exited with {self.proc.returncode}:\n{self.log_tail()}")
            info = self._info()
            if info and self._answers():
                self.uuid = info["uuid"]
                return
            time.sleep(0.1)
        raise TimeoutError(f"MN on port {self.port} not ready in {timeout}s:\n{self.log_tail()}")

    def _info(self) -> dict:
        try:
            return json.loads((self.var_dir / "node.json").read_text())
        except (OSError, ValueError):
            return {}

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/zstack/v1/management-nodes", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """``kill -9`` the MN (its worker dies with the master)."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def start_cluster(base: Path, count: int, **kwargs) -> list[MNProcess]:
    nodes = [MNProcess(base / f"mn{i}", **kwargs) for i in range(count)]
    for node in nodes:
        node.start()
    try:
        for node in nodes:
            node.wait_ready()
    except Exception:
        for node in nodes:
            node.stop()
        raise
    return nodes
