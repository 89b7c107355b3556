"""Deploy ``zstack-kvmagent`` to KVM hosts: build its package, run Ansible.

* :class:`AgentPackage` turns the project's ``agents/`` directory into a
  *wheelhouse* (the agent's wheel plus its dependencies' wheels), built once
  per content: hosts need no index, they ``pip install --no-index``. Its
  :attr:`~AgentPackage.checksum` (sha256 over the agent's source files) is the
  agent's version: the playbook writes it into the agent's config, the agent
  reports it in ``/host/ping``, and the MN redeploys when the two differ.
* :class:`AgentDeployer` runs ``ansible/kvm.yml`` on one host through
  ansible-runner (in a thread) and reports what it did as a
  :class:`DeployResult`, or raises :class:`DeployError` naming the task that
  failed and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
#: The agent's source: the ``agents`` package, also its own distribution.
AGENTS_DIR = REPO / "agents"
ANSIBLE_DIR = REPO / "ansible"
PLAYBOOK = "kvm.yml"
DEFAULT_PYTHON = "/usr/bin/python3"

#: Never part of the package: build output, caches, editor droppings.
_SKIP_DIRS = {"__pycache__", "build", "dist", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
_SKIP_SUFFIXES = (".pyc", ".pyo", ".swp", "~", ".orig", ".rej")


class DeployError(Exception):
    """A deployment failed; the message says where and why (not the whole log)."""

    def __init__(self, message: str, *, task: str | None = None, host: str | None = None,
                 log: str = ""):
        super().__init__(message)
        #: The name of the Ansible task that failed, when one did.
        self.task = task
        self.host = host
        #: The run's whole output, for the MN's log.
        self.log = log


class PackageError(DeployError):
    """The agent's wheelhouse could not be built (pip failed)."""


# -- the package ---------------------------------------------------------------
def source_files(source_dir: Path) -> list[str]:
    """Relative paths (sorted, ``/``-separated) of the files that make the agent."""
    found = []
    for dirpath, dirnames, filenames in os.walk(source_dir):
        # Pruned in place so os.walk does not descend into them.
        dirnames[:] = [d for d in dirnames
                       if d not in _SKIP_DIRS and not d.startswith(".") and not d.endswith(".egg-info")]
        for name in filenames:
            if name.startswith(".") or name.endswith(_SKIP_SUFFIXES):
                continue
            found.append(os.path.relpath(os.path.join(dirpath, name), source_dir).replace(os.sep, "/"))
    return sorted(found)


