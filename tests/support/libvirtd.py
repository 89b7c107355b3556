"""Run the system libvirtd (and virtlogd) for a test, optionally inside a network namespace.

There is no systemd here, so tests start the daemons themselves. libvirtd and
virtlogd keep their pid files and sockets in /run, so only one libvirtd can run
on the machine at a time: :meth:`Libvirtd.start` refuses when one already
runs, and :meth:`Libvirtd.stop` must always follow (use it as a context
manager). qemu processes outlive libvirtd, so ``stop`` destroys the running
domains first; persistent domain definitions (in /etc/libvirt/qemu) stay,
tests undefine their own.

    with Libvirtd("zs-host1"):
        ...  # qemu:///system answers; its qemus and taps live in zs-host1
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

LIBVIRTD_PID = "/run/libvirtd.pid"
VIRTLOGD_PID = "/run/virtlogd.pid"
URI = "qemu:///system"


class LibvirtdError(RuntimeError):
    """libvirtd could not be started or stopped."""


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie no longer counts: nobody may reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _read_pid(path: str) -> int | None:
    try:
        with open(path) as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return None
    return pid if pid > 0 and _alive(pid) else None


def _running(name: str) -> list[int]:
    """Pids of live processes whose command name is ``name``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() == name and _alive(int(entry)):
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def _netns_of(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return "?"


def _kill(pid: int, timeout: float) -> None:
    """SIGTERM, then SIGKILL at ``timeout``; returns once the process is gone."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.1)
    raise LibvirtdError(f"process {pid} survived SIGKILL")


class Libvirtd:
    """A system libvirtd + virtlogd started by this object, in ``netns`` (None: the root one)."""

    def __init__(self, netns: str | None, log_file: str | None = None, start_timeout: float = 30.0) -> None:
        self.netns = netns
        #: libvirtd's own log (warnings and errors), for when a domain will not start.
        self.log_file = log_file
        self.start_timeout = start_timeout
        self.uri = URI
        self._libvirtd_pid: int | None = None
        self._virtlogd_pid: int | None = None

    def _cmd(self, *args: str) -> list[str]:
        return (["ip", "netns", "exec", self.netns] if self.netns else []) + list(args)

    def _answers(self) -> bool:
        try:
            proc = subprocess.run(["virsh", "-c", self.uri, "version"], capture_output=True, timeout=10)
        except subprocess.TimeoutExpired:
            return False
        return proc.returncode == 0

    def start(self) -> "Libvirtd":
        others = _running("libvirtd") + _running("virtqemud")
        if others:
            where = ", ".join(f"pid {p} (netns {_netns_of(p)})" for p in others)
            raise LibvirtdError(f"a libvirtd already runs on this machine: {where}; "
                                "only one can run at a time (shared /run paths)")
        if self.netns and not os.path.exists(f"/run/netns/{self.netns}"):
            raise LibvirtdError(f"network namespace {self.netns} does not exist")
        try:
            # A virtlogd left by someone else serves us as well; we stop only ours.
            if _read_pid(VIRTLOGD_PID) is None:
                subprocess.run(self._cmd("virtlogd", "-d"), check=True, capture_output=True, timeout=30)
                self._virtlogd_pid = self._wait_pid(VIRTLOGD_PID, "virtlogd")
            env = dict(os.environ)
            if self.log_file:
                env["LIBVIRT_LOG_OUTPUTS"] = f"3:file:{self.log_file}"
            subprocess.run(self._cmd("libvirtd", "-d"), check=True, capture_output=True, timeout=30, env=env)
            self._libvirtd_pid = self._wait_pid(LIBVIRTD_PID, "libvirtd")
            deadline = time.monotonic() + self.start_timeout
            while not self._answers():
                if not _alive(self._libvirtd_pid):
                    raise LibvirtdError("libvirtd exited during start-up"
                                        + (f"; see {self.log_file}" if self.log_file else ""))
                if time.monotonic() > deadline:
                    raise LibvirtdError(f"libvirtd does not answer on {self.uri} "
                                        f"after {self.start_timeout:g}s")
                time.sleep(0.2)
        except subprocess.CalledProcessError as e:
            self.stop()
            raise LibvirtdError(f"{' '.join(e.cmd)} failed: {e.stderr.decode(errors='replace').strip()}") from e
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_pid(self, pid_file: str, name: str) -> int:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            pid = _read_pid(pid_file)
            if pid is not None:
                return pid
            time.sleep(0.1)
        raise LibvirtdError(f"{name} wrote no pid to {pid_file} in {self.start_timeout:g}s")

    def destroy_domains(self) -> None:
        """Stop every running domain (its qemu would outlive libvirtd)."""
        if self._libvirtd_pid is None or not self._answers():
            return
        proc = subprocess.run(["virsh", "-c", self.uri, "list", "--name", "--state-running",
                               "--state-paused", "--state-other"],
                              capture_output=True, text=True, timeout=30)
        for name in filter(None, (n.strip() for n in proc.stdout.splitlines())):
            subprocess.run(["virsh", "-c", self.uri, "destroy", name], capture_output=True, timeout=60)

    def stop(self) -> None:
        """Destroy running domains, then end the daemons this object started."""
        errors = []
        try:
            self.destroy_domains()
        except (OSError, subprocess.SubprocessError) as e:
            errors.append(f"destroying domains: {e}")
        for attr, pid_file in (("_libvirtd_pid", LIBVIRTD_PID), ("_virtlogd_pid", VIRTLOGD_PID)):
            pid = getattr(self, attr)
            if pid is None:
                continue
            try:
                _kill(pid, timeout=15)
                # A killed daemon leaves its pid file; a clean exit removes it.
                if _read_pid(pid_file) is None and os.path.exists(pid_file):
                    os.unlink(pid_file)
                setattr(self, attr, None)
            except (LibvirtdError, OSError) as e:
                errors.append(str(e))
        if errors:
            raise LibvirtdError("; ".join(errors))

    def __enter__(self) -> "Libvirtd":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
