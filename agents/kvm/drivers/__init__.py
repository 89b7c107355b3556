"""Hypervisor drivers of the agent, chosen by name like kombu's transports.

Built-in drivers are imported only when chosen, so the simulated driver runs
without libvirt-python installed. Other packages add drivers under the entry
point group :data:`ENTRY_POINT_GROUP` (``name = module:Class``).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from agents.kvm.drivers.base import Driver, DriverError

ENTRY_POINT_GROUP = "zstack.kvmagent.drivers"

DRIVERS: dict[str, str] = {
    "libvirt": "agents.kvm.drivers.impl_libvirt:LibvirtDriver",
    "simulated": "agents.kvm.drivers.impl_simulated:SimulatedDriver",
}


def _plugin_entry_points() -> list:
    try:
        return list(entry_points(group=ENTRY_POINT_GROUP))
    except TypeError:  # Python 3.9 (hosts' system Python): no selection by group yet
        return list(entry_points().get(ENTRY_POINT_GROUP, []))


def available_drivers() -> list[str]:
    """Names of the built-in and installed drivers."""
    return sorted(set(DRIVERS) | {ep.name for ep in _plugin_entry_points()})


def driver_class(name: str) -> type[Driver]:
    """The class of driver ``name``: built-in first, then the entry points."""
    if name in DRIVERS:
        module_name, _, attr = DRIVERS[name].partition(":")
        return getattr(importlib.import_module(module_name), attr)
    for ep in _plugin_entry_points():
        if ep.name == name:
            return ep.load()
    raise DriverError(f"unknown kvmagent driver {name!r}; available: {', '.join(available_drivers())}")


def load_driver(name: str, config: Any) -> Driver:
    """A new driver ``name`` configured with ``config`` (an AgentConfig)."""
    return driver_class(name)(config)


__all__ = ["DRIVERS", "ENTRY_POINT_GROUP", "Driver", "DriverError", "available_drivers", "driver_class",
           "load_driver"]
