"""Every error leaves the API as ZStack's ``{"error": {...}}``."""

from __future__ import annotations

import logging

import falcon

from mn.errors import ErrorCode, OperationError, SysErrors, error
from mn.web.json import dumps

log = logging.getLogger(__name__)

#: HTTP status of each error code; anything else is a 500. Bad input is a
#: 4xx answered before anything runs; a failure while running is a 503, as
#: ZStack answers failed API jobs.
STATUS_OF_CODE = {
    SysErrors.INVALID_ARGUMENT_ERROR.value: falcon.HTTP_400,
    SysErrors.UNKNOWN_MESSAGE_ERROR.value: falcon.HTTP_400,
    SysErrors.RESOURCE_NOT_FOUND.value: falcon.HTTP_404,
    SysErrors.CREATE_RESOURCE_ERROR.value: falcon.HTTP_409,
    SysErrors.DELETE_RESOURCE_ERROR.value: falcon.HTTP_409,
    SysErrors.CHANGE_RESOURCE_STATE_ERROR.value: falcon.HTTP_409,
    SysErrors.OPERATION_ERROR.value: falcon.HTTP_409,
    SysErrors.TIMEOUT.value: falcon.HTTP_503,
    SysErrors.NOT_READY_ERROR.value: falcon.HTTP_503,
    SysErrors.UNDELIVERABLE_ERROR.value: falcon.HTTP_503,
    SysErrors.MANAGEMENT_NODE_UNAVAILABLE_ERROR.value: falcon.HTTP_503,
    "ID.1000": falcon.HTTP_401,  # authentication failed (bad password, forged signature, disabled key)
    "ID.1001": falcon.HTTP_401,  # invalid or expired session
    "ID.1002": falcon.HTTP_403,  # permission denied
    "ID.1006": falcon.HTTP_403,  # too many sessions
}


def write_error(resp: falcon.asgi.Response, status: str, err: ErrorCode) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.text = dumps({"error": err.to_dict()})


async def handle_operation_error(req, resp, exc: OperationError, params) -> None:
    write_error(resp, STATUS_OF_CODE.get(exc.error.code, falcon.HTTP_500), exc.error)


async def handle_http_error(req, resp, exc: falcon.HTTPError, params) -> None:
    code = SysErrors.RESOURCE_NOT_FOUND if exc.status_code == 404 else SysErrors.INVALID_ARGUMENT_ERROR
    details = exc.description or exc.title or str(exc.status)
    write_error(resp, exc.status, error(code, details))


async def handle_unexpected(req, resp, exc: Exception, params) -> None:
    log.exception("unhandled error on %s %s", req.method, req.path)
    write_error(resp, falcon.HTTP_500, error(SysErrors.INTERNAL, f"{type(exc).__name__}: {exc}"))


def install(app: falcon.asgi.App) -> None:
    # falcon picks the most specific handler for an exception's class.
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(falcon.HTTPError, handle_http_error)
    app.add_error_handler(OperationError, handle_operation_error)
