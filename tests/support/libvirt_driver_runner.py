"""Drive a LibvirtDriver from a test, in another network namespace.

The driver must run in the namespace of its libvirtd (bridges and taps live
there), the test does not; so the test starts this module there
(``ip netns exec <ns> python -m tests.support.libvirt_driver_runner``) and
calls driver methods over stdin/stdout, one JSON object a line:

    -> {"method": "start_vm", "args": [spec]}
    <- {"result": null}            or {"error": "...", "type": "DriverError"}

The extra method ``events`` returns (and forgets) what the watch listener got.
:class:`RemoteDriver` is the test's side.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import types
from typing import Any


def serve(config: dict[str, Any]) -> None:
    from agents.kvm.drivers.impl_libvirt import LibvirtDriver

    driver = LibvirtDriver(types.SimpleNamespace(**config))
    events: list[tuple[str, str]] = []
    lock = threading.Lock()

    def listener(vm_uuid: str, state: str) -> None:
        with lock:
            events.append((vm_uuid, state))

    out = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        method, args = request["method"], request.get("args", [])
        try:
            if method == "events":
                with lock:
                    result: Any = list(events)
                    events.clear()
            elif method == "watch":
                result = driver.watch(listener)
            else:
                result = getattr(driver, method)(*args)
            answer = {"result": result}
        except Exception as e:  # noqa: BLE001 - every failure goes back to the test
            answer = {"error": str(e), "type": type(e).__name__}
        out.write(json.dumps(answer) + "\n")
        out.flush()
    driver.close()


class RemoteError(Exception):
    """A driver call failed in the runner; ``type`` is the exception's class name."""

    def __init__(self, message: str, type_: str) -> None:
        super().__init__(message)
        self.type = type_


class RemoteDriver:
    """The test's handle on a driver running in network namespace ``netns``."""

    def __init__(self, netns: str, config: dict[str, Any], python: str = sys.executable) -> None:
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self._proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, python, "-m", "tests.support.libvirt_driver_runner",
             json.dumps(config)],
            cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self._lock = threading.Lock()

    def call(self, method: str, *args: Any) -> Any:
        with self._lock:
            assert self._proc.stdin and self._proc.stdout
            self._proc.stdin.write(json.dumps({"method": method, "args": list(args)}) + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        if not line:
            raise RemoteError(f"driver runner died (exit code {self._proc.poll()})", "RunnerDied")
        answer = json.loads(line)
        if "error" in answer:
            raise RemoteError(answer["error"], answer["type"])
        return answer["result"]

    def __getattr__(self, method: str) -> Any:
        if method.startswith("_"):
            raise AttributeError(method)
        return lambda *args: self.call(method, *args)

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stdout:
            self._proc.stdout.close()


if __name__ == "__main__":
    logging.basicConfig(level=os.environ.get("ZS_RUNNER_LOG", "WARNING"), stream=sys.stderr)
    serve(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})
