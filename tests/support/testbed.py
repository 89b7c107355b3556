"""A test bed of KVM "hosts" made of network namespaces on this machine.

Each host is a network namespace ``zstb-h<i>`` joined to the bridge ``zstb0``
(10.250.0.1, the management node's address as the hosts see it) by a veth
pair, with its own sshd on ``10.250.0.(10+i):22`` and a dummy ``data0``
interface (a veth end on kernels without the dummy driver) for the L2 networks
the agent builds bridges on. The hosts share
this machine's file system, so each gets its own directories under the test
bed root, and its deployment variables as an Ansible ``host_vars`` file.

Command line (``make testbed`` / ``make testbed-clean`` call it)::

    python -m tests.support.testbed up --hosts 2 [--libvirt-host 1]
    python -m tests.support.testbed status
    python -m tests.support.testbed down

From tests: ``with Testbed(2) as hosts: ...`` or the session fixtures
:func:`testbed` and :func:`testbed_hosts` (import both into a ``conftest.py``).

Everything needs root (namespaces, links, sshd on port 22, the root password).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest

DEFAULT_ROOT = Path("/var/lib/zstack-testbed")
BRIDGE = "zstb0"
SUBNET = "10.250.0"
PREFIX = 24
NETNS_PREFIX = "zstb-h"
DEFAULT_PASSWORD = "zstack-testbed"
SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
#: The marker that keeps ``down`` to namespaces this module made.
_NETNS_RE = re.compile(rf"^{NETNS_PREFIX}(\d+)$")


def testbed_password() -> str:
    """Root password of the test hosts (env ``ZSTACK_TESTBED_PASSWORD``)."""
    return os.environ.get("ZSTACK_TESTBED_PASSWORD", DEFAULT_PASSWORD)


def _run(*args: str, check: bool = True, netns: str | None = None,
         timeout: float = 30) -> subprocess.CompletedProcess:
    cmd = (["ip", "netns", "exec", netns] if netns else []) + list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise TestbedError(f"{' '.join(cmd)} failed ({proc.returncode}): "
                           f"{(proc.stderr or proc.stdout).strip()}")
    return proc


def _link_exists(name: str, netns: str | None = None) -> bool:
    return _run("ip", "link", "show", name, check=False, netns=netns).returncode == 0


def _netns_list() -> list[str]:
    out = _run("ip", "netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is not serving anything.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _port_open(ip: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


class TestbedError(RuntimeError):
    """The test bed could not be set up or torn down."""

    __test__ = False  # not a pytest test class despite the name


@dataclass
class TestHost:
    """One namespace host: how to reach it over SSH and its deployment variables."""

    __test__ = False

    name: str
    netns: str
    ip: str
    ssh_port: int
    username: str
    password: str
    key_file: str
    host_vars: dict = field(default_factory=dict)

    def exec(self, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a command inside the host's namespace (not over SSH)."""
        return _run(*args, check=check, netns=self.netns, timeout=timeout)


