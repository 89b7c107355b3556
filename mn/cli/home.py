"""What the CLI keeps in the user's home: sessions and API catalogues.

``~/.zstack/cli/session`` maps each server URL to the session uuid of the
last login there (mode 0600: a session is as good as a password until it
expires); ``~/.zstack/cli/apis/<server>.json`` is the API catalogue read from
that server's OpenAPI document, so a call needs one HTTP round trip, not two.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

#: Where everything lives, under the user's home directory.
CLI_DIR = Path(".zstack") / "cli"
SESSION_FILE = "session"
CATALOG_DIR = "apis"


def normalize_server(server: str) -> str:
    """``host:port`` or ``http://host:port/`` -> ``http://host:port`` (the key of everything)."""
    server = server.strip().rstrip("/")
    if "://" not in server:
        server = "http://" + server
    return server


class CliHome:
    """The CLI's directory; ``root`` defaults to ``~/.zstack/cli``."""

    def __init__(self, root: Path | None = None):
        self.root = root if root is not None else Path.home() / CLI_DIR

    # -- sessions -------------------------------------------------------------

    def session(self, server: str) -> str | None:
        return self._sessions().get(normalize_server(server))

    def save_session(self, server: str, session_uuid: str) -> None:
        sessions = self._sessions()
        sessions[normalize_server(server)] = session_uuid
        self._write(self.root / SESSION_FILE, sessions)

    def clear_session(self, server: str) -> None:
        sessions = self._sessions()
        if sessions.pop(normalize_server(server), None) is not None:
            self._write(self.root / SESSION_FILE, sessions)

    def _sessions(self) -> dict[str, str]:
        data = self._read(self.root / SESSION_FILE)
        return data if isinstance(data, dict) else {}

    # -- API catalogues -----------------------------------------------------------

    def catalog_path(self, server: str) -> Path:
        name = re.sub(r"[^A-Za-z0-9.-]+", "_", normalize_server(server))
        return self.root / CATALOG_DIR / f"{name}.json"

    def cached_catalog(self, server: str) -> Any:
        return self._read(self.catalog_path(server))

    def save_catalog(self, server: str, data: Any) -> None:
        self._write(self.catalog_path(server), data)

    # -- files ------------------------------------------------------------------------

    @staticmethod
    def _read(path: Path) -> Any:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None  # missing or damaged: as if never written

    def _write(self, path: Path, data: Any) -> None:
        """Replace ``path`` atomically; the file is 0600 from its first byte."""
        path.parent.mkdir(parents=True, exist_ok=True)
        for directory in (self.root, path.parent):
            os.chmod(directory, 0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(data, out)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