def source_checksum(source_dir: Path) -> str:
    """sha256 over the agent's files: stable across builds and machines, new on any edit."""
    digest = hashlib.sha256()
    for rel in source_files(source_dir):
        data = (source_dir / rel).read_bytes()
        # Name and length framing: moving bytes between files changes the sum.
        digest.update(f"{rel}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def package_requirements(source_dir: Path, extras: Iterable[str] = ()) -> list[str]:
    """The agent's requirements (with those of ``extras``) from its pyproject.toml."""
    project = tomllib.loads((source_dir / "pyproject.toml").read_text())["project"]
    reqs = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise PackageError(f"the agent package has no extra {extra!r}")
        reqs += optional[extra]
    return sorted(set(reqs))


@dataclass(frozen=True)
class Wheelhouse:
    """A directory of wheels that installs the agent without an index."""

    path: Path
    #: File name of the agent's own wheel in ``path``.
    wheel: str
    checksum: str
    #: ``path``'s wheels as one tar file: what the playbook copies to hosts.
    archive: Path


class AgentPackage:
    """The agent's wheel and its dependencies' wheels, built once per content.

    ``cache_dir`` keeps every build: ``agent-<checksum>/`` (the agent's wheel),
    ``deps-<key>/`` (dependency wheels, keyed by the requirement list) and
    ``wheelhouse-<checksum>[-<extras>]/`` (links to both) and its ``.tar``
    (what hosts get).
    Dependency wheels are built by ``python`` (default: the MN's own), so
    hosts need the same Python minor version for compiled ones.
    """

    def __init__(self, cache_dir: Path, source_dir: Path = AGENTS_DIR, python: str = sys.executable,
                 keep: int = 5):
        self.cache_dir = Path(cache_dir)
        self.source_dir = Path(source_dir)
        self.python = python
        #: Builds of other checksums kept (a developer's MN makes one per edit).
        self.keep = keep

    @property
    def checksum(self) -> str:
        """The agent's version: :func:`source_checksum` of the source as it is now."""
        return source_checksum(self.source_dir)

    def wheelhouse(self, extras: Iterable[str] = ()) -> Wheelhouse:
        """The wheelhouse of the current source with ``extras``; built if not cached."""
        extras = tuple(sorted(set(extras)))
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with self._lock():
            with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix=".src-") as tmp:
                # Build from a snapshot: the checksum is then exactly what was built,
                # and setuptools' build/ and egg-info never land in the source tree.
                src = Path(tmp) / "agents"
                for rel in source_files(self.source_dir):
                    (src / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(self.source_dir / rel, src / rel)
                checksum = source_checksum(src)
                agent_dir = self._agent_wheel(src, checksum)
                deps_dir = self._dependency_wheels(package_requirements(src, extras))
            name = f"wheelhouse-{checksum}" + "".join(f"-{e}" for e in extras)
            house = self.cache_dir / name
            archive = self.cache_dir / f"{name}.tar"
            if not house.exists():
                staging = Path(tempfile.mkdtemp(dir=self.cache_dir, prefix=".house-"))
                for wheel in [*agent_dir.glob("*.whl"), *deps_dir.glob("*.whl")]:
                    _link_or_copy(wheel, staging / wheel.name)
                staging.rename(house)
            if not archive.exists():
                _write_tar(house, archive)
                self._prune(checksum)
            wheel = next(agent_dir.glob("*.whl")).name
            return Wheelhouse(path=house, wheel=wheel, checksum=checksum, archive=archive)

    @contextlib.contextmanager
    def _lock(self):
        # Deploys run in threads, possibly from several MNs sharing a var dir.
        with open(self.cache_dir / ".lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _prune(self, current: str) -> None:
        """Remove the builds of all but the ``keep`` newest other checksums."""
        builds: dict[str, list[Path]] = {}
        for path in self.cache_dir.glob("agent-*"):
            builds.setdefault(path.name[len("agent-"):], []).append(path)
        for path in self.cache_dir.glob("wheelhouse-*"):
            builds.setdefault(path.name[len("wheelhouse-"):][:64], []).append(path)
        builds.pop(current, None)
        by_age = sorted(builds, key=lambda c: max(p.stat().st_mtime for p in builds[c]), reverse=True)
        for checksum in by_age[self.keep:]:
            for path in builds[checksum]:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)

    def _agent_wheel(self, src: Path, checksum: str) -> Path:
        target = self.cache_dir / f"agent-{checksum}"
        if not target.exists():
            log.info("building the kvm agent wheel %s", checksum[:12])
            self._pip_wheel(target, "--no-deps", str(src))
        return target

    def _dependency_wheels(self, requirements: list[str]) -> Path:
        key = hashlib.sha256("\n".join([self.python, *requirements]).encode()).hexdigest()[:16]
        target = self.cache_dir / f"deps-{key}"
        if not target.exists():
            log.info("building wheels of the kvm agent's dependencies: %s", ", ".join(requirements))
            self._pip_wheel(target, *requirements)
        return target

    def _pip_wheel(self, target: Path, *args: str) -> None:
        """``pip wheel`` into a staging dir renamed to ``target`` once complete."""
        staging = Path(tempfile.mkdtemp(dir=self.cache_dir, prefix=".build-"))
        cmd = [self.python, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
               "--wheel-dir", str(staging), *args]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800,
                                  cwd=self.cache_dir)
            if proc.returncode != 0:
                tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
                raise PackageError(f"building the kvm agent package failed: {' '.join(cmd)}\n{tail}")
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _write_tar(directory: Path, archive: Path) -> None:
    """``directory``'s files as an uncompressed tar (wheels are zips already)."""
    staging = archive.with_name(f".{archive.name}.tmp")
    with tarfile.open(staging, "w") as tar:
        for path in sorted(directory.iterdir()):
            info = tar.gettarinfo(str(path), arcname=path.name)
            # Same bytes for the same wheels: the playbook's copy compares checksums.
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
            with open(path, "rb") as f:
                tar.addfile(info, f)
    staging.rename(archive)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


