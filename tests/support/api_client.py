"""A plain-HTTP ZStack REST client for tests, doing what ZStack SDKs do."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from email.utils import formatdate
from typing import Any

import httpx

ADMIN_PASSWORD_SHA512 = hashlib.sha512(b"password").hexdigest()


def sha512(password: str) -> str:
    return hashlib.sha512(password.encode()).hexdigest()


class ApiError(Exception):
    def __init__(self, status: int, body: dict):
        error = (body or {}).get("error") or {}
        super().__init__(f"HTTP {status}: {error.get('code')} {error.get('details') or error.get('description')}")
        self.status = status
        self.body = body
        self.code = error.get("code")


class ZStackClient:
    """``base`` is the MN's root URL (http://127.0.0.1:8080)."""

    def __init__(self, base: str, session: str | None = None, timeout: float = 30.0):
        self.base = base.rstrip("/")
        self.session = session
        self.http = httpx.Client(base_url=self.base, timeout=timeout)
        self.access_key: tuple[str, str] | None = None

    def close(self) -> None:
        self.http.close()

    # -- authentication ---------------------------------------------------------

    def login(self, account: str = "admin", password: str = "password") -> str:
        rsp = self.http.put("/zstack/v1/accounts/login",
                            json={"logInByAccount": {"accountName": account, "password": sha512(password)}})
        body = self._check(rsp)
        self.session = body["inventory"]["uuid"]
        return self.session

    def headers(self, method: str, path: str) -> dict[str, str]:
        if self.access_key is not None:
            key_id, secret = self.access_key
            date = formatdate(usegmt=True)
            return {"Date": date, "Authorization": f"ZStack {key_id}:{sign(secret, method, date, path)}"}
        return {"Authorization": f"OAuth {self.session}"} if self.session else {}

    # -- calls ------------------------------------------------------------------------

    def request(self, method: str, path: str, *, json: Any = None, params: Any = None,
                headers: dict | None = None) -> httpx.Response:
        full = "/zstack/v1" + path
        merged = {**self.headers(method, full), **(headers or {})}
        return self.http.request(method, full, json=json, params=params, headers=merged)

    def call(self, method: str, path: str, *, json: Any = None, params: Any = None,
             headers: dict | None = None, poll_timeout: float = 60.0) -> dict:
        """Send, follow a 202's location until the job ends, return the body or raise ApiError."""
        rsp = self.request(method, path, json=json, params=params, headers=headers)
        if rsp.status_code == 202:
            return self.wait(rsp.json()["location"], poll_timeout)
        return self._check(rsp)

    def wait(self, location: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            rsp = self.http.get(location)
            if rsp.status_code != 202:
                return self._check(rsp)
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {location} still running after {timeout}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def create(self, path: str, params: dict, **kw) -> dict:
        return self.call("POST", path, json={"params": params}, **kw)["inventory"]

    def action(self, path: str, action: str, params: dict | None = None, **kw) -> dict:
        return self.call("PUT", path, json={action: params or {}}, **kw)

    def query(self, path: str, *conditions: str, **params) -> dict:
        query = [("q", c) for c in conditions] + [(k, str(v).lower() if isinstance(v, bool) else v)
                                                 for k, v in params.items()]
        return self.call("GET", path, params=query)

    @staticmethod
    def _check(rsp: httpx.Response) -> dict:
        try:
            body = rsp.json() if rsp.content else {}
        except ValueError:
            body = {"error": {"code": "HTTP", "details": rsp.text}}
        if rsp.status_code >= 300:
            raise ApiError(rsp.status_code, body)
        return body


def sign(secret: str, method: str, date: str, path: str) -> str:
    """ZStack's AccessKey signature: base64(hmac-sha1(secret, METHOD\\nDATE\\nPATH))."""
    if path.startswith("/zstack"):
        path = path[len("/zstack"):]
    digest = hmac.new(secret.encode(), f"{method}\n{date}\n{path}".encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()
