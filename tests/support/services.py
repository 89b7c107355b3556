"""Restart the machine's RabbitMQ and MariaDB, for chaos tests."""

from __future__ import annotations

import subprocess
import time


def _run(*cmd: str, timeout: float = 120) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)


def restart_rabbitmq() -> float:
    """Stop the whole RabbitMQ node and start it again; returns seconds down."""
    started = time.monotonic()
    _run("rabbitmqctl", "-q", "stop")
    subprocess.Popen(["rabbitmq-server", "-detached"], stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL).wait(60)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if subprocess.run(["rabbitmqctl", "-q", "await_startup"], capture_output=True,
                          timeout=120).returncode == 0:
            return time.monotonic() - started
        time.sleep(0.5)
    raise TimeoutError("RabbitMQ did not come back in 120 s")


def _mariadb_answers() -> bool:
    return subprocess.run(["mariadb", "-uroot", "-h127.0.0.1", "-e", "select 1"], capture_output=True,
                          timeout=10).returncode == 0


def restart_mariadb() -> float:
    """Stop MariaDB (its clients lose their connections) and start it again;
    returns seconds down."""
    started = time.monotonic()
    subprocess.run(["start-stop-daemon", "--stop", "--oknodo", "--retry", "30", "--exec", "/usr/sbin/mariadbd"],
                   check=True, capture_output=True, timeout=60)
    _run("start-stop-daemon", "--start", "--oknodo", "--background", "--exec", "/usr/sbin/mariadbd")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if _mariadb_answers():
            return time.monotonic() - started
        time.sleep(0.3)
    raise TimeoutError("MariaDB did not come back in 120 s")
