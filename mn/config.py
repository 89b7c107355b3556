"""Settings of one management node.

Every setting has an environment variable (``ZSTACK_<NAME>``) and a
``zstack-ctl`` option; explicit arguments win over the environment, the
environment over the defaults. The defaults are the embedded mode of
``make run``: SQLite under ``./var``, the in-process ``memory://`` bus and
REST on 127.0.0.1:8080.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from pathlib import Path

ENV_PREFIX = "ZSTACK_"


@dataclasses.dataclass(frozen=True)
class Settings:
    port: int = 8080
    #: Address the HTTP server binds to.
    bind: str = "127.0.0.1"
    #: Address other MNs and agents use to reach this MN (callback URLs).
    node_ip: str = "127.0.0.1"
    var_dir: Path = Path("var")
    #: Empty means SQLite at ``<var_dir>/zstack.db``.
    db_url: str = ""
    bus_url: str = "memory://"
    #: Seconds between two heartbeats of this MN.
    heartbeat_interval: float = 2.0
    #: A peer whose heartbeat did not move for this many of our own
    #: successful heartbeats is declared dead and fenced.
    heartbeat_misses: int = 3
    #: Threads that run blocking database work; the only threads whose
    #: number grows with load (see mn/README.md).
    db_threads: int = 8
    #: Default timeout of a bus call, in seconds.
    call_timeout: float = 60.0
    #: Extra service classes ("module:Class", comma separated) loaded beside
    #: the ``zstack.services`` entry points; used by tests and development.
    services: str = ""
    #: Extra directories of flow chain XML (``os.pathsep`` separated), loaded
    #: beside the repository's ``flows/``; used by tests and development.
    flow_dirs: str = ""
    log_level: str = "INFO"
    #: Port of the KVM agents on their hosts (ZStack's KVMGlobalProperty.AGENT_PORT).
    kvm_agent_port: int = 7070
    #: A directory of Ansible ``host_vars`` files (``<managementIp>.yml``) with
    #: per-host deployment variables (the test bed's install and state dirs).
    ansible_host_vars_dir: str = ""
    #: The agent source tree to package and deploy (default: this project's ``agents/``).
    kvm_agent_source: str = ""

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{(self.var_dir / 'zstack.db').resolve()}"

    @property
    def host_name(self) -> str:
        return self.node_ip or socket.gethostname()

    @property
    def callback_url(self) -> str:
        """Where agents POST their results (ZStack's path)."""
        return f"http://{self.node_ip}:{self.port}/zstack/asyncrest/callback"

    @property
    def send_command_url(self) -> str:
        """Where agents POST commands of their own (ZStack's path)."""
        return f"http://{self.node_ip}:{self.port}/zstack/asyncrest/sendcommand"

    @classmethod
    def from_env(cls, environ: dict | None = None, **overrides) -> "Settings":
        """Build settings from ``ZSTACK_*`` variables and explicit overrides.

        Overrides whose value is None are ignored, so CLI options that were not
        given fall through to the environment.
        """
        environ = os.environ if environ is None else environ
        values = {}
        for field in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + field.name.upper())
            if raw is not None and raw != "":
                values[field.name] = _coerce(field, raw)
        for name, value in overrides.items():
            if value is not None:
                values[name] = _coerce(cls.__dataclass_fields__[name], value)
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment that rebuilds these settings in a child process."""
        return {
            ENV_PREFIX + f.name.upper(): str(getattr(self, f.name))
            for f in dataclasses.fields(self)
        }


def _coerce(field: dataclasses.Field, value):
    kind = field.type if isinstance(field.type, str) else field.type.__name__
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "Path":
        return Path(value)
    return str(value)