class Testbed:
    """Namespace hosts ``h1..h<hosts>`` with sshd, ready for Ansible deployments.

    ``up()`` is idempotent (it repairs whatever is missing) and returns the
    hosts; ``down()`` removes every namespace, link and process the test bed
    made, also after a partial ``up``, and restores the root password.
    """

    __test__ = False

    mn_ip = f"{SUBNET}.1"

    def __init__(self, hosts: int, libvirt_host: int | None = None, root: Path = DEFAULT_ROOT):
        if hosts < 1 or hosts > 200:
            raise ValueError("hosts must be 1..200")
        if libvirt_host is not None and not 1 <= libvirt_host <= hosts:
            raise ValueError(f"libvirt_host must be one of 1..{hosts}")
        self.hosts = hosts
        self.libvirt_host = libvirt_host
        self.root = Path(root)
        self.password = testbed_password()
        #: The libvirtd this object started (None: none, or another process's).
        self._libvirtd = None

    # -- layout -----------------------------------------------------------
    @property
    def host_vars_dir(self) -> Path:
        return self.root / "host_vars"

    @property
    def key_file(self) -> Path:
        return self.root / "ssh" / "id_ed25519"

    @property
    def _authorized_keys(self) -> Path:
        return self.root / "ssh" / "authorized_keys"

    @property
    def _state_file(self) -> Path:
        return self.root / "testbed.json"

    @staticmethod
    def netns(i: int) -> str:
        return f"{NETNS_PREFIX}{i}"

    @staticmethod
    def ip(i: int) -> str:
        return f"{SUBNET}.{10 + i}"

    def host_dir(self, i: int) -> Path:
        return self.root / f"h{i}"

    def host_vars(self, i: int) -> dict:
        """What the playbook needs to know about host ``i`` beyond how to log in."""
        hdir = self.host_dir(i)
        return {
            "kvmagent_install_dir": str(hdir / "kvmagent"),
            "kvmagent_state_dir": str(hdir / "state"),
            "kvmagent_driver": "libvirt" if i == self.libvirt_host else "simulated",
            # No systemd and no apt inside a namespace: the agent runs as a plain process.
            "kvmagent_service_manager": "process",
            "kvmagent_install_system_packages": False,
            "kvmagent_bind_ip": self.ip(i),
            "kvmagent_physical_interface": "data0",
        }

    def test_hosts(self) -> list[TestHost]:
        return [TestHost(name=f"h{i}", netns=self.netns(i), ip=self.ip(i), ssh_port=22,
                         username="root", password=self.password, key_file=str(self.key_file),
                         host_vars=self.host_vars(i))
                for i in range(1, self.hosts + 1)]

    # -- up ---------------------------------------------------------------
    def up(self) -> list[TestHost]:
        """Create (or repair) the bridge, hosts, sshds and libvirtd; return the hosts."""
        if os.geteuid() != 0:
            raise TestbedError("the test bed needs root")
        self.root.mkdir(parents=True, exist_ok=True)
        # sshd's StrictModes and the agents' users walk this path: keep it traversable.
        self.root.chmod(0o755)
        self._state_file.write_text(json.dumps(
            {"hosts": self.hosts, "libvirt_host": self.libvirt_host}))
        self._ensure_ssh_key()
        self._ensure_root_password()
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        self._ensure_bridge()
        self.host_vars_dir.mkdir(exist_ok=True)
        for i in range(1, self.hosts + 1):
            self._ensure_host(i)
        if self.libvirt_host is not None:
            self._ensure_libvirtd(self.libvirt_host)
        for i in range(1, self.hosts + 1):
            self._wait_ssh(i)
        return self.test_hosts()

    def _ensure_ssh_key(self) -> None:
        (self.root / "ssh").mkdir(mode=0o755, exist_ok=True)
        if not self.key_file.exists():
            self.key_file.with_suffix(".pub").unlink(missing_ok=True)
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "zstack-testbed",
                 "-f", str(self.key_file))
        pub = self.key_file.with_suffix(".pub").read_text()
        if not self._authorized_keys.exists() or self._authorized_keys.read_text() != pub:
            self._authorized_keys.write_text(pub)
        self._authorized_keys.chmod(0o644)

    def _ensure_root_password(self) -> None:
        """Give root the test bed password, remembering the old hash for ``down``."""
        current = _shadow_hash("root")
        saved = self.root / "root-password.orig"
        if not saved.exists():
            saved.touch(mode=0o600)
            saved.write_text(current)
        if _password_matches(self.password, current):
            return
        _run_input("chpasswd", input=f"root:{self.password}\n")

    def _ensure_bridge(self) -> None:
        if not _link_exists(BRIDGE):
            _run("ip", "link", "add", BRIDGE, "type", "bridge")
        addr = f"{self.mn_ip}/{PREFIX}"
        if addr not in _run("ip", "-o", "addr", "show", "dev", BRIDGE).stdout:
            _run("ip", "addr", "add", addr, "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")

    def _ensure_host(self, i: int) -> None:
        ns, ip = self.netns(i), self.ip(i)
        veth = f"{ns}v"
        if ns not in _netns_list():
            _run("ip", "netns", "add", ns)
        if not _link_exists(veth):
            # A half-made pair leaves eth0 behind in the namespace; start clean.
            if _link_exists("eth0", ns):
                _run("ip", "link", "del", "eth0", netns=ns)
            _run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _run("ip", "link", "set", veth, "master", BRIDGE)
        _run("ip", "link", "set", veth, "up")
        _run("ip", "link", "set", "lo", "up", netns=ns)
        addr = f"{ip}/{PREFIX}"
        if addr not in _run("ip", "-o", "addr", "show", "dev", "eth0", netns=ns).stdout:
            _run("ip", "addr", "add", addr, "dev", "eth0", netns=ns)
        _run("ip", "link", "set", "eth0", "up", netns=ns)
        if not _link_exists("data0", ns):
            made = _run("ip", "link", "add", "data0", "type", "dummy", netns=ns, check=False)
            if made.returncode != 0:
                # Kernels without the dummy driver: one end of a veth pair whose
                # other end (data0p) also stays in the namespace does the same job.
                _run("ip", "link", "add", "data0", "type", "veth", "peer", "name", "data0p",
                     netns=ns)
        for link in ("data0", "data0p"):
            if link == "data0" or _link_exists(link, ns):
                _run("ip", "link", "set", link, "up", netns=ns)

        hdir = self.host_dir(i)
        hdir.mkdir(mode=0o755, exist_ok=True)
        self._write_host_vars(i)
        self._ensure_sshd(i)

    def _write_host_vars(self, i: int) -> None:
        # JSON is YAML: no YAML writer needed, and the values are plain scalars.
        lines = [f"{k}: {json.dumps(v)}" for k, v in self.host_vars(i).items()]
        text = "# Written by tests/support/testbed.py\n" + "\n".join(lines) + "\n"
        path = self.host_vars_dir / f"{self.ip(i)}.yml"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)

    def _sshd_config(self, i: int) -> str:
        hdir = self.host_dir(i)
        return "\n".join([
            "# Written by tests/support/testbed.py",
            f"ListenAddress {self.ip(i)}:22",
            f"HostKey {hdir / 'ssh_host_ed25519_key'}",
            f"PidFile {hdir / 'sshd.pid'}",
            "PermitRootLogin yes",
            "PasswordAuthentication yes",
            "PubkeyAuthentication yes",
            "KbdInteractiveAuthentication no",
            # The test bed key only: the machine's own root keys stay out of it.
            f"AuthorizedKeysFile {self._authorized_keys}",
            "UsePAM no",
            "UseDNS no",
            "PrintMotd no",
            "MaxStartups 100:30:200",
            "MaxSessions 50",
            f"Subsystem sftp {SFTP_SERVER}",
            "",
        ])

    def _sshd_pid(self, i: int) -> int | None:
        try:
            pid = int((self.host_dir(i) / "sshd.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def _ensure_sshd(self, i: int) -> None:
        hdir = self.host_dir(i)
        key = hdir / "ssh_host_ed25519_key"
        if not key.exists():
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
        config = hdir / "sshd_config"
        text = self._sshd_config(i)
        changed = not config.exists() or config.read_text() != text
        if changed:
            config.write_text(text)
        pid = self._sshd_pid(i)
        if pid and changed:
            os.kill(pid, signal.SIGHUP)  # sshd re-reads its config on HUP
        if pid:
            return
        _run(SSHD, "-t", "-f", str(config))  # a config error is clearer here than in a log
        _run(SSHD, "-f", str(config), "-E", str(hdir / "sshd.log"), netns=self.netns(i))

    def _wait_ssh(self, i: int, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not _port_open(self.ip(i), 22):
            if time.monotonic() > deadline:
                log = self.host_dir(i) / "sshd.log"
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise TestbedError(f"sshd of h{i} does not answer on {self.ip(i)}:22\n{tail}")
            time.sleep(0.1)

    def _ensure_libvirtd(self, i: int) -> None:
        ns = self.netns(i)
        if self._libvirtd is not None or _netns_runs(ns, "libvirtd"):
            return  # an earlier up started it (maybe in another process)
        # Imported late: only a libvirt host needs it, and it is another module's job.
        from tests.support.libvirtd import Libvirtd

        self._libvirtd = Libvirtd(ns, log_file=str(self.host_dir(i) / "libvirtd.log")).start()

    # -- down -------------------------------------------------------------
    def down(self, purge: bool = True) -> None:
        """Remove everything ``up`` made; ``purge`` also deletes the test bed directory."""
        errors: list[str] = []
        if self._libvirtd is not None:
            try:
                self._libvirtd.stop()  # destroys its domains first
            except Exception as exc:  # the namespace kill below still ends it
                errors.append(f"libvirtd: {exc}")
            self._libvirtd = None
        # A libvirtd another process started (`up --libvirt-host` from the command
        # line) lives in its host's namespace: the kill below ends it with its qemus.
        namespaces = [ns for ns in _netns_list() if _NETNS_RE.match(ns)]
        for ns in namespaces:
            _kill_netns_processes(ns)
        for ns in namespaces:
            proc = _run("ip", "netns", "del", ns, check=False)
            if proc.returncode != 0:
                errors.append(proc.stderr.strip())
        # Deleting a namespace deletes its eth0 and so the veth; these are leftovers.
        out = _run("ip", "-o", "link", "show", check=False).stdout
        for name in re.findall(rf"^\d+: ({NETNS_PREFIX}\d+v)[@:]", out, re.M):
            _run("ip", "link", "del", name, check=False)
        if _link_exists(BRIDGE):
            _run("ip", "link", "del", BRIDGE, check=False)
        self._restore_root_password()
        if purge and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)
        if errors:
            raise TestbedError("; ".join(errors))

    def _read_state(self) -> dict:
        try:
            return json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _restore_root_password(self) -> None:
        saved = self.root / "root-password.orig"
        if not saved.exists():
            return
        old = saved.read_text().strip()
        if old and _shadow_hash("root") != old:
            _run("usermod", "-p", old, "root")
        saved.unlink()

    def status(self) -> dict:
        """What is up right now: namespaces and whether each sshd answers."""
        found = {}
        for ns in sorted(_netns_list()):
            m = _NETNS_RE.match(ns)
            if m:
                i = int(m.group(1))
                found[ns] = {"ip": self.ip(i), "ssh": _port_open(self.ip(i), 22)}
        return {"bridge": _link_exists(BRIDGE), "hosts": found, "up_with": self._read_state()}

    # -- context manager --------------------------------------------------
    def __enter__(self) -> list[TestHost]:
        try:
            return self.up()
        except BaseException:
            self.down()
            raise

    def __exit__(self, *exc) -> None:
        self.down()


def _shadow_hash(user: str) -> str:
    for line in Path("/etc/shadow").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == user:
            return parts[1]
    raise TestbedError(f"no {user} in /etc/shadow")


def _password_matches(password: str, hashed: str) -> bool:
    if not hashed.startswith("$"):
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
        return crypt.crypt(password, hashed) == hashed
    except Exception:  # no crypt module or an unknown scheme: just set it again
        return False


def _run_input(*args: str, input: str) -> None:
    proc = subprocess.run(list(args), input=input, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise TestbedError(f"{args[0]} failed: {proc.stderr.strip()}")


def _netns_runs(ns: str, comm: str) -> bool:
    """Whether a process named ``comm`` runs in namespace ``ns``."""
    out = _run("ip", "netns", "pids", ns, check=False).stdout
    for pid in out.split():
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == comm and _pid_alive(int(pid)):
                return True
        except OSError:
            continue
    return False


def _kill_netns_processes(ns: str, grace: float = 5.0) -> None:
    """End every process living in namespace ``ns``: TERM, then KILL after ``grace``."""
    def pids() -> list[int]:
        out = _run("ip", "netns", "pids", ns, check=False).stdout
        return [int(p) for p in out.split() if p.isdigit() and int(p) != os.getpid()]

    for pid in pids():
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while (left := [p for p in pids() if _pid_alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# -- pytest ---------------------------------------------------------------
def testbed_available() -> str | None:
    """Why the test bed cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "the test bed needs root"
    for tool in ("ip", SSHD, "ssh-keygen", "chpasswd"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    return None


def require_testbed() -> None:
    """Fail (not skip) when the test bed cannot run: e2e tests are part of the
    suite. ``ZSTACK_E2E_SKIP=1`` turns the failure into a skip, for machines
    that cannot make namespaces."""
    reason = testbed_available()
    if reason:
        if os.environ.get("ZSTACK_E2E_SKIP") == "1":
            pytest.skip(reason)
        pytest.fail(f"e2e tests need the test bed: {reason} (ZSTACK_E2E_SKIP=1 skips them)")


@pytest.fixture(scope="module")
def testbed():
    """Module fixture: the :class:`Testbed` (already up); ``testbed.test_hosts()`` lists hosts.
    Per module, because only one libvirtd can run on the machine and other
    modules start their own.

    Use it from a ``conftest.py`` with ``from tests.support.testbed import testbed``.
    Sized by env ``ZSTACK_TESTBED_HOSTS`` (default 2) and
    ``ZSTACK_TESTBED_LIBVIRT_HOST`` (unset: every host simulated); torn down at
    the end of the module unless ``ZSTACK_TESTBED_KEEP=1``.
    """
    require_testbed()
    libvirt = os.environ.get("ZSTACK_TESTBED_LIBVIRT_HOST")
    bed = Testbed(int(os.environ.get("ZSTACK_TESTBED_HOSTS", "2")),
                  libvirt_host=int(libvirt) if libvirt else None)
    try:
        bed.up()
        yield bed
    finally:
        if os.environ.get("ZSTACK_TESTBED_KEEP") != "1":
            bed.down()


@pytest.fixture(scope="module")
def testbed_hosts(testbed) -> list[TestHost]:
    """Module fixture: the :class:`TestHost` list of the :func:`testbed` fixture."""
    return testbed.test_hosts()


# -- command line -----------------------------------------------------------
@click.group()
@click.option("--root", type=click.Path(path_type=Path), default=DEFAULT_ROOT, show_default=True,
              help="Directory for keys, sshd configs, host_vars and the hosts' files.")
@click.pass_context
def cli(ctx: click.Context, root: Path) -> None:
    """Namespace hosts for deploying and testing the KVM agent."""
    ctx.obj = root


@cli.command()
@click.option("--hosts", type=click.IntRange(1, 200), default=2, show_default=True)
@click.option("--libvirt-host", type=int, default=None,
              help="Run libvirtd in this host's namespace and deploy the libvirt driver there.")
@click.pass_obj
def up(root: Path, hosts: int, libvirt_host: int | None) -> None:
    """Create or repair the test bed."""
    started = time.monotonic()
    try:
        test_hosts = Testbed(hosts, libvirt_host, root).up()
    except (TestbedError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    for h in test_hosts:
        click.echo(f"{h.name}  netns={h.netns}  ssh {h.username}@{h.ip}:{h.ssh_port}  "
                   f"driver={h.host_vars['kvmagent_driver']}")
    click.echo(f"password: {test_hosts[0].password}   key: {test_hosts[0].key_file}")
    click.echo(f"host_vars: {root / 'host_vars'}  (export ZSTACK_ANSIBLE_HOST_VARS_DIR=...)")
    click.echo(f"up in {time.monotonic() - started:.1f}s")


@cli.command()
@click.option("--keep-files", is_flag=True, help="Keep the test bed directory (keys, installs).")
@click.pass_obj
def down(root: Path, keep_files: bool) -> None:
    """Remove the test bed: processes, namespaces, links, files."""
    try:
        Testbed(1, root=root).down(purge=not keep_files)
    except TestbedError as exc:
        raise click.ClickException(str(exc)) from exc


@cli.command()
@click.pass_obj
def status(root: Path) -> None:
    """Show the namespaces and whether their sshd answers."""
    click.echo(json.dumps(Testbed(1, root=root).status(), indent=2))


if __name__ == "__main__":
    sys.exit(cli())
