"""Errors the bus itself raises to callers. All are OperationErrors with a SYS code."""

from mn.errors import OperationError, SysErrors, error


class NoServiceError(OperationError):
    """No service with that id is registered: the message cannot be handled."""

    def __init__(self, service_id: str | None, msg_type: str):
        super().__init__(error(SysErrors.NO_ROUTE_ERROR,
                               f"no service {service_id!r} serves {msg_type}"))


class CallTimeoutError(OperationError):
    """No reply came within the call's timeout."""

    def __init__(self, msg_type: str, target: str, timeout: float):
        super().__init__(error(SysErrors.TIMEOUT,
                               f"{msg_type} to management node {target} got no reply in {timeout:g}s"))


class NodeUnavailableError(OperationError):
    """The management node a call went to left the ring (died or stopped)."""

    def __init__(self, node_uuid: str, msg_type: str):
        super().__init__(error(SysErrors.MANAGEMENT_NODE_UNAVAILABLE_ERROR,
                               f"management node {node_uuid} left before answering {msg_type}"))


class BusUnavailableError(OperationError):
    """The broker could not take the message (down longer than the retry policy)."""

    def __init__(self, reason: str):
        super().__init__(error(SysErrors.UNDELIVERABLE_ERROR, f"message bus unavailable: {reason}"))
