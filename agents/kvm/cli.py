"""``zstack-kvmagent``: start, stop and check the KVM host agent.

``start`` runs gunicorn in this process (``--foreground``, the default, as a
service manager wants it); ``start --daemon`` runs ``start --foreground`` as a
detached child and returns once that child answers ``/host/echo``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import click

from agents.kvm.config import AgentConfig, ConfigError, default_config_file

#: Exit status of ``status`` when the agent is not running (LSB's "program is not running").
NOT_RUNNING = 3
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def load_config(config_file: str | None) -> AgentConfig:
    try:
        return AgentConfig.load(config_file or default_config_file())
    except ConfigError as e:
        raise click.ClickException(str(e)) from None


def answers_echo(config: AgentConfig, timeout: float = 2.0) -> bool:
    """Whether an agent answers ``/host/echo`` at the config's address."""
    try:
        with _opener.open(config.local_url + "/host/echo", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def read_pid(config: AgentConfig) -> int | None:
    """The pid in the pid file, if any."""
    try:
        with open(config.pid_file) as f:
            return int(f.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


def agent_pid(config: AgentConfig) -> int | None:
    """The pid of the running agent according to its pid file (stale files ignored)."""
    pid = read_pid(config)
    return pid if pid is not None and _is_live_agent(pid) else None


def _is_live_agent(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, someone else's: the cmdline check below decides
    try:
        with open(f"/proc/{pid}/stat") as f:
            # A zombie (nobody reaped it, e.g. no init in a container) is gone.
            if f.read().rsplit(")", 1)[-1].split()[0] == "Z":
                return False
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return True  # no /proc: trust kill(0)
    # The pid of a crashed agent may have gone to another program since.
    return b"kvmagent" in cmdline or b"agents.kvm" in cmdline


def _log_tail(config: AgentConfig, lines: int = 20) -> str:
    try:
        with open(config.log_file, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no log)"


@click.group()
def main() -> None:
    """The ZStack KVM host agent."""


@main.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="INI file with a [kvmagent] section (default: $ZSTACK_KVMAGENT_CONFIG or "
                   "/etc/zstack/kvmagent.ini if present).")
@click.option("--foreground/--daemon", default=True,
              help="Run in this process (default; for systemd), or detach and return once the agent answers.")
@click.option("--timeout", default=30.0, show_default=True,
              help="Seconds --daemon waits for the agent to answer /host/echo.")
def start(config_file: str | None, foreground: bool, timeout: float) -> None:
    """Start the agent."""
    if config_file:
        config_file = os.path.abspath(config_file)
    config = load_config(config_file)
    running = agent_pid(config)
    if running:
        raise click.ClickException(f"zstack-kvmagent is already running (pid {running}, {config.pid_file})")
    for directory in (config.state_dir, os.path.dirname(config.log_file), os.path.dirname(config.pid_file)):
        os.makedirs(directory or ".", exist_ok=True)
    if foreground:
        run_foreground(config)
    else:
        pid = start_daemon(config, config_file, timeout)
        click.echo(f"zstack-kvmagent started (pid {pid}) at {config.local_url}")


def run_foreground(config: AgentConfig) -> None:
    """Serve until SIGTERM/SIGINT; gunicorn removes the pid file on the way out."""
    from agents.kvm.server import AgentApplication, configure_logging

    configure_logging(config)
    try:
        AgentApplication(config).run()
    finally:
        # gunicorn writes the pid file before binding and leaves it behind when
        # it cannot bind (or dies otherwise); a clean exit has removed it already.
        if read_pid(config) == os.getpid():
            try:
                os.unlink(config.pid_file)
            except FileNotFoundError:
                pass


def start_daemon(config: AgentConfig, config_file: str | None, timeout: float) -> int:
    """Run ``start --foreground`` detached; its pid once it answers ``/host/echo``."""
    command = [sys.executable, "-m", "agents.kvm.cli", "start", "--foreground"]
    if config_file:
        command += ["--config", config_file]
    with open(os.devnull, "rb") as devnull, open(config.log_file, "ab") as log:
        # Its own session: the terminal's hangup and Ctrl-C are not the agent's.
        # stderr to the log catches what fails before logging is set up.
        child = subprocess.Popen(command, stdin=devnull, stdout=devnull, stderr=log, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = child.poll()
        if code is not None:
            raise click.ClickException(f"zstack-kvmagent exited with status {code} while starting; "
                                       f"last lines of {config.log_file}:\n{_log_tail(config)}")
        if read_pid(config) == child.pid and answers_echo(config, timeout=1.0):
            child.returncode = 0  # it lives on without us; do not warn about not waiting for it
            return child.pid
        time.sleep(0.1)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    raise click.ClickException(f"zstack-kvmagent did not answer {config.local_url}/host/echo within {timeout:g}s "
                               f"(killed it); last lines of {config.log_file}:\n{_log_tail(config)}")


@main.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="As for start.")
@click.option("--timeout", default=90.0, show_default=True,
              help="Seconds to wait for running commands to finish before killing the agent.")
def stop(config_file: str | None, timeout: float) -> None:
    """Stop the agent gracefully (SIGTERM), waiting for it to exit."""
    config = load_config(config_file)
    pid = agent_pid(config)
    if pid is None:
        _remove_stale_pid_file(config)
        click.echo("zstack-kvmagent is not running")
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_live_agent(pid):
            _remove_stale_pid_file(config)
            click.echo(f"zstack-kvmagent stopped (pid {pid})")
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    _remove_stale_pid_file(config)
    raise click.ClickException(f"zstack-kvmagent (pid {pid}) did not stop within {timeout:g}s; killed it")


def _remove_stale_pid_file(config: AgentConfig) -> None:
    # gunicorn removes it on a clean exit; this is for crashes and kills.
    if read_pid(config) is not None and agent_pid(config) is None:
        try:
            os.unlink(config.pid_file)
        except FileNotFoundError:
            pass


@main.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="As for start.")
def status(config_file: str | None) -> None:
    """Exit 0 if the agent runs and answers, 1 if it runs but does not answer, 3 if not running."""
    config = load_config(config_file)
    pid = agent_pid(config)
    if pid is None:
        click.echo("zstack-kvmagent is not running")
        sys.exit(NOT_RUNNING)
    if not answers_echo(config):
        click.echo(f"zstack-kvmagent (pid {pid}) does not answer at {config.local_url}")
        sys.exit(1)
    click.echo(f"zstack-kvmagent is running (pid {pid}) at {config.local_url}")


if __name__ == "__main__":
    main()
