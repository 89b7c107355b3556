"""Bus messages: typed, versioned, JSON on the wire.

Each service owns its messages: it declares them as subclasses of
:class:`Message` (requests), :class:`Reply` or :class:`Event`, and the class
body says which service handles it and, where the message is about one
resource, which field holds that resource's uuid (so the bus can route it to
the resource's owner on the ring)::

    class StartVmInstanceMsg(Message):
        SERVICE = "vmInstance"
        ROUTE_BY = "vmInstanceUuid"
        vmInstanceUuid: str

On the wire a message is ``{"type": <TYPE>, "version": <VERSION>, "body": {...}}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from mn.errors import ErrorCode, OperationError, SysErrors, error

_REGISTRY: dict[str, type["Message"]] = {}


class Message(BaseModel):
    """A request carried by the bus."""

    model_config = ConfigDict(extra="forbid")

    #: Wire name; defaults to the class name.
    TYPE: ClassVar[str] = "Message"
    #: Bumped when the body changes incompatibly; a receiver accepts versions
    #: up to its own and rejects newer ones with a clear error.
    VERSION: ClassVar[int] = 1
    #: Service id of the handler.
    SERVICE: ClassVar[str | None] = None
    #: Name of the field with the uuid of the resource this message is about.
    ROUTE_BY: ClassVar[str | None] = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "TYPE" not in cls.__dict__:
            cls.TYPE = cls.__name__
        known = _REGISTRY.get(cls.TYPE)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise TypeError(f"message type {cls.TYPE!r} is defined twice: "
                            f"{known.__module__}.{known.__qualname__} and {cls.__module__}.{cls.__qualname__}")
        _REGISTRY[cls.TYPE] = cls

    def route_key(self) -> str | None:
        return getattr(self, self.ROUTE_BY) if self.ROUTE_BY else None

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.TYPE, "version": self.VERSION, "body": self.model_dump(mode="json")}


class Reply(Message):
    """The answer to a request; ``error`` is set when it failed."""

    success: bool = True
    error: dict[str, Any] | None = None

    @classmethod
    def failure(cls, err: ErrorCode) -> "Reply":
        return Reply(success=False, error=err.to_dict())

    def raise_for_error(self) -> "Reply":
        if not self.success:
            raise OperationError(ErrorCode.from_dict(self.error or {}))
        return self


class Event(Message):
    """A broadcast: every MN subscribed to its type receives it."""


_REGISTRY.setdefault("Message", Message)


def message_class(type_name: str) -> type[Message]:
    try:
        return _REGISTRY[type_name]
    except KeyError:
        raise OperationError(error(SysErrors.UNKNOWN_MESSAGE_ERROR,
                                   f"unknown message type {type_name!r}")) from None


def from_wire(data: dict[str, Any]) -> Message:
    """Decode ``{"type", "version", "body"}``; errors are OperationErrors."""
    cls = message_class(data.get("type", ""))
    version = int(data.get("version", 1))
    if version > cls.VERSION:
        raise OperationError(error(SysErrors.UNKNOWN_MESSAGE_ERROR,
                                   f"{cls.TYPE} version {version} is newer than this node's {cls.VERSION}"))
    try:
        return cls.model_validate(data.get("body") or {})
    except ValidationError as exc:
        raise OperationError(error(SysErrors.INVALID_ARGUMENT_ERROR, f"bad {cls.TYPE}: {exc}")) from None
