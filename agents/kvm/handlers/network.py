"""ZStack's network_plugin: the Linux bridges of L2 (no-VLAN and VLAN) networks."""

from __future__ import annotations

from typing import Any

from agents.kvm.drivers.base import DriverError
from agents.kvm.handlers import CommandError, Route, require


def _vlan(cmd: dict[str, Any], vlan: bool) -> int | None:
    if not vlan:
        return None
    try:
        return int(require(cmd, "vlan"))
    except (TypeError, ValueError):
        raise CommandError(f"vlan {cmd.get('vlan')!r} is not a number") from None


def _mtu(cmd: dict[str, Any]) -> int | None:
    return int(cmd["mtu"]) if cmd.get("mtu") else None


def _create(vlan: bool):
    def create_bridge(agent, cmd: dict[str, Any]) -> dict[str, Any]:
        agent.driver.create_bridge(require(cmd, "bridgeName"), require(cmd, "physicalInterfaceName"),
                                   _vlan(cmd, vlan), _mtu(cmd))
        return {}
    return create_bridge


def check_bridge(agent, cmd: dict[str, Any]) -> dict[str, Any]:
    name = require(cmd, "bridgeName")
    if not agent.driver.check_bridge(name):
        raise DriverError(f"bridge {name} does not exist on the host")
    return {}


def _delete(vlan: bool):
    def delete_bridge(agent, cmd: dict[str, Any]) -> dict[str, Any]:
        agent.driver.delete_bridge(require(cmd, "bridgeName"), require(cmd, "physicalInterfaceName"),
                                   _vlan(cmd, vlan))
        return {}
    return delete_bridge


ROUTES = {
    "/network/l2novlan/createbridge": Route(_create(vlan=False)),
    "/network/l2vlan/createbridge": Route(_create(vlan=True)),
    "/network/l2novlan/checkbridge": Route(check_bridge),
    "/network/l2vlan/checkbridge": Route(check_bridge),
    "/network/l2novlan/deletebridge": Route(_delete(vlan=False)),
    "/network/l2vlan/deletebridge": Route(_delete(vlan=True)),
}
