"""Deploy the real agent over SSH into namespace hosts, upgrade it, restart it.

Needs root (the test bed); the first deploy builds wheels from PyPI in the
root namespace.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest

from plugins.kvm.deploy import (AGENTS_DIR, AgentDeployer, AgentPackage, DeployError, DeployTarget,
                                source_files)
from tests.support.testbed import testbed  # noqa: F401  (session fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


def copy_agent_source(dst: Path) -> Path:
    for rel in source_files(AGENTS_DIR):
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(AGENTS_DIR / rel, dst / rel)
    return dst


def mark_build(src: Path) -> None:
    """Give the copy a checksum of its own (a comment: the code stays the same)."""
    init = src / "__init__.py"
    init.write_text(init.read_text() + f"# e2e build {uuid.uuid4()}\n")


def agent_call(ip: str, path: str) -> httpx.Response:
    # trust_env=False: no proxy between the root namespace and the test bed.
    with httpx.Client(trust_env=False, timeout=5) as client:
        if path == "/host/echo":
            return client.get(f"http://{ip}:7070{path}")
        return client.post(f"http://{ip}:7070{path}", json={})


async def deploy_all(deployer: AgentDeployer, targets: list[DeployTarget]):
    import asyncio

    started = time.monotonic()
    try:
        results = await asyncio.gather(*(deployer.deploy(t) for t in targets))
    except DeployError as e:
        pytest.fail(f"{e}\n{e.log[-4000:]}")
    return results, time.monotonic() - started


async def test_deploy_upgrade_and_restart(testbed, tmp_path):  # noqa: F811
    h1, h2 = testbed.test_hosts()[:2]
    src = copy_agent_source(tmp_path / "agents")
    mark_build(src)
    var = tmp_path / "var"
    package = AgentPackage(var / "kvmagent-package", source_dir=src)
    deployer = AgentDeployer(var, host_vars_dir=testbed.host_vars_dir, package=package)
    targets = [DeployTarget(h1.ip, h1.username, password=h1.password),
               DeployTarget(h2.ip, h2.username, private_key_file=h2.key_file)]

    # First deploy: installs and starts the agent on both hosts.
    results, took = await deploy_all(deployer, targets)
    print(f"first deploy (both hosts, with the wheel builds): {took:.1f}s")
    for r in results:
        assert r.changed and r.installed and r.started
        assert r.version == package.checksum
    for h in (h1, h2):
        assert agent_call(h.ip, "/host/echo").status_code == 200
        assert agent_call(h.ip, "/host/ping").json()["version"] == package.checksum

    # Second deploy: nothing to do.
    results, took = await deploy_all(deployer, targets)
    print(f"second deploy (no change): {took:.1f}s")
    for r in results:
        assert (r.changed, r.installed, r.started) == (False, False, False)

    # A new package: reinstalled, restarted, the agents report the new version.
    old = package.checksum
    mark_build(src)
    assert package.checksum != old
    results, took = await deploy_all(deployer, targets)
    print(f"upgrade deploy: {took:.1f}s")
    for r in results:
        assert r.installed and r.started and r.version == package.checksum
    for h in (h1, h2):
        assert agent_call(h.ip, "/host/ping").json()["version"] == package.checksum

    # The agent killed behind the MN's back: a deploy starts it again.
    pid_file = Path(h1.host_vars["kvmagent_state_dir"]) / "kvmagent.pid"
    pid = int(pid_file.read_text())
    os.killpg(pid, signal.SIGKILL)  # its own session: master and workers together
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            agent_call(h1.ip, "/host/echo")
        except httpx.TransportError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the killed agent still answers")
    results, took = await deploy_all(deployer, targets[:1])
    print(f"deploy after a kill: {took:.1f}s")
    assert results[0].started and not results[0].installed
    assert agent_call(h1.ip, "/host/echo").status_code == 200