# -- the deployment -------------------------------------------------------------
@dataclass
class DeployTarget:
    """A host to deploy to, and how to log in (password, or key, as ``username``)."""

    management_ip: str
    username: str
    password: str | None = None
    ssh_port: int = 22
    private_key_file: str | None = None
    #: Ansible extra vars (``kvmagent_*``, see ansible/roles/kvmagent/defaults/main.yml);
    #: they override host_vars files.
    extra_vars: dict = field(default_factory=dict)


@dataclass
class DeployResult:
    """What a deployment did."""

    #: Any task changed something on the host.
    changed: bool
    #: The agent's package was installed or reinstalled.
    installed: bool
    #: The agent was started or restarted.
    started: bool
    log: str
    #: The agent version (package checksum) the host now runs.
    version: str = ""


def _yaml_str(value: Any, unsafe: bool = False) -> str:
    # JSON strings are YAML double-quoted scalars; !unsafe keeps Ansible from
    # templating a password that happens to contain "{{".
    return ("!unsafe " if unsafe else "") + json.dumps(str(value))


def inventory_text(target: DeployTarget, python: str = DEFAULT_PYTHON) -> str:
    """The YAML inventory of one host, named by its management IP (host_vars match it)."""
    host_vars = {
        "ansible_host": _yaml_str(target.management_ip),
        "ansible_port": str(int(target.ssh_port)),
        "ansible_user": _yaml_str(target.username),
        # Set rather than discovered: discovery costs a round trip and warns.
        "ansible_python_interpreter": _yaml_str(python),
    }
    if target.private_key_file:
        host_vars["ansible_ssh_private_key_file"] = _yaml_str(target.private_key_file)
    elif target.password is not None:
        host_vars["ansible_password"] = _yaml_str(target.password, unsafe=True)
    lines = ["all:", "  hosts:", f"    {json.dumps(target.management_ip)}:"]
    lines += [f"      {k}: {v}" for k, v in host_vars.items()]
    return "\n".join(lines) + "\n"


def extra_vars(target: DeployTarget, house: Wheelhouse) -> dict:
    """The playbook's extra vars: the caller's, then the package's (which must win)."""
    return {**target.extra_vars,
            "kvmagent_wheelhouse": str(house.path),
            "kvmagent_wheelhouse_archive": str(house.archive),
            "kvmagent_wheel": house.wheel,
            "kvmagent_checksum": house.checksum}


def _truthy(value: Any) -> bool:
    # set_stats values come back as booleans or as their strings.
    return value is True or str(value).strip().lower() in ("true", "yes", "1")


def _tail(text: str, lines: int = 10, chars: int = 2000) -> str:
    return "\n".join(str(text).strip().splitlines()[-lines:])[-chars:]


def _failure_message(res: dict) -> str:
    if isinstance(res.get("results"), list):  # a loop: the first failed item says why
        for item in res["results"]:
            if isinstance(item, dict) and (item.get("failed") or item.get("unreachable")):
                return _failure_message(item)
    msg = str(res.get("msg") or "").strip()
    detail = res.get("stderr") or res.get("module_stderr") or ""
    if not detail and res.get("rc") not in (None, 0):
        detail = res.get("stdout") or res.get("module_stdout") or ""
    detail = _tail(detail) if detail else ""
    if detail and detail not in msg:
        msg = f"{msg}: {detail}" if msg else detail
    return msg or "failed (no message)"


