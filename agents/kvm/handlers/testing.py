"""Test hooks of the simulated driver, served only when it is the agent's driver.

They let a test in another process do to a simulated host what would happen
to a real one behind the MN's back (see PROTOCOL.md, "Testing")."""

from __future__ import annotations

from typing import Any

from agents.kvm.handlers import CommandError, Route, require


def set_vm_state(agent, cmd: dict[str, Any]) -> dict[str, Any]:
    agent.driver.set_vm_state(require(cmd, "vmUuid"), require(cmd, "state"))
    return {}


def set_fail_paths(agent, cmd: dict[str, Any]) -> dict[str, Any]:
    paths = cmd.get("paths") or []
    if not isinstance(paths, list):
        raise CommandError("paths must be a list")
    agent.driver.set_fail_paths(str(p) for p in paths)
    return {"paths": sorted(agent.driver.fail_paths)}


def last_ping(agent, cmd: dict[str, Any]) -> dict[str, Any]:
    """The last ``/host/ping``: which MN sent it (``managementNodeUuid``) and when (epoch seconds)."""
    return dict(getattr(agent, "last_ping", None) or {"managementNodeUuid": None, "time": None})


ROUTES = {
    "/testing/simulated/setvmstate": Route(set_vm_state, sync_only=True, quick=True),
    "/testing/simulated/setfailpaths": Route(set_fail_paths, sync_only=True, quick=True),
    "/testing/lastping": Route(last_ping, sync_only=True, quick=True),
}
