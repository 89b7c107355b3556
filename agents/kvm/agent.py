"""The agent's state and machinery, apart from HTTP.

:class:`Agent` owns the driver, the MN connection learnt from ``/host/connect``
(kept in ``<state_dir>/connect.json``), the thread pool running commands with
per-VM ordering, and the background delivery of callbacks and reports to the
MN.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import tempfile
import threading
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from agents.kvm import callback
from agents.kvm.config import AgentConfig
from agents.kvm.drivers import load_driver
from agents.kvm.drivers.base import Driver, DriverError
from agents.kvm.handlers import CommandError, Route, all_routes

log = logging.getLogger(__name__)

CONNECT_FILE = "connect.json"
REPORT_VM_STATE = "/kvm/reportvmstate"
RECONNECT_ME = "/kvm/reconnectme"
#: Threads POSTing callbacks and reports; they mostly wait on the network
#: or between retries, so they are kept apart from the command threads.
DELIVERY_THREADS = 8


class SerialPerKey:
    """Runs tasks on a pool, those sharing a key one at a time in submission order.

    A key with work has one pool thread draining its queue, so waiting commands
    of a busy VM hold no threads (a lock per VM would park one thread each)."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self._pool = pool
        self._lock = threading.Lock()
        self._queues: dict[str, collections.deque] = {}

    def submit(self, key: str | None, fn: Callable[[], Any]) -> Future:
        if key is None:
            return self._pool.submit(fn)
        future: Future = Future()
        with self._lock:
            queue = self._queues.get(key)
            idle = queue is None
            if idle:
                queue = self._queues[key] = collections.deque()
            queue.append((fn, future))
        if idle:
            self._pool.submit(self._drain, key)
        return future

    def busy_keys(self) -> list[str]:
        with self._lock:
            return list(self._queues)

    def cancel_pending(self) -> None:
        """Cancel the tasks not started yet (their futures report cancellation)."""
        with self._lock:
            pending = [future for queue in self._queues.values() for _, future in queue]
        for future in pending:
            future.cancel()

    def _drain(self, key: str) -> None:
        while True:
            with self._lock:
                queue = self._queues[key]
                if not queue:
                    del self._queues[key]
                    return
                fn, future = queue.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as e:  # noqa: B036 - handed to whoever waits on the future
                future.set_exception(e)