def error_from_events(events: Iterable[dict], log_text: str = "", status: str = "failed") -> DeployError:
    """A :class:`DeployError` for the first failed or unreachable task of a run."""
    for ev in events:
        kind = ev.get("event")
        data = ev.get("event_data") or {}
        if kind not in ("runner_on_failed", "runner_on_unreachable") or data.get("ignore_errors"):
            continue
        host = data.get("host") or data.get("remote_addr")
        task = data.get("task") or "?"
        res = data.get("res") or {}
        why = _failure_message(res)
        if kind == "runner_on_unreachable":
            return DeployError(f"cannot reach {host} over SSH (task '{task}'): {why}",
                               task=task, host=host, log=log_text)
        return DeployError(f"deploying the kvm agent to {host} failed at task '{task}': {why}",
                           task=task, host=host, log=log_text)
    if status == "timeout":
        return DeployError("deploying the kvm agent timed out", log=log_text)
    return DeployError(f"ansible-playbook {status}: {_tail(log_text) or '(no output)'}", log=log_text)


class AgentDeployer:
    """Installs, upgrades and (re)starts the agent on hosts with ``ansible/kvm.yml``.

    ``var_dir`` holds the wheelhouse cache (``kvmagent-package/``) and one
    ansible-runner private data dir per host (``ansible/kvm/<ip>/``, its last
    runs' artifacts kept). ``host_vars_dir`` (default: env
    ``ZSTACK_ANSIBLE_HOST_VARS_DIR``) is a directory of ``<ip>.yml`` files with
    per-host variables, e.g. the test bed's.
    """

    def __init__(self, var_dir: Path, host_vars_dir: Path | str | None = None,
                 package: AgentPackage | None = None, *, timeout: float = 1800,
                 keep_artifacts: int = 5):
        self.var_dir = Path(var_dir)
        host_vars_dir = host_vars_dir or os.environ.get("ZSTACK_ANSIBLE_HOST_VARS_DIR") or None
        self.host_vars_dir = Path(host_vars_dir) if host_vars_dir else None
        self.package = package or AgentPackage(self.var_dir / "kvmagent-package")
        self.timeout = timeout
        self.keep_artifacts = keep_artifacts
        # Thread locks, not asyncio ones: deploy_sync callers and any event loop share them.
        self._host_locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    async def deploy(self, target: DeployTarget) -> DeployResult:
        """Deploy to ``target`` (one run per host at a time); raises :class:`DeployError`."""
        return await asyncio.to_thread(self.deploy_sync, target)

    def deploy_sync(self, target: DeployTarget) -> DeployResult:
        """:meth:`deploy` for callers without an event loop (blocks)."""
        with self._locks_lock:
            lock = self._host_locks.setdefault(target.management_ip, threading.Lock())
        with lock:
            return self._deploy(target)

    def _deploy(self, target: DeployTarget) -> DeployResult:
        if target.password is not None and not target.private_key_file and not shutil.which("sshpass"):
            raise DeployError("logging in to a host with a password needs sshpass on the management "
                              "node: install it (apt-get install sshpass) or use a private key",
                              host=target.management_ip)
        house = self.package.wheelhouse(["libvirt"] if self._driver(target) == "libvirt" else [])
        pdir = self.var_dir / "ansible" / "kvm" / target.management_ip
        inventory = self._write_inventory(pdir, target)
        control_dir = tempfile.mkdtemp(prefix="zsa-")  # short: ssh socket paths are limited
        try:
            runner = self._run(pdir, inventory, target, house, control_dir)
        except ImportError as exc:
            raise DeployError(f"the management node lacks ansible-runner: {exc}",
                              host=target.management_ip) from exc
        except Exception as exc:  # ansible-runner's own errors (config, spawn)
            raise DeployError(f"could not run ansible-playbook for {target.management_ip}: {exc}",
                              host=target.management_ip) from exc
        finally:
            (inventory / "hosts.yml").unlink(missing_ok=True)  # it may hold the password
            _close_ssh_masters(control_dir)
        return self._result(runner, house)

    def _driver(self, target: DeployTarget) -> str:
        """The host's agent driver: extra vars, else its host_vars file, else the role default."""
        if "kvmagent_driver" in target.extra_vars:
            return str(target.extra_vars["kvmagent_driver"])
        if self.host_vars_dir:
            for name in (f"{target.management_ip}.yml", f"{target.management_ip}.yaml"):
                path = self.host_vars_dir / name
                if path.exists():
                    import yaml  # ansible-core's own dependency

                    data = yaml.safe_load(path.read_text()) or {}
                    if "kvmagent_driver" in data:
                        return str(data["kvmagent_driver"])
        return "libvirt"

    def _write_inventory(self, pdir: Path, target: DeployTarget) -> Path:
        inventory = pdir / "inventory"
        inventory.mkdir(parents=True, exist_ok=True)
        hosts = inventory / "hosts.yml"
        hosts.unlink(missing_ok=True)
        fd = os.open(hosts, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(inventory_text(target))
        # Ansible reads host_vars/ next to the inventory.
        link = inventory / "host_vars"
        if link.is_symlink() or link.exists():
            if link.is_symlink():
                link.unlink()
            else:
                shutil.rmtree(link)
        if self.host_vars_dir:
            link.symlink_to(self.host_vars_dir.resolve(), target_is_directory=True)
        return inventory

    def _envvars(self, pdir: Path, control_dir: str) -> dict:
        bin_dir = str(Path(sys.executable).parent)  # ansible-playbook lives beside our Python
        return {
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_NOCOLOR": "True",
            "ANSIBLE_DEPRECATION_WARNINGS": "False",
            "ANSIBLE_TIMEOUT": "20",
            "ANSIBLE_LOCAL_TEMP": str(pdir / "tmp"),
            # One SSH connection per run, closed at its end (see _close_ssh_masters):
            # a master outliving the run could hang on a host that has gone away.
            "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=60s "
                                "-o UserKnownHostsFile=/dev/null -o ServerAliveInterval=10 "
                                "-o LogLevel=ERROR",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": control_dir,
        }

    def _run(self, pdir: Path, inventory: Path, target: DeployTarget, house: Wheelhouse,
             control_dir: str):
        import ansible_runner  # heavy; only the MN that deploys needs it

        # ansible-runner prefers env/ files left by an earlier run over its
        # arguments (an old checksum!): never write them, drop any old ones.
        shutil.rmtree(pdir / "env", ignore_errors=True)
        return ansible_runner.run(
            private_data_dir=str(pdir),
            project_dir=str(ANSIBLE_DIR),
            playbook=PLAYBOOK,
            inventory=str(inventory),
            extravars=extra_vars(target, house),
            envvars=self._envvars(pdir, control_dir),
            quiet=True,
            timeout=self.timeout,
            rotate_artifacts=self.keep_artifacts,
            suppress_env_files=True,
        )

    def _result(self, runner, house: Wheelhouse) -> DeployResult:
        events = list(runner.events)
        try:
            log_text = runner.stdout.read()
        except (OSError, AttributeError):
            log_text = ""
        if runner.status != "successful":
            raise error_from_events(events, log_text, runner.status)
        stats = next((ev.get("event_data") or {} for ev in reversed(events)
                      if ev.get("event") == "playbook_on_stats"), {})
        custom = stats.get("artifact_data") or {}
        return DeployResult(
            changed=any(n > 0 for n in (stats.get("changed") or {}).values()),
            installed=_truthy(custom.get("kvmagent_installed")),
            started=_truthy(custom.get("kvmagent_started")),
            log=log_text,
            version=house.checksum,
        )


def _close_ssh_masters(control_dir: str) -> None:
    """End the run's SSH master connections and remove their directory."""
    try:
        sockets = list(Path(control_dir).iterdir())
    except OSError:
        return
    for sock in sockets:
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "unused"],
                       capture_output=True, timeout=10)
    shutil.rmtree(control_dir, ignore_errors=True)
