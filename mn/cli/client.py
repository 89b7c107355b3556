"""HTTP calls to one MN, following API jobs to their end.

A mutating API answers ``202 {"location": ".../api-jobs/<uuid>"}``; the
client polls that location (``202`` while the job runs, then ``200`` with
the result or ``503`` with the error), waiting a little longer between polls
each time up to :data:`MAX_POLL_INTERVAL`, so short jobs return fast and long
ones cost one request a second.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import httpx

from mn.cli.args import HttpCall

API_PREFIX = "/zstack/v1"
OPENAPI_PATH = API_PREFIX + "/openapi.json"
FIRST_POLL_INTERVAL = 0.05
MAX_POLL_INTERVAL = 1.0
POLL_GROWTH = 1.5
#: Seconds one HTTP request may take (a job's whole run is not bounded).
REQUEST_TIMEOUT = 60.0

#: Identity errors meaning "log in (again)".
SESSION_ERRORS = ("ID.1000", "ID.1001")


class ApiError(Exception):
    """A call the MN (or something in the way) refused or failed."""

    def __init__(self, status: int, error: dict[str, Any]):
        self.status = status
        self.error = error
        super().__init__(f"HTTP {status}: {error.get('code')}: "
                         f"{error.get('details') or error.get('description')}")

    @property
    def code(self) -> str | None:
        return self.error.get("code")


class JobInterrupted(Exception):
    """The user stopped waiting; the job itself keeps running on the MN."""

    def __init__(self, location: str):
        super().__init__(f"stopped waiting; the job goes on: {location}")
        self.location = location


class ZStackClient:
    """``server`` is the MN's root URL; ``session`` is sent as ``OAuth <session>``."""

    def __init__(self, server: str, session: str | None = None, *,
                 transport: httpx.BaseTransport | None = None, timeout: float = REQUEST_TIMEOUT):
        self.server = server.rstrip("/")
        self.session = session
        self.http = httpx.Client(base_url=self.server, transport=transport, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "ZStackClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"OAuth {self.session}"} if self.session else {}

    def openapi(self) -> dict[str, Any]:
        """The MN's OpenAPI document."""
        return self._body(self.http.get(OPENAPI_PATH, headers=self.headers))

    def call(self, call: HttpCall, *, wait: Callable[[float], None] = time.sleep) -> dict[str, Any]:
        """Send ``call``; for an API job, poll until it ends, calling ``wait(seconds)``
        between polls. Returns the result body or raises :class:`ApiError`."""
        rsp = self.http.request(call.method, API_PREFIX + call.path, params=call.query or None,
                                json=call.body, headers=self.headers)
        body = self._body(rsp)
        if rsp.status_code == 202 and "location" in body:
            return self.wait_job(body["location"], wait=wait)
        return body

    def wait_job(self, location: str, *, wait: Callable[[float], None] = time.sleep) -> dict[str, Any]:
        interval = FIRST_POLL_INTERVAL
        try:
            while True:
                wait(interval)
                rsp = self.http.get(location, headers=self.headers)
                body = self._body(rsp)
                if rsp.status_code != 202:
                    return body
                interval = min(interval * POLL_GROWTH, MAX_POLL_INTERVAL)
        except KeyboardInterrupt:
            raise JobInterrupted(location) from None

    @staticmethod
    def _body(rsp: httpx.Response) -> dict[str, Any]:
        """The JSON body of a success; :class:`ApiError` with ZStack's error otherwise."""
        try:
            body = rsp.json() if rsp.content else {}
        except ValueError:
            body = None
        if rsp.status_code >= 400 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            if not isinstance(error, dict):
                error = {"code": f"HTTP.{rsp.status_code}", "description": rsp.reason_phrase,
                         "details": rsp.text.strip()[:500] or None}
            raise ApiError(rsp.status_code, error)
        return body
