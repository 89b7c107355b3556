"""A real ``zstack-kvmagent`` process for tests: its own config file, port and state dir,
started and stopped with its CLI as a deployer would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.support.cluster import free_port

REPO = Path(__file__).resolve().parents[2]
KVMAGENT = Path(sys.executable).with_name("zstack-kvmagent")
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class AgentProcess:
    """A ``zstack-kvmagent`` with its own config file, port and state dir."""

    def __init__(self, directory: Path, **settings) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.state_dir = directory / "state"
        self.config_file = directory / "kvmagent.ini"
        settings = {"host": "127.0.0.1", "port": free_port(), "driver": "simulated", "state_dir": self.state_dir,
                    "callback_retry_interval": 0.1, "version": "checksum-1", **settings}
        self.host = settings["host"]
        self.port = settings["port"]
        self.config_file.write_text("[kvmagent]\n" + "".join(f"{k} = {v}\n" for k, v in settings.items()))
        self.url = f"http://{settings['host']}:{self.port}"
        self.pid_file = self.state_dir / "kvmagent.pid"
        self.log_file = self.state_dir / "kvmagent.log"

    def cli(self, command: str, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ZSTACK_KVMAGENT_")}
        done = subprocess.run([str(KVMAGENT), command, "--config", str(self.config_file), *args], env=env,
                              cwd=REPO, capture_output=True, text=True, timeout=120)
        if expect is not None:
            assert done.returncode == expect, (f"zstack-kvmagent {command} exited {done.returncode}:\n"
                                               f"{done.stdout}{done.stderr}\n--- log ---\n{self.log_tail()}")
        return done

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def post(self, path: str, body: dict | None = None, **headers: str) -> dict:
        request = urllib.request.Request(self.url + path, data=json.dumps(body or {}).encode(), method="POST",
                                         headers={"Content-Type": "application/json", **headers})
        with opener.open(request, timeout=30) as answer:
            return json.load(answer)

    def log_tail(self) -> str:
        try:
            return "".join(self.log_file.read_text(errors="replace").splitlines(keepends=True)[-30:])
        except OSError:
            return "(no log)"

    def kill_if_left(self) -> None:
        pid = self.pid()
        if pid and alive(pid):
            os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


def start_in_namespace(host, version: str, **settings) -> AgentProcess:
    """Start a simulated agent on a test bed host (``tests.support.testbed.TestHost``)
    directly, without Ansible: for tests of many hosts where deployment is not
    what is tested. Its ``version`` is the MN's agent checksum, so the MN
    connects it without deploying."""
    directory = Path(host.host_vars["kvmagent_state_dir"]).parent / "direct"
    agent = AgentProcess(directory, host=host.ip, port=7070, version=version, **settings)
    host.exec(str(KVMAGENT), "start", "--daemon", "--config", str(agent.config_file), timeout=60)
    return agent
