"""Run one MN under gunicorn: one master, one uvicorn (asyncio) worker.

The worker is the MN; the master only supervises it. The worker is bound to
the master's life (``PR_SET_PDEATHSIG``): ``kill -9`` of the master takes
the MN down with it, as a crash of the MN must. An MN fenced by its peers
stops the master, so gunicorn does not respawn a node that was declared dead.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal

from gunicorn.app.base import BaseApplication
from uvicorn_worker import UvicornWorker

from mn.config import Settings
from mn.node import ManagementNode

PR_SET_PDEATHSIG = 1
LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


class MNWorker(UvicornWorker):
    # lifespan "on": a failed MN start-up fails the worker, and so the server.
    CONFIG_KWARGS = {"loop": "asyncio", "http": "auto", "lifespan": "on", "access_log": False}


def _die_with_master(server, worker) -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != worker.ppid:  # the master died before prctl took effect
        os._exit(1)


def _stop_master() -> None:
    os.kill(os.getppid(), signal.SIGTERM)


class MNServer(BaseApplication):
    def __init__(self, settings: Settings):
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        self.cfg.set("bind", [f"{s.bind}:{s.port}"])
        self.cfg.set("workers", 1)
        self.cfg.set("worker_class", f"{MNWorker.__module__}.{MNWorker.__qualname__}")
        self.cfg.set("timeout", 120)
        self.cfg.set("graceful_timeout", 30)
        self.cfg.set("keepalive", 75)
        self.cfg.set("pidfile", str((s.var_dir / "mn.pid").resolve()))
        self.cfg.set("proc_name", f"zstack-mn:{s.port}")
        self.cfg.set("post_fork", _die_with_master)
        self.cfg.set("loglevel", s.log_level.lower())
        # gunicorn's control socket defaults to one path per user, which
        # several MNs on one machine would fight over; zstack-ctl is ours.
        self.cfg.set("control_socket_disable", True)

    def load(self):
        from mn.web.app import create_app

        logging.basicConfig(level=self.settings.log_level.upper(), format=LOG_FORMAT)
        # One line per agent ping at INFO would drown what matters.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        return create_app(ManagementNode(self.settings, exit_process=_stop_master))


def serve(settings: Settings) -> None:
    """Run in the foreground until stopped."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    MNServer(settings).run()
