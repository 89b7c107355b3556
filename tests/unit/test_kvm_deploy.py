"""The KVM agent deployer without hosts: checksums, package cache, inventory, errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from plugins.kvm import deploy
from plugins.kvm.deploy import (AGENTS_DIR, ANSIBLE_DIR, AgentDeployer, AgentPackage, DeployError,
                                DeployTarget, Wheelhouse, error_from_events, extra_vars,
                                inventory_text, package_requirements, source_checksum, source_files)


@pytest.fixture
def agent_src(tmp_path) -> Path:
    """A copy of the agent's source files."""
    src = tmp_path / "agents"
    for rel in source_files(AGENTS_DIR):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(AGENTS_DIR / rel, src / rel)
    return src


# -- checksum -------------------------------------------------------------------
def test_checksum_is_stable_across_copies_and_build_droppings(agent_src):
    before = source_checksum(agent_src)
    assert before == source_checksum(AGENTS_DIR)
    assert len(before) == 64
    # What builds and test runs leave behind is not part of the agent.
    (agent_src / "build" / "lib").mkdir(parents=True)
    (agent_src / "build" / "lib" / "x.py").write_text("x = 1\n")
    (agent_src / "zstack_kvmagent.egg-info").mkdir()
    (agent_src / "zstack_kvmagent.egg-info" / "PKG-INFO").write_text("junk")
    (agent_src / "kvm" / "__pycache__").mkdir(exist_ok=True)
    (agent_src / "kvm" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (agent_src / "kvm" / "stray.pyc").write_bytes(b"\0")
    (agent_src / ".pytest_cache").mkdir()
    assert source_checksum(agent_src) == before


def test_checksum_changes_with_content_names_and_files(agent_src):
    base = source_checksum(agent_src)
    init = agent_src / "kvm" / "__init__.py"
    original = init.read_bytes()

    init.write_bytes(original + b"# changed\n")
    edited = source_checksum(agent_src)
    assert edited != base

    init.write_bytes(original)
    assert source_checksum(agent_src) == base

    (agent_src / "kvm" / "extra.py").write_text("")
    added = source_checksum(agent_src)
    assert added not in (base, edited)

    (agent_src / "kvm" / "extra.py").rename(agent_src / "kvm" / "other.py")
    assert source_checksum(agent_src) not in (base, edited, added)


def test_source_files_are_relative_sorted_and_clean(agent_src):
    (agent_src / "kvm" / "__pycache__").mkdir(exist_ok=True)
    (agent_src / "kvm" / "__pycache__" / "a.pyc").write_bytes(b"")
    files = source_files(agent_src)
    assert files == sorted(files)
    assert "pyproject.toml" in files and "kvm/__init__.py" in files
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)


