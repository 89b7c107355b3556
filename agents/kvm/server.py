"""The agent's HTTP face: a falcon WSGI app speaking ZStack's kvmagent protocol.

Served by gunicorn with one ``gthread`` worker, because the agent's state
(VM records, per-VM queues, pending callbacks) lives in one process. A command
with ``taskuuid`` and ``callbackurl`` headers is answered ``{}`` at once and
its response POSTed to ``callbackurl`` later; any other is answered with its
response. See ``agents/kvm/PROTOCOL.md``.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
import threading
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import falcon
from gunicorn.app.base import BaseApplication

from agents.kvm.agent import Agent
from agents.kvm.config import AgentConfig, default_config_file
from agents.kvm.handlers import Route

log = logging.getLogger(__name__)

TASK_UUID_HEADER = "taskuuid"
CALLBACK_URL_HEADER = "callbackurl"


class KvmAgentApp(falcon.App):
    """The falcon app of one :class:`Agent` (reachable as ``app.agent``)."""

    def __init__(self, agent: Agent) -> None:
        super().__init__(media_type=falcon.MEDIA_JSON)
        self.agent = agent
        self.req_options.strip_url_path_trailing_slash = True
        for path, route in agent.routes.items():
            resource = EchoResource() if path == "/host/echo" else CommandResource(agent, path, route)
            self.add_route(path, resource)


class EchoResource:
    """``/host/echo``: the MN's "are you up" probe, answered ``{}`` whatever was sent."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.text = "{}"

    on_post = on_get


class CommandResource:
    """One command path: parses the JSON command and runs it sync or async."""

    def __init__(self, agent: Agent, path: str, route: Route) -> None:
        self.agent = agent
        self.path = path
        self.route = route

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        cmd = _json_object(req)
        task_uuid = req.get_header(TASK_UUID_HEADER)
        callback_url = req.get_header(CALLBACK_URL_HEADER)
        try:
            if task_uuid and callback_url and not self.route.sync_only:
                self.agent.run_async(self.path, cmd, task_uuid, callback_url)
                resp.text = "{}"
                return
            response = self.agent.run_sync(self.path, cmd)
        except RuntimeError as e:  # the command pool is shut down
            raise falcon.HTTPServiceUnavailable(description=f"agent is stopping: {e}") from None
        resp.text = json.dumps(response)


def _json_object(req: falcon.Request) -> dict[str, Any]:
    raw = req.bounded_stream.read()
    if not raw.strip():
        return {}  # a command without fields (vmsync, capacity) may come with no body
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise falcon.HTTPBadRequest(title="Bad request", description="the body is not JSON") from None
    if not isinstance(body, dict):
        raise falcon.HTTPBadRequest(title="Bad request", description="the body is not a JSON object")
    return body


def create_app(config: AgentConfig, agent: Agent | None = None) -> KvmAgentApp:
    """The WSGI app of a new, started :class:`Agent` for ``config`` (or of ``agent``)."""
    if agent is None:
        agent = Agent(config)
        agent.start()
    return KvmAgentApp(agent)


def wsgi_app(config_file: str | None = None) -> KvmAgentApp:
    """Entry for a plain ``gunicorn 'agents.kvm.server:wsgi_app()'`` (one worker!)."""
    config = AgentConfig.load(config_file or default_config_file())
    configure_logging(config)
    return create_app(config)


# -- gunicorn -------------------------------------------------------------------------------


class AgentApplication(BaseApplication):
    """gunicorn serving the agent: one gthread worker, pid file and log from the config."""

    #: Seconds gunicorn gives running commands and pending callbacks at shutdown.
    GRACEFUL_TIMEOUT = 60

    def __init__(self, config: AgentConfig) -> None:
        self.agent_config = config
        self.app: KvmAgentApp | None = None
        super().__init__()

    def gunicorn_options(self) -> dict[str, Any]:
        c = self.agent_config
        host = f"[{c.host}]" if ":" in c.host else c.host
        return {
            "bind": [f"{host}:{c.port}"],
            "workers": 1,
            "worker_class": "gthread",
            "threads": max(1, c.http_threads),
            "pidfile": c.pid_file,
            "errorlog": c.log_file,
            "loglevel": "info",
            "proc_name": "zstack-kvmagent",
            # The app (its threads, the driver's connections) is made in the
            # worker, after the fork.
            "preload_app": False,
            "timeout": 120,
            "graceful_timeout": self.GRACEFUL_TIMEOUT,
            "worker_exit": self._worker_exit,
            # gunicorn >= 25.1 opens a control socket at one per-user path by
            # default: several agents (simulated hosts) on a machine would fight
            # over it, and the agent is managed by signals anyway.
            "control_socket_disable": True,
        }

    def load_config(self) -> None:
        for key, value in self.gunicorn_options().items():
            if key in self.cfg.settings:  # older gunicorn lacks some settings
                self.cfg.set(key, value)

    def load(self) -> KvmAgentApp:
        self.app = create_app(self.agent_config)
        return self.app

    def _worker_exit(self, server, worker) -> None:
        if self.app is not None:
            self.app.agent.close()


def configure_logging(config: AgentConfig, to_stderr: bool | None = None) -> None:
    """Send the agent's logs to its log file (and stderr when it is a terminal)."""
    root = logging.getLogger()
    if any(getattr(h, "_kvmagent", False) for h in root.handlers):
        return
    os.makedirs(os.path.dirname(config.log_file) or ".", exist_ok=True)
    formatter = logging.Formatter("%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s")
    # Watched: logrotate may move the file under us.
    handlers: list[logging.Handler] = [logging.handlers.WatchedFileHandler(config.log_file)]
    if to_stderr if to_stderr is not None else sys.stderr.isatty():
        handlers.append(logging.StreamHandler())
    for handler in handlers:
        handler.setFormatter(formatter)
        handler._kvmagent = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(logging.INFO)


# -- in-process serving, for tests ----------------------------------------------------------


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class ThreadedAgentServer:
    """An agent served from a thread of this process (tests: many hosts, no processes).

    ``with ThreadedAgentServer(config) as server: server.url, server.agent``.
    Port 0 in ``config`` picks a free port."""

    def __init__(self, config: AgentConfig) -> None:
        self.app = create_app(config)
        self.agent = self.app.agent
        self._httpd = make_server(config.host, config.port, self.app, server_class=_ThreadingWSGIServer,
                                  handler_class=_QuietHandler)
        self.port = self._httpd.server_address[1]
        config.port = self.port
        self.url = f"http://{config.host}:{self.port}"
        # A short poll keeps close() quick; shutdown waits for the next poll.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"kvmagent-{self.port}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
        self.agent.close()

    def __enter__(self) -> "ThreadedAgentServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["Agent", "AgentApplication", "KvmAgentApp", "ThreadedAgentServer", "configure_logging", "create_app",
           "wsgi_app"]
