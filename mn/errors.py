"""ZStack's error object and the exception that carries it.

Every failure that reaches a user (an API reply, a bus reply, a job result)
is an :class:`ErrorCode`, serialised as ZStack does::

    {"code": "SYS.1007", "description": "...", "details": "...",
     "elaboration": null, "cause": {...}}
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any


class SysErrors(str, enum.Enum):
    """ZStack's system error codes (``org.zstack.header.errorcode.SysErrors``)."""

    INTERNAL = "SYS.1000"
    TIMEOUT = "SYS.1001"
    CREATE_RESOURCE_ERROR = "SYS.1002"
    RESOURCE_NOT_FOUND = "SYS.1003"
    DELETE_RESOURCE_ERROR = "SYS.1004"
    CHANGE_RESOURCE_STATE_ERROR = "SYS.1005"
    OPERATION_ERROR = "SYS.1006"
    INVALID_ARGUMENT_ERROR = "SYS.1007"
    UNKNOWN_MESSAGE_ERROR = "SYS.1008"
    NO_ROUTE_ERROR = "SYS.1009"
    NOT_READY_ERROR = "SYS.1010"
    UNDELIVERABLE_ERROR = "SYS.1011"
    MANAGEMENT_NODE_UNAVAILABLE_ERROR = "SYS.1012"
    NO_CAPABILITY_ERROR = "SYS.1013"
    UNIMPLEMENTED_OPERATION_ERROR = "SYS.1014"


_DESCRIPTIONS = {
    SysErrors.INTERNAL: "An internal error happened in the system",
    SysErrors.TIMEOUT: "An operation timeout",
    SysErrors.RESOURCE_NOT_FOUND: "Unable to find a resource",
    SysErrors.OPERATION_ERROR: "An operation failed",
    SysErrors.INVALID_ARGUMENT_ERROR: "One or more API argument is invalid",
    SysErrors.UNKNOWN_MESSAGE_ERROR: "The message is unknown to the system",
    SysErrors.NO_ROUTE_ERROR: "No service is found to handle the message",
    SysErrors.UNDELIVERABLE_ERROR: "The message cannot be delivered",
    SysErrors.MANAGEMENT_NODE_UNAVAILABLE_ERROR: "The management node is unavailable",
}


@dataclasses.dataclass
class ErrorCode:
    code: str
    description: str = ""
    details: str | None = None
    elaboration: str | None = None
    cause: "ErrorCode | None" = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "description": self.description,
            "details": self.details,
            "elaboration": self.elaboration,
            "cause": self.cause.to_dict() if self.cause else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ErrorCode":
        cause = data.get("cause")
        return cls(
            code=data.get("code", SysErrors.INTERNAL.value),
            description=data.get("description", ""),
            details=data.get("details"),
            elaboration=data.get("elaboration"),
            cause=cls.from_dict(cause) if cause else None,
        )

    def __str__(self) -> str:
        return f"{self.code}: {self.details or self.description}"


def error(code: SysErrors, details: str, cause: ErrorCode | None = None) -> ErrorCode:
    """An ErrorCode with ZStack's standard description for ``code``."""
    return ErrorCode(code.value, _DESCRIPTIONS.get(code, code.name.lower().replace("_", " ")),
                     details, cause=cause)


class OperationError(Exception):
    """Raised by services (and re-raised by callers) to report an ErrorCode."""

    def __init__(self, error_code: ErrorCode):
        super().__init__(str(error_code))
        self.error = error_code

    @classmethod
    def of(cls, code: SysErrors, details: str) -> "OperationError":
        return cls(error(code, details))