# -- the agent's distribution -----------------------------------------------------
def test_pyproject_lists_every_agent_package():
    """The package list is by hand (see agents/pyproject.toml): it must not miss one."""
    config = tomllib.loads((AGENTS_DIR / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {"agents" + ("." + ".".join(p.parent.relative_to(AGENTS_DIR).parts) if p.parent != AGENTS_DIR else "")
             for p in AGENTS_DIR.rglob("__init__.py") if "build" not in p.parts}
    assert found <= listed
    assert config["project"]["scripts"]["zstack-kvmagent"] == "agents.kvm.cli:main"


def test_requirements_with_and_without_libvirt(agent_src):
    base = package_requirements(agent_src)
    assert any(r.startswith("falcon") for r in base)
    assert any(r.startswith("gunicorn") for r in base)
    assert not any(r.startswith("libvirt-python") for r in base)
    assert any(r.startswith("libvirt-python") for r in package_requirements(agent_src, ["libvirt"]))
    with pytest.raises(DeployError):
        package_requirements(agent_src, ["nope"])


# -- the package cache ----------------------------------------------------------
class CountingPackage(AgentPackage):
    """An AgentPackage whose pip is a stub writing fake wheels."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.builds: list[tuple] = []

    def _pip_wheel(self, target, *args):
        self.builds.append(args)
        target.mkdir()
        if "--no-deps" in args:
            content = Path(args[-1], "kvm", "__init__.py").read_bytes()
            (target / "zstack_kvmagent-0.1.0-py3-none-any.whl").write_bytes(content)
        else:
            for req in args:
                (target / f"{req.split('>')[0].split('<')[0]}-1.0-py3-none-any.whl").write_text(req)


def test_wheelhouse_is_built_once_per_checksum(tmp_path, agent_src):
    package = CountingPackage(tmp_path / "cache", source_dir=agent_src)
    first = package.wheelhouse()
    assert isinstance(first, Wheelhouse)
    assert first.checksum == source_checksum(agent_src) == package.checksum
    assert first.wheel == "zstack_kvmagent-0.1.0-py3-none-any.whl"
    names = {p.name for p in first.path.iterdir()}
    assert first.wheel in names and any(n.startswith("falcon") for n in names)
    import tarfile
    with tarfile.open(first.archive) as tar:
        assert sorted(tar.getnames()) == sorted(names)
    assert len(package.builds) == 2  # the agent, its dependencies

    assert package.wheelhouse() == first
    assert len(package.builds) == 2  # cached

    (agent_src / "kvm" / "__init__.py").write_text("# new\n")
    second = package.wheelhouse()
    assert second.checksum != first.checksum and second.path != first.path
    assert len(package.builds) == 3  # only the agent again; dependencies are cached

    with_libvirt = package.wheelhouse(["libvirt"])
    assert with_libvirt.checksum == second.checksum
    assert any(p.name.startswith("libvirt-python") for p in with_libvirt.path.iterdir())
    # The source tree stays clean: builds happen on a snapshot.
    assert not (agent_src / "build").exists()


def test_old_builds_are_pruned(tmp_path, agent_src):
    package = CountingPackage(tmp_path / "cache", source_dir=agent_src, keep=1)
    sums = []
    for i in range(3):
        (agent_src / "kvm" / "__init__.py").write_text(f"# {i}\n")
        sums.append(package.wheelhouse().checksum)
    kept = {p.name for p in (tmp_path / "cache").glob("agent-*")}
    assert kept == {f"agent-{sums[1]}", f"agent-{sums[2]}"}


# -- inventory and extra vars --------------------------------------------------------
def _load_inventory(text: str) -> dict:
    from ansible.parsing.dataloader import DataLoader

    return DataLoader().load(text)["all"]["hosts"]


def test_inventory_with_password():
    target = DeployTarget("10.0.0.5", "root", password="p{{ not templated }}'\"", ssh_port=2222)
    hosts = _load_inventory(inventory_text(target))
    host = hosts["10.0.0.5"]
    assert host["ansible_host"] == "10.0.0.5"
    assert host["ansible_port"] == 2222
    assert host["ansible_user"] == "root"
    assert host["ansible_password"] == "p{{ not templated }}'\""
    assert type(host["ansible_password"]).__name__ == "AnsibleUnsafeText"
    assert host["ansible_python_interpreter"] == "/usr/bin/python3"
    assert "ansible_ssh_private_key_file" not in host


def test_inventory_with_key_has_no_password():
    target = DeployTarget("10.0.0.6", "admin", password="ignored", private_key_file="/k/id")
    host = _load_inventory(inventory_text(target))["10.0.0.6"]
    assert host["ansible_ssh_private_key_file"] == "/k/id"
    assert "ansible_password" not in host


def test_extra_vars_keep_the_package_authoritative(tmp_path):
    house = Wheelhouse(path=tmp_path / "wh", wheel="a.whl", checksum="c" * 64, archive=tmp_path / "wh.tar")
    target = DeployTarget("10.0.0.5", "root", extra_vars={"kvmagent_driver": "simulated",
                                                          "kvmagent_checksum": "forged"})
    ev = extra_vars(target, house)
    assert ev["kvmagent_driver"] == "simulated"
    assert ev["kvmagent_checksum"] == "c" * 64
    assert ev["kvmagent_wheel"] == "a.whl"
    assert ev["kvmagent_wheelhouse_archive"] == str(tmp_path / "wh.tar")


def test_driver_from_extra_vars_host_vars_or_default(tmp_path):
    (tmp_path / "10.0.0.7.yml").write_text('kvmagent_driver: "simulated"\n')
    deployer = AgentDeployer(tmp_path / "var", host_vars_dir=tmp_path)
    assert deployer._driver(DeployTarget("10.0.0.7", "root")) == "simulated"
    assert deployer._driver(DeployTarget("10.0.0.8", "root")) == "libvirt"
    assert deployer._driver(DeployTarget("10.0.0.7", "root", extra_vars={"kvmagent_driver": "libvirt"})) == "libvirt"


def test_host_vars_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSTACK_ANSIBLE_HOST_VARS_DIR", str(tmp_path))
    assert AgentDeployer(tmp_path / "var").host_vars_dir == tmp_path
    monkeypatch.delenv("ZSTACK_ANSIBLE_HOST_VARS_DIR")
    assert AgentDeployer(tmp_path / "var").host_vars_dir is None


def test_inventory_dir_links_host_vars_and_is_private(tmp_path):
    deployer = AgentDeployer(tmp_path / "var", host_vars_dir=tmp_path)
    inv = deployer._write_inventory(tmp_path / "pdir", DeployTarget("10.0.0.5", "root", password="x"))
    assert (inv / "host_vars").resolve() == tmp_path.resolve()
    assert (inv / "hosts.yml").stat().st_mode & 0o077 == 0


# -- errors ----------------------------------------------------------------------
def _event(kind, task, res, **data):
    return {"event": kind, "event_data": {"task": task, "host": "10.0.0.5", "res": res, **data}}


def test_error_names_the_failed_task_and_its_message():
    log = "PLAY ...\n" + "noise\n" * 500
    events = [
        _event("runner_on_ok", "Create the agent's directories", {"changed": False}),
        _event("runner_on_failed", "Probe", {"msg": "ignored"}, ignore_errors=True),
        _event("runner_on_failed", "Install the agent package",
               {"msg": "non-zero return code", "rc": 1, "stderr": "ERROR: No matching distribution\n"}),
        _event("runner_on_failed", "Later", {"msg": "not the first"}),
    ]
    err = error_from_events(events, log)
    assert err.task == "Install the agent package"
    assert err.host == "10.0.0.5"
    assert "Install the agent package" in str(err)
    assert "non-zero return code" in str(err) and "No matching distribution" in str(err)
    assert "noise" not in str(err)
    assert err.log == log


def test_error_from_a_loop_and_from_an_unreachable_host():
    loop = _event("runner_on_failed", "Create the agent's directories", {
        "msg": "One or more items failed",
        "results": [{"failed": False}, {"failed": True, "msg": "Permission denied"}]})
    assert "Permission denied" in str(error_from_events([loop]))

    dark = _event("runner_on_unreachable", "Create the agent's directories", {
        "msg": "All items completed",
        "results": [{"unreachable": True, "msg": "Invalid/incorrect password"}]})
    err = error_from_events([dark])
    assert "cannot reach 10.0.0.5" in str(err) and "Invalid/incorrect password" in str(err)


def test_error_without_a_failed_task():
    assert "timed out" in str(error_from_events([], "", "timeout"))
    err = error_from_events([], "ERROR! the playbook could not be found\n", "failed")
    assert "the playbook could not be found" in str(err)


def test_password_login_without_sshpass_says_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(deploy.shutil, "which", lambda name: None)
    deployer = AgentDeployer(tmp_path / "var")
    with pytest.raises(DeployError, match="install it.*sshpass|sshpass.*install"):
        deployer.deploy_sync(DeployTarget("10.0.0.5", "root", password="x"))


def test_result_from_stats(tmp_path):
    house = Wheelhouse(path=tmp_path, wheel="a.whl", checksum="d" * 64, archive=tmp_path / "a.tar")
    stats = {"event": "playbook_on_stats", "event_data": {
        "changed": {"10.0.0.5": 3}, "artifact_data": {"kvmagent_installed": True, "kvmagent_started": "False"}}}
    runner = SimpleNamespace(status="successful", events=[stats], stdout=SimpleNamespace(read=lambda: "log"))
    result = AgentDeployer(tmp_path)._result(runner, house)
    assert (result.changed, result.installed, result.started) == (True, True, False)
    assert result.version == "d" * 64 and result.log == "log"

    failed = SimpleNamespace(status="failed", stdout=SimpleNamespace(read=lambda: "x"),
                             events=[_event("runner_on_failed", "Start the agent", {"msg": "boom"})])
    with pytest.raises(DeployError, match="Start the agent.*boom"):
        AgentDeployer(tmp_path)._result(failed, house)


# -- the playbook ------------------------------------------------------------------
def test_playbook_syntax():
    bin_dir = Path(sys.executable).parent
    proc = subprocess.run(
        [str(bin_dir / "ansible-playbook"), "--syntax-check", "-i", "localhost,", str(ANSIBLE_DIR / "kvm.yml")],
        capture_output=True, text=True, cwd=ANSIBLE_DIR, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
