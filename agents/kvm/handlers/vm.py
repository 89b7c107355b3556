"""ZStack's vm_plugin: VM lifecycle, state sync and data volumes."""

from __future__ import annotations

from typing import Any

from agents.kvm.handlers import Route, require

#: Seconds a stop/reboot/pause/resume may take when the command does not say.
DEFAULT_TIMEOUT = 60.0


def _timeout(cmd: dict[str, Any]) -> float:
    return float(cmd.get("timeout") or DEFAULT_TIMEOUT)


def start_vm(agent, cmd: dict[str, Any]) -> dict[str, Any]:
    require(cmd, "vmInstanceUuid")
    agent.driver.start_vm(cmd)
    return {}


def stop_vm(agent, cmd: dict[str, Any]) -> dict[str, Any]:
    agent.driver.stop_vm(require(cmd, "uuid"), cmd.get("type") or "grace", _timeout(cmd))
    return {}


def reboot_vm(agent, cmd: dict[str, Any]) -> dict[str, Any]:
    agent.driver.reboot_vm(require(cmd, "uuid"), _timeout(cmd))
    return {}


def pause_vm(agent, cmd: dict[str, Any]) -> dict[str, Any]:
    agent.driver.pause_vm(require(cmd, "uuid"), _timeout(cmd))
    return {}


def resume_vm(agent, cmd: dict[str, Any]) -> dict[str, Any]:
    agent.driver.resume_vm(require(cmd, "uuid"), _timeout(cmd))
    return {}


def destroy_vm(agent, cmd: dict[str, Any]) -> dict[str, Any]:
    agent.driver.destroy_vm(require(cmd, "uuid"))
    return {}


def vm_sync(agent, cmd: dict[str, Any]) -> dict[str, Any]:
    return {"states": agent.driver.vm_states(), "vmInShutdowns": []}


def attach_data_volume(agent, cmd: dict[str, Any]) -> dict[str, Any]:
    agent.driver.attach_volume(require(cmd, "vmInstanceUuid"), require(cmd, "volume"))
    return {}


def detach_data_volume(agent, cmd: dict[str, Any]) -> dict[str, Any]:
    agent.driver.detach_volume(require(cmd, "vmInstanceUuid"), require(cmd, "volume"))
    return {}


ROUTES = {
    "/vm/start": Route(start_vm, vm_field="vmInstanceUuid"),
    "/vm/stop": Route(stop_vm, vm_field="uuid"),
    "/vm/reboot": Route(reboot_vm, vm_field="uuid"),
    "/vm/pause": Route(pause_vm, vm_field="uuid"),
    "/vm/resume": Route(resume_vm, vm_field="uuid"),
    "/vm/destroy": Route(destroy_vm, vm_field="uuid"),
    "/vm/vmsync": Route(vm_sync, quick=True),
    "/vm/attachdatavolume": Route(attach_data_volume, vm_field="vmInstanceUuid"),
    "/vm/detachdatavolume": Route(detach_data_volume, vm_field="vmInstanceUuid"),
}
