"""POSTing JSON to the MN (command callbacks, reports), retried within a bound.

Only the standard library is used so that the agent needs nothing on a host
but falcon and gunicorn. Environment proxies are ignored: an agent talks to
its MN directly.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Iterable, Mapping

log = logging.getLogger(__name__)

#: Seconds one POST may take before it counts as a connection failure.
POST_TIMEOUT = 30.0

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class PostError(Exception):
    """A POST that failed; ``retryable`` tells whether trying again may help."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def post_json(url: str, body: Any, headers: Mapping[str, str] | None = None,
              timeout: float = POST_TIMEOUT) -> int:
    """POST ``body`` as JSON; the HTTP status (2xx-4xx) or :class:`PostError`."""
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as e:
        e.close()
        if e.code >= 500:
            raise PostError(f"{url} answered {e.code}", retryable=True) from None
        # A 4xx will be the same next time: the MN does not want this.
        raise PostError(f"{url} answered {e.code}", retryable=False) from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise PostError(f"cannot reach {url}: {reason}", retryable=True) from None


def same_path_on(url: str, bases: Iterable[str]) -> list[str]:
    """``url``'s path and query on each other MN of ``bases`` (``http://ip:port``):
    where a callback can go when its own MN is gone."""
    parts = urllib.parse.urlsplit(url)
    tail = urllib.parse.urlunsplit(("", "", parts.path, parts.query, ""))
    own = f"{parts.scheme}://{parts.netloc}"
    return [base.rstrip("/") + tail for base in bases if base.rstrip("/") != own]


def post_with_retries(url: str, body: Any, headers: Mapping[str, str] | None = None, *,
                      retries: int = 5, interval: float = 1.0,
                      sleep: Callable[[float], None] = time.sleep, timeout: float = POST_TIMEOUT,
                      alternatives: Callable[[], list[str]] | None = None) -> bool:
    """POST once plus up to ``retries`` more times on connection errors and 5xx,
    waiting ``interval`` seconds before the first retry and doubling it after.
    When ``url`` cannot be reached, each of ``alternatives()`` (the same path on
    the other MNs) is tried before waiting: any MN hands the body to the one
    that waits for it. True once delivered; False (logged) when given up."""
    wait = interval
    for attempt in range(retries + 1):
        try:
            post_json(url, body, headers, timeout=timeout)
            return True
        except PostError as e:
            if e.retryable and alternatives is not None:
                for other in alternatives():
                    try:
                        post_json(other, body, headers, timeout=timeout)
                        log.info("%s unreachable (%s): delivered to %s instead", url, e, other)
                        return True
                    except PostError as other_error:
                        log.debug("alternative %s failed too: %s", other, other_error)
            if not e.retryable or attempt == retries:
                log.error("giving up POST to %s (headers %s) after %d attempt(s): %s",
                          url, dict(headers or {}), attempt + 1, e)
                return False
            log.warning("POST to %s failed (%s), retrying in %gs", url, e, wait)
            sleep(wait)
            wait *= 2
    return False  # unreachable; keeps type checkers content
