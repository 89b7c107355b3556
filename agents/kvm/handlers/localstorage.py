"""ZStack's LocalStorageKvmBackend commands; every answer carries the capacity
of the file system holding ``storagePath``."""

from __future__ import annotations

from typing import Any

from agents.kvm.handlers import CommandError, Route, require


def _with_capacity(agent, cmd: dict[str, Any], rsp: dict[str, Any]) -> dict[str, Any]:
    storage_path = cmd.get("storagePath") or cmd.get("path")
    if storage_path:
        total, available = agent.driver.storage_capacity(storage_path)
        rsp.update(totalCapacity=total, availableCapacity=available)
    return rsp


def init(agent, cmd: dict[str, Any]) -> dict[str, Any]:
    agent.driver.init_storage(cmd.get("path") or require(cmd, "storagePath"))
    return _with_capacity(agent, cmd, {})


def get_physical_capacity(agent, cmd: dict[str, Any]) -> dict[str, Any]:
    require(cmd, "storagePath")
    return _with_capacity(agent, cmd, {})


def create_empty_volume(agent, cmd: dict[str, Any]) -> dict[str, Any]:
    try:
        size = int(require(cmd, "size"))
    except (TypeError, ValueError):
        raise CommandError(f"size {cmd.get('size')!r} is not a number") from None
    actual = agent.driver.create_empty_volume(require(cmd, "installUrl"), size, cmd.get("backingFile") or None)
    return _with_capacity(agent, cmd, {"actualSize": actual, "size": size})


def delete(agent, cmd: dict[str, Any]) -> dict[str, Any]:
    agent.driver.delete_bits(require(cmd, "path"))
    return _with_capacity(agent, {"storagePath": cmd.get("storagePath")}, {})


ROUTES = {
    "/localstorage/init": Route(init),
    "/localstorage/getphysicalcapacity": Route(get_physical_capacity),
    "/localstorage/volume/createempty": Route(create_empty_volume),
    "/localstorage/delete": Route(delete),
}
