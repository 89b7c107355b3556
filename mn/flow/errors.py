"""The two ways a flow chain goes wrong: a bad definition, a failed run."""

from __future__ import annotations

from typing import Any

from mn.errors import ErrorCode, OperationError


class FlowDefinitionError(Exception):
    """A flow chain definition is invalid; start-up stops with this error.

    The message starts with where the problem is: ``file:line:`` for XML,
    or the entry point for a plugin's extension.
    """

    def __init__(self, message: str, *, where: str | None = None):
        self.where = where
        self.reason = message
        super().__init__(f"{where}: {message}" if where else message)


class FlowError(OperationError):
    """A chain failed; its completed steps were rolled back before this is raised.

    ``error`` is SYS.1006 for the chain as a whole, with the failing step's
    own ErrorCode as its ``cause`` (the shape ZStack's callers expect).
    ``step_id`` names the failing step and ``data`` is the chain's data map
    after the rollback.
    """

    def __init__(self, error_code: ErrorCode, *, chain: str, step_id: str | None = None,
                 data: dict[str, Any] | None = None):
        super().__init__(error_code)
        self.chain = chain
        self.step_id = step_id
        self.data = data if data is not None else {}

    @property
    def step_error(self) -> ErrorCode | None:
        """The error the failing step reported."""
        return self.error.cause
