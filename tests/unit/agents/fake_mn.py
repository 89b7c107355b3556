"""A stand-in for the MN's HTTP side: records what agents POST to it.

Serves on 127.0.0.1 from a thread; every POST (callbacks and reports alike)
is recorded and answered 200, or with a programmed failure status."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    status: int


class FakeMN:
    """``with FakeMN() as mn: ... mn.wait_for(lambda r: ...)``"""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._failures: list[int] = []
        self._always_fail: int | None = None
        self._cond = threading.Condition()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with fake._cond:
                    if fake._failures:
                        status = fake._failures.pop(0)
                    else:
                        status = fake._always_fail or 200
                    fake.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                  json.loads(raw or b"null"), status))
                    fake._cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.callback_url = self.url + "/zstack/asyncrest/callback"
        self.send_command_url = self.url + "/zstack/asyncrest/sendcommand"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def fail_next(self, count: int, status: int = 500) -> None:
        """Answer the next ``count`` POSTs with ``status``."""
        with self._cond:
            self._failures.extend([status] * count)

    def fail_always(self, status: int | None = 500) -> None:
        with self._cond:
            self._always_fail = status

    def matching(self, predicate: Callable[[Received], bool]) -> list[Received]:
        with self._cond:
            return [r for r in self.received if predicate(r)]

    def wait_for(self, predicate: Callable[[Received], bool], count: int = 1, timeout: float = 10.0) -> list[Received]:
        """The first ``count`` requests matching ``predicate``, waiting for them; AssertionError at ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [r for r in self.received if predicate(r)]
                if len(found) >= count:
                    return found[:count]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"got {len(found)} of {count} expected requests within {timeout}s; "
                                         f"all received: {self.received}")
                self._cond.wait(left)

    def callbacks(self, task_uuid: str) -> list[Received]:
        return self.matching(lambda r: r.headers.get("taskuuid") == task_uuid)

    def wait_callback(self, task_uuid: str, timeout: float = 10.0) -> Received:
        """The first successfully answered callback of ``task_uuid``."""
        return self.wait_for(lambda r: r.headers.get("taskuuid") == task_uuid and r.status == 200,
                             timeout=timeout)[0]

    def reports(self, commandpath: str) -> list[Received]:
        return self.matching(lambda r: r.headers.get("commandpath") == commandpath)

    def wait_report(self, commandpath: str, timeout: float = 10.0) -> Received:
        return self.wait_for(lambda r: r.headers.get("commandpath") == commandpath and r.status == 200,
                             timeout=timeout)[0]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> "FakeMN":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
