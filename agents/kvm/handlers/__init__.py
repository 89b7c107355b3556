"""Command handlers, one module per ZStack kvmagent plugin.

A handler is a plain function ``(agent, cmd) -> dict``: ``cmd`` is the
command's JSON object, the dict holds the response's fields besides
``success``/``error`` (the server adds those). A handler fails by raising
:class:`~agents.kvm.drivers.base.DriverError` or :class:`CommandError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from agents.kvm.agent import Agent

Handler = Callable[["Agent", dict[str, Any]], dict[str, Any]]


class CommandError(Exception):
    """A command the agent cannot carry out as given (a field missing or wrong)."""


@dataclass(frozen=True)
class Route:
    """A command path's handler and how it is run."""

    handler: Handler
    #: The command field naming the VM it acts on: commands for one VM run one
    #: at a time, in the order they arrived.
    vm_field: str | None = None
    #: Always answered at once, even with ``taskuuid``/``callbackurl`` headers.
    sync_only: bool = False
    #: Cheap: run in the request's thread, never queued behind slow commands
    #: (an MN's ping must not wait for a pool busy starting VMs).
    quick: bool = False

    def vm_uuid(self, cmd: dict[str, Any]) -> str | None:
        if self.vm_field is None:
            return None
        value = cmd.get(self.vm_field)
        return str(value) if value else None


def require(cmd: dict[str, Any], name: str) -> Any:
    """The command's field ``name``; a :class:`CommandError` when it is missing or null."""
    value = cmd.get(name)
    if value is None or value == "":
        raise CommandError(f"command field {name!r} is missing")
    return value


def all_routes(testing: bool = False) -> dict[str, Route]:
    """Every command path the agent serves; ``testing`` adds the test hooks of
    the simulated driver."""
    from agents.kvm.handlers import host, localstorage, network, vm

    table: dict[str, Route] = {}
    for module in (host, vm, network, localstorage):
        table.update(module.ROUTES)
    if testing:
        from agents.kvm.handlers import testing as testing_hooks
        table.update(testing_hooks.ROUTES)
    return table
