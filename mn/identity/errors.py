"""Identity error codes (ZStack's IdentityErrors) and how the API layer answers them.

HTTP status the REST layer gives each (ZStack's behaviour):

* ``ID.1000`` authentication error (wrong password, unknown, disabled or
  forged AccessKey) -> 401
* ``ID.1001`` invalid session (unknown, expired or logged out) -> 401
* ``ID.1002`` permission denied, including a request ``Date`` more than 15
  minutes away from the server's clock (details start with
  ``requestTimeTooSkewed``) -> 403
* ``ID.1006`` too many sessions for the account (a refused login: the
  password was right) -> 403
* a missing or malformed ``Authorization`` or ``Date`` header is a plain
  ``SYS.1007`` invalid argument -> 400
"""

from __future__ import annotations

import enum

from mn.errors import ErrorCode, OperationError


class IdentityErrors(str, enum.Enum):
    AUTHENTICATION_ERROR = "ID.1000"
    INVALID_SESSION = "ID.1001"
    PERMISSION_DENIED = "ID.1002"
    MAX_CONCURRENT_SESSION_EXCEEDED = "ID.1006"


_DESCRIPTIONS = {
    IdentityErrors.AUTHENTICATION_ERROR: "Authentication failed",
    IdentityErrors.INVALID_SESSION: "Invalid session",
    IdentityErrors.PERMISSION_DENIED: "Permission denied",
    IdentityErrors.MAX_CONCURRENT_SESSION_EXCEEDED: "Too many concurrent sessions",
}

#: Start of the details of the clock skew refusal (ZStack's 403 text).
REQUEST_TIME_TOO_SKEWED = "requestTimeTooSkewed"


def identity_error(code: IdentityErrors, details: str) -> OperationError:
    return OperationError(ErrorCode(code.value, _DESCRIPTIONS[code], details))


def authentication_error(details: str) -> OperationError:
    return identity_error(IdentityErrors.AUTHENTICATION_ERROR, details)


def invalid_session(details: str = "Session expired") -> OperationError:
    return identity_error(IdentityErrors.INVALID_SESSION, details)


def permission_denied(details: str) -> OperationError:
    return identity_error(IdentityErrors.PERMISSION_DENIED, details)


def request_time_too_skewed(details: str) -> OperationError:
    return permission_denied(f"{REQUEST_TIME_TOO_SKEWED}: {details}")


def max_sessions_exceeded(details: str) -> OperationError:
    return identity_error(IdentityErrors.MAX_CONCURRENT_SESSION_EXCEEDED, details)