class Agent:
    """One KVM host agent: config, driver, MN connection and command execution."""

    def __init__(self, config: AgentConfig, driver: Driver | None = None) -> None:
        self.config = config
        os.makedirs(config.state_dir, exist_ok=True)
        self.driver = driver if driver is not None else load_driver(config.driver, config)
        self.routes: dict[str, Route] = all_routes(testing=self.driver.name == "simulated")
        self._connect_path = os.path.join(config.state_dir, CONNECT_FILE)
        self._connection: dict[str, Any] = self._load_connection()
        self._commands = ThreadPoolExecutor(max_workers=max(1, config.workers_threads),
                                            thread_name_prefix="kvmagent-cmd")
        self._serial = SerialPerKey(self._commands)
        self._delivery = ThreadPoolExecutor(max_workers=DELIVERY_THREADS, thread_name_prefix="kvmagent-post")
        self._closed = False
        self.driver.watch(self._vm_changed_by_itself)

    # -- the MN connection --------------------------------------------------------------

    @property
    def host_uuid(self) -> str | None:
        return self._connection.get("hostUuid")

    @property
    def send_command_url(self) -> str | None:
        return self._connection.get("sendCommandUrl")

    @property
    def management_nodes(self) -> list[str]:
        return list(self._connection.get("managementNodes") or [])

    def connected(self, host_uuid: str, send_command_url: str, management_nodes: list[str]) -> None:
        """Remember (on disk too) the MN that sent ``/host/connect``."""
        self._connection = {"hostUuid": host_uuid, "sendCommandUrl": send_command_url,
                            "managementNodes": list(management_nodes)}
        _write_json_atomically(self._connect_path, self._connection)
        log.info("connected as host %s, reporting to %s", host_uuid, send_command_url)

    def _load_connection(self) -> dict[str, Any]:
        try:
            with open(self._connect_path) as f:
                data = json.load(f)
            return data if isinstance(data, dict) else {}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            log.error("ignoring unreadable %s: %s", self._connect_path, e)
            return {}

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Tell the MN we restarted, if one ever connected us."""
        if self.host_uuid:
            log.info("agent restarted as host %s, asking the MN to reconnect", self.host_uuid)
            self.report(RECONNECT_ME, {"hostUuid": self.host_uuid, "reason": "agent restarted"})

    def close(self, wait: bool = True) -> None:
        """Stop taking commands, finish the running ones (and their callbacks), close the driver."""
        if self._closed:
            return
        self._closed = True
        if not wait:
            self._serial.cancel_pending()
        self._commands.shutdown(wait=wait, cancel_futures=not wait)
        self._delivery.shutdown(wait=wait, cancel_futures=not wait)
        self.driver.close()

    # -- commands -----------------------------------------------------------------------

    def execute(self, path: str, cmd: dict[str, Any]) -> dict[str, Any]:
        """Run the command now in this thread; the full response (never raises)."""
        route = self.routes[path]
        try:
            result = route.handler(self, cmd) or {}
        except (DriverError, CommandError) as e:
            log.warning("%s failed: %s", path, e)
            return {"success": False, "error": str(e) or type(e).__name__}
        except Exception as e:
            log.error("%s failed unexpectedly:\n%s", path, traceback.format_exc())
            return {"success": False, "error": f"{type(e).__name__}: {e}"}
        return {"success": True, "error": "", **result}

    def submit(self, path: str, cmd: dict[str, Any]) -> Future:
        """Run the command on the command threads, after earlier ones for the same VM;
        a future of its response."""
        route = self.routes[path]
        return self._serial.submit(route.vm_uuid(cmd), lambda: self.execute(path, cmd))

    def run_sync(self, path: str, cmd: dict[str, Any]) -> dict[str, Any]:
        """The response of a command asked synchronously: quick ones and those of no
        VM run in this thread, the others wait their turn behind the VM's earlier commands."""
        route = self.routes[path]
        if route.quick or route.vm_uuid(cmd) is None:
            return self.execute(path, cmd)
        return self.submit(path, cmd).result()

    def run_async(self, path: str, cmd: dict[str, Any], task_uuid: str, callback_url: str) -> None:
        """Run the command (quick ones in this thread, others on the command threads),
        then POST its response to ``callback_url`` with header ``taskuuid``."""
        headers = {"taskuuid": task_uuid}
        if self.routes[path].quick:
            self._post_in_background(callback_url, self.execute(path, cmd), headers)
            return

        def send(done: Future) -> None:
            try:
                response = done.result()
            except BaseException as e:  # cancelled at shutdown
                response = {"success": False, "error": f"agent stopped before running the command: {e!r}"}
            self._post_in_background(callback_url, response, headers)

        self.submit(path, cmd).add_done_callback(send)

    # -- talking to the MN --------------------------------------------------------------

    def report(self, commandpath: str, body: dict[str, Any]) -> Future | None:
        """POST ``body`` to the MN's sendCommandUrl with header ``commandpath``, in the
        background with retries; None when no MN ever connected us."""
        url = self.send_command_url
        if not url:
            log.warning("not connected to an MN, dropping report %s %s", commandpath, body)
            return None
        return self._post_in_background(url, body, {"commandpath": commandpath})

    def _post_in_background(self, url: str, body: dict[str, Any], headers: dict[str, str]) -> Future | None:
        try:
            return self._delivery.submit(callback.post_with_retries, url, body, headers,
                                         retries=self.config.callback_retries,
                                         interval=self.config.callback_retry_interval,
                                         alternatives=lambda: callback.same_path_on(url, self.management_nodes))
        except RuntimeError:  # the pool is shut down: we are exiting
            log.error("agent stopping, cannot POST %s to %s", headers, url)
            return None

    def _vm_changed_by_itself(self, vm_uuid: str, state: str) -> None:
        if not self.host_uuid:
            log.warning("vm %s is now %s but no MN connected us; not reported", vm_uuid, state)
            return
        self.report(REPORT_VM_STATE, {"hostUuid": self.host_uuid, "vmUuid": vm_uuid, "vmState": state})


def _write_json_atomically(path: str, data: Any) -> None:
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
