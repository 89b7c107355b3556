"""``zstack-ctl``: start, stop and inspect a management node.

Several MNs run on one machine by giving each its own ``--port`` and
``--var-dir``; the var dir holds the MN's pid file, log and ``node.json``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import httpx

from mn.config import Settings

LOG_FILE = "management-server.log"
START_TIMEOUT = 60.0


def _settings(**options) -> Settings:
    return Settings.from_env(**options)


def _pid(var_dir: Path) -> int | None:
    try:
        pid = int((var_dir / "mn.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return pid


def _node_info(var_dir: Path) -> dict:
    try:
        return json.loads((var_dir / "node.json").read_text())
    except (OSError, ValueError):
        return {}


def _answers(settings: Settings) -> bool:
    host = "127.0.0.1" if settings.bind in ("0.0.0.0", "") else settings.bind
    try:
        return httpx.get(f"http://{host}:{settings.port}/zstack/v1/management-nodes", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


node_options = [
    click.option("--port", type=int, help="REST port (ZSTACK_PORT, default 8080)"),
    click.option("--bind", help="address to listen on (ZSTACK_BIND, default 127.0.0.1)"),
    click.option("--node-ip", help="address peers and agents use to reach this MN (ZSTACK_NODE_IP)"),
    click.option("--db-url", help="SQLAlchemy URL (ZSTACK_DB_URL, default SQLite in the var dir)"),
    click.option("--bus-url", help="kombu URL (ZSTACK_BUS_URL, default memory://)"),
    click.option("--var-dir", type=click.Path(path_type=Path), help="state and logs (ZSTACK_VAR_DIR, default ./var)"),
]


def with_node_options(fn):
    for option in reversed(node_options):
        fn = option(fn)
    return fn


@click.group()
def main() -> None:
    """Control a ZStack-compatible management node."""


@main.command()
@with_node_options
@click.option("--foreground", is_flag=True, help="run in this terminal until interrupted")
def start(foreground: bool, **options) -> None:
    """Start a management node."""
    settings = _settings(**options)
    var_dir = settings.var_dir
    var_dir.mkdir(parents=True, exist_ok=True)
    if (pid := _pid(var_dir)) is not None:
        raise click.ClickException(f"a management node already runs from {var_dir} (pid {pid})")
    if foreground:
        from mn.web.server import serve

        serve(settings)
        return
    env = {**os.environ, **settings.to_env()}
    with open(var_dir / LOG_FILE, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "mn.ctl", "start", "--foreground"],
                                env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise click.ClickException(f"the management node exited with {proc.returncode}; "
                                       f"see {var_dir / LOG_FILE}")
        if _answers(settings) and _node_info(var_dir).get("port") == settings.port:
            info = _node_info(var_dir)
            click.echo(f"management node {info.get('uuid')} is running on port {settings.port} (pid {proc.pid})")
            return
        time.sleep(0.2)
    raise click.ClickException(f"the management node did not answer within {START_TIMEOUT:g}s; "
                               f"see {var_dir / LOG_FILE}")


@main.command()
@click.option("--var-dir", type=click.Path(path_type=Path))
@click.option("--timeout", default=40.0, show_default=True, help="seconds before SIGKILL")
def stop(var_dir: Path | None, timeout: float) -> None:
    """Stop the management node of a var dir."""
    var_dir = _settings(var_dir=var_dir).var_dir
    pid = _pid(var_dir)
    if pid is None:
        click.echo("management node is not running")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _pid(var_dir) is None or not _alive(pid):
            click.echo("management node stopped")
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    click.echo(f"management node did not stop in {timeout:g}s: killed")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours counts as gone.
    try:
        return not Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return False


@main.command()
@click.option("--var-dir", type=click.Path(path_type=Path))
def status(var_dir: Path | None) -> None:
    """Show whether the management node of a var dir runs; exit 1 if not."""
    settings = _settings(var_dir=var_dir)
    pid = _pid(settings.var_dir)
    info = _node_info(settings.var_dir)
    if pid is None:
        click.echo("management node: Stopped")
        sys.exit(1)
    port = info.get("port", settings.port)
    answering = _answers(Settings.from_env(var_dir=settings.var_dir, port=port))
    click.echo(f"management node: {'Running' if answering else 'Starting'}")
    click.echo(f"  uuid: {info.get('uuid', '?')}\n  pid: {pid}\n  port: {port}")
    sys.exit(0 if answering else 1)


@main.command()
@click.option("--db-url", help="SQLAlchemy URL (ZSTACK_DB_URL, default SQLite in the var dir)")
@click.option("--var-dir", type=click.Path(path_type=Path), help="state and logs (ZSTACK_VAR_DIR, default ./var)")
@click.option("--transition-timeout", type=click.FloatRange(min=0), metavar="SECONDS",
              help="age after which a transitional state is a problem (default: the api/timeout global config)")
@click.option("--strict-storage", is_flag=True,
              help="SimulatorPrimaryStorage was added empty: capacity used beyond its volumes is a leak")
@click.option("--json", "as_json", is_flag=True, help="print the problems as a JSON list")
def check(db_url: str | None, var_dir: Path | None, transition_timeout: float | None, strict_storage: bool,
          as_json: bool) -> None:
    """Check the database's invariants (capacity, addresses, orphans, stuck work).

    Reads only. Exit 0 when clean, 1 when problems were found, 2 when the
    database cannot be read.
    """
    from mn.check.report import UNREACHABLE, DatabaseUnreachable, collect, exit_status, render_json, render_text

    url = _settings(db_url=db_url, var_dir=var_dir).database_url
    try:
        problems = collect(url, transition_timeout=transition_timeout, strict_storage=strict_storage)
    except DatabaseUnreachable as exc:
        click.echo(f"zstack-ctl check: {exc}", err=True)
        sys.exit(UNREACHABLE)
    if as_json:
        click.echo(render_json(problems))
    else:
        render_text(problems, click.echo)
    sys.exit(exit_status(problems))


if __name__ == "__main__":
    main()
