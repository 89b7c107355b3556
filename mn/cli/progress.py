"""The spinner shown on stderr while an API job runs.

It draws only when stderr is a terminal, so scripts and pipes see nothing
but the result. It needs no thread: the client's waits between polls are
where it turns (:meth:`Spinner.wait`).
"""

from __future__ import annotations

import time
from typing import Callable, TextIO

FRAMES = "|/-\\"
#: How often the spinner moves while waiting for the next poll.
FRAME_INTERVAL = 0.1


class Spinner:
    """``with Spinner(label, stream) as spin: client.call(..., wait=spin.wait)``."""

    def __init__(self, label: str, stream: TextIO, *, enabled: bool | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.label = label
        self.stream = stream
        self.enabled = _is_tty(stream) if enabled is None else enabled
        self.clock = clock
        self.sleep = sleep
        self.started = clock()
        self.frame = 0
        self.drawn = False

    def __enter__(self) -> "Spinner":
        self.started = self.clock()
        return self

    def __exit__(self, *exc_info) -> None:
        self.clear()

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, turning the spinner meanwhile."""
        if not self.enabled:
            self.sleep(seconds)
            return
        deadline = self.clock() + seconds
        while True:
            self.draw()
            left = deadline - self.clock()
            if left <= 0:
                return
            self.sleep(min(FRAME_INTERVAL, left))

    def draw(self) -> None:
        elapsed = self.clock() - self.started
        self.stream.write(f"\r{FRAMES[self.frame % len(FRAMES)]} {self.label} {elapsed:.1f}s")
        self.stream.flush()
        self.frame += 1
        self.drawn = True

    def clear(self) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.drawn = False


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
