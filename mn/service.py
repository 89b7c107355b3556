"""Services: the units that own messages and handle them.

A service is a class with a ``SERVICE_ID`` and methods marked with
:func:`handles`. The MN creates one instance of every service declared under
the ``zstack.services`` entry point group (plus those named in
``ZSTACK_SERVICES``), registers it on the bus and starts it. A plugin adds a
service by declaring an entry point; nothing in the core changes.
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from mn.bus import Message, Reply, Request
from mn.errors import OperationError, SysErrors

if TYPE_CHECKING:
    from mn.node import ManagementNode

log = logging.getLogger(__name__)

SERVICE_ENTRY_POINTS = "zstack.services"


def handles(*msg_types: type[Message]) -> Callable:
    """Mark a coroutine method as the handler of ``msg_types``."""

    def mark(fn):
        fn.__handles__ = msg_types
        return fn

    return mark


def intercepts(*msg_types: type[Message]) -> Callable:
    """Mark a coroutine method as the API interceptor of ``msg_types``.

    ZStack's ApiMessageInterceptor: the API layer calls it on the MN that
    received the request, before any job exists; raising OperationError
    answers the client at once (4xx) and nothing runs. It checks what can be
    checked cheaply (states, conflicts); the handler checks again, since
    things may change before it runs.
    """

    def mark(fn):
        fn.__intercepts__ = msg_types
        return fn

    return mark


class Service:
    """Base class of MN services."""

    SERVICE_ID: ClassVar[str]
    _handlers: ClassVar[dict[str, str]]
    _interceptors: ClassVar[dict[str, str]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handlers, interceptors = {}, {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                for msg_type in getattr(value, "__handles__", ()):
                    handlers[msg_type.TYPE] = attr
                for msg_type in getattr(value, "__intercepts__", ()):
                    interceptors[msg_type.TYPE] = attr
        cls._handlers = handlers
        cls._interceptors = interceptors

    def __init__(self, node: "ManagementNode"):
        self.node = node

    async def start(self) -> None:
        """Called once the node is on the ring and the bus is up."""

    async def stop(self) -> None:
        """Called before the node leaves the ring."""

    async def handle(self, msg: Message, request: Request) -> Reply | None:
        name = self._handlers.get(msg.TYPE)
        if name is None:
            raise OperationError.of(SysErrors.UNKNOWN_MESSAGE_ERROR,
                                    f"service {self.SERVICE_ID} does not handle {msg.TYPE}")
        return await getattr(self, name)(msg)

    async def intercept(self, msg: Message) -> None:
        name = self._interceptors.get(msg.TYPE)
        if name is not None:
            await getattr(self, name)(msg)


def load_service_classes(extra: str = "") -> list[type[Service]]:
    """Service classes from entry points, then from ``module:Class`` names."""
    classes: list[type[Service]] = []
    for ep in sorted(entry_points(group=SERVICE_ENTRY_POINTS), key=lambda ep: ep.name):
        classes.append(ep.load())
    for spec in filter(None, (part.strip() for part in extra.split(","))):
        module, _, name = spec.partition(":")
        classes.append(getattr(importlib.import_module(module), name))
    return classes
