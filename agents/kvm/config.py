"""The agent's settings: an INI file's ``[kvmagent]`` section, then the environment.

Every key can be overridden by ``ZSTACK_KVMAGENT_<KEY>`` (upper case), which
is how tests and containers tweak a deployed config without rewriting it.
"""

from __future__ import annotations

import configparser
import dataclasses
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

log = logging.getLogger(__name__)

SECTION = "kvmagent"
ENV_PREFIX = "ZSTACK_KVMAGENT_"
#: Where ``zstack-kvmagent`` looks for its config when not told (and
#: ``ZSTACK_KVMAGENT_CONFIG`` is unset); a missing file means all defaults.
DEFAULT_CONFIG_FILE = "/etc/zstack/kvmagent.ini"


class ConfigError(ValueError):
    """A setting that cannot be parsed."""


@dataclass
class AgentConfig:
    """Settings of one ``zstack-kvmagent``; see ``agents/kvm/README.md`` for each key."""

    host: str = "0.0.0.0"
    port: int = 7070
    driver: str = "libvirt"
    state_dir: str = "/var/lib/zstack/kvmagent"
    #: Empty means ``<state_dir>/kvmagent.log``.
    log_file: str = ""
    #: Empty means ``<state_dir>/kvmagent.pid``.
    pid_file: str = ""
    #: The agent package checksum the deployer wrote; ``/host/ping`` reports it.
    version: str = "dev"
    callback_retries: int = 5
    #: Seconds before the first retry of a callback or report, doubling after.
    callback_retry_interval: float = 1.0
    #: Threads running commands (HTTP threads only parse and answer).
    workers_threads: int = 32
    #: Threads of gunicorn's gthread worker serving HTTP requests.
    http_threads: int = 16
    libvirt_uri: str = "qemu:///system"
    vm_watch_interval: float = 2.0
    #: libvirt driver: ``kvm`` or ``qemu`` (TCG); empty means found out from the host.
    virt_type: str = ""
    #: libvirt driver: ``virtio`` or ``scsi`` (virtio-scsi) for data volumes.
    data_volume_bus: str = "virtio"
    #: libvirt driver: seconds a guest gets to release a detached disk.
    volume_detach_timeout: float = 10.0
    #: Seconds each VM operation of the simulated driver takes.
    simulated_delay: float = 0.0
    #: 0 means the real machine's figure.
    simulated_cpu_num: int = 0
    #: Bytes; 0 means the real machine's figure.
    simulated_memory: int = 0
    #: Bytes of every local storage; 0 means the real file system's figures.
    simulated_storage_capacity: int = 0
    #: Command paths (``/vm/start``) or volume/storage paths whose operations fail.
    simulated_fail_paths: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.log_file:
            self.log_file = os.path.join(self.state_dir, "kvmagent.log")
        if not self.pid_file:
            self.pid_file = os.path.join(self.state_dir, "kvmagent.pid")

    @property
    def local_url(self) -> str:
        """The URL the agent answers at from this machine (a wildcard bind means loopback)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @classmethod
    def load(cls, path: str | os.PathLike | None = None,
             environ: Mapping[str, str] | None = None) -> "AgentConfig":
        """The file's ``[kvmagent]`` settings (a missing ``path`` is an error,
        ``None`` means none) overridden by ``ZSTACK_KVMAGENT_*`` variables."""
        environ = os.environ if environ is None else environ
        raw: dict[str, str] = {}
        if path is not None:
            parser = configparser.ConfigParser(interpolation=None)
            try:
                if not parser.read(path):
                    raise ConfigError(f"cannot read config file {path}")
            except configparser.Error as e:
                raise ConfigError(f"bad config file {path}: {e}") from None
            if parser.has_section(SECTION):
                raw.update(parser.items(SECTION))
        known = {f.name: f for f in dataclasses.fields(cls)}
        for key in list(raw):
            if key not in known:
                # A newer deployer may write keys this agent does not know yet.
                log.warning("ignoring unknown setting %r in %s", key, path)
                del raw[key]
        for name in known:
            value = environ.get(ENV_PREFIX + name.upper())
            if value is not None:
                raw[name] = value
        return cls(**{name: _parse(known[name], value) for name, value in raw.items()})

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def default_config_file(environ: Mapping[str, str] | None = None) -> str | None:
    """``ZSTACK_KVMAGENT_CONFIG``, else :data:`DEFAULT_CONFIG_FILE` if it exists, else None."""
    environ = os.environ if environ is None else environ
    if environ.get(ENV_PREFIX + "CONFIG"):
        return environ[ENV_PREFIX + "CONFIG"]
    return DEFAULT_CONFIG_FILE if os.path.exists(DEFAULT_CONFIG_FILE) else None


def _parse(f: dataclasses.Field, value: str) -> Any:
    # Field types are strings (postponed annotations); these four are all we use.
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    value = value.strip()
    try:
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind.startswith("list"):
            return [item.strip() for item in value.split(",") if item.strip()]
    except ValueError:
        raise ConfigError(f"setting {f.name}: {value!r} is not a valid {kind}") from None
    return value
