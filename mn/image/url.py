"""Which URLs an image may be added from (ZStack's ImageApiInterceptor).

A URL starts with one of ZStack's protocols; a bare absolute path means a
file on the backup storage's host (``/a/b`` -> ``file:///a/b``), which must
pass the local path filters of :mod:`mn.image.config` (by default the
blacklist of system and hidden directories). Patterns are Ant-style, as
ZStack's AntPathMatcher: ``*`` is any text within one path segment, ``**``
any number of segments.
"""

from __future__ import annotations

import functools
import re

from mn.errors import OperationError, SysErrors
from mn.image.config import LOCAL_PATH_BLACKLIST, LOCAL_PATH_CUSTOM_FILTER, LOCAL_PATH_WHITELIST

#: Protocols ZStack accepts for AddImage. ``upload://`` (the client uploads
#: the file later) and ``zstore://`` need a real backup storage agent.
DOWNLOAD_PROTOCOLS = ("http://", "https://", "ftp://", "sftp://", "file:///")
AGENT_ONLY_PROTOCOLS = ("upload://", "zstore://")


def _invalid(details: str) -> OperationError:
    return OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR, details)


def normalize_image_url(url: str) -> str:
    """The URL to store for an AddImage ``url``; OperationError SYS.1007 if it may not be used."""
    url = url.strip()
    if url.startswith("/"):
        url = f"file://{url}"
    if url.startswith(AGENT_ONLY_PROTOCOLS):
        raise _invalid(f"url {url.split('://')[0]}://... needs a backup storage agent; the simulated backup "
                       f"storage downloads only from {', '.join(DOWNLOAD_PROTOCOLS)} or '/'")
    if not url.startswith(DOWNLOAD_PROTOCOLS):
        raise _invalid("url must starts with 'file:///', 'http://', 'https://', 'ftp://', 'sftp://' or '/'")
    if url.startswith("file://"):
        check_local_path(url[len("file://"):])
    return url


def check_local_path(path: str) -> None:
    """ZStack's local path filters: each filter named in ``download.localPath.customFilter`` applies."""
    if not path.startswith("/"):
        raise _invalid(f"absolute path must be used: {path}")
    for name in LOCAL_PATH_CUSTOM_FILTER.value.split(";"):
        if name == "blacklist":
            blacklist = LOCAL_PATH_BLACKLIST.value
            if any(ant_match(p, path) for p in _patterns(blacklist)):
                raise _invalid(f"image path [{path}] is in black list {blacklist}")
        elif name == "whitelist":
            whitelist = LOCAL_PATH_WHITELIST.value
            if not _patterns(whitelist):
                raise _invalid("all images on this server cannot be used")
            if not any(ant_match(p, path) for p in _patterns(whitelist)):
                raise _invalid(f"image path is not in white list: {whitelist}")


def _patterns(value: str) -> list[str]:
    return [p for p in value.split(";") if p.strip()]


def ant_match(pattern: str, path: str) -> bool:
    """Whether ``path`` matches the Ant-style ``pattern`` (``/etc/**`` matches ``/etc``
    and everything under it; ``/**/.*/**`` any path with a hidden segment)."""
    return _ant_regex(pattern).fullmatch(path) is not None


@functools.lru_cache(maxsize=256)
def _ant_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    for segment in pattern.strip("/").split("/"):
        if segment == "**":
            parts.append("(?:/[^/]*)*")
        else:
            body = "".join("[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch) for ch in segment)
            parts.append("/" + body)
    return re.compile("".join(parts) + "/?")
