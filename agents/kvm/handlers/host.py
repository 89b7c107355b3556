"""ZStack's host_plugin: connect, ping, echo, capacity."""

from __future__ import annotations

import time
from typing import Any

from agents.kvm.handlers import Route, require


def connect(agent, cmd: dict[str, Any]) -> dict[str, Any]:
    agent.connected(host_uuid=require(cmd, "hostUuid"), send_command_url=require(cmd, "sendCommandUrl"),
                    management_nodes=cmd.get("managementNodes") or [])
    return dict(agent.driver.versions())


def ping(agent, cmd: dict[str, Any]) -> dict[str, Any]:
    # Who tracks this host now (our MNs add their uuid): tests measure takeovers with it.
    agent.last_ping = {"managementNodeUuid": cmd.get("managementNodeUuid"), "time": time.time()}
    return {"hostUuid": agent.host_uuid, "sendCommandUrl": agent.send_command_url,
            "version": agent.config.version}


def echo(agent, cmd: dict[str, Any]) -> dict[str, Any]:
    # Answered by the server itself as a bare {} (see server.EchoResource);
    # kept here so the route table lists every path.
    return {}


def capacity(agent, cmd: dict[str, Any]) -> dict[str, Any]:
    return dict(agent.driver.host_capacity())


ROUTES = {
    "/host/connect": Route(connect, quick=True),
    "/host/ping": Route(ping, quick=True),
    "/host/echo": Route(echo, sync_only=True, quick=True),
    "/host/capacity": Route(capacity, quick=True),
}
