"""What a garbage collection job does: a GarbageCollector subclass.

A job is a deferred cleanup that may fail for a while (delete a volume on a
host that is down). Its runner class says how to try once; the manager
stores the job, retries it on a timer with growing delays and at once on the
bus events the class names, until ``collect`` returns.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from mn.bus import Event

if TYPE_CHECKING:
    from mn.node import ManagementNode


@dataclass
class GCContext:
    """What one run of a job knows besides its own context."""

    #: The management node running the job (``node.db``, ``node.bus``...).
    node: "ManagementNode | Any"
    #: The job's GarbageCollectorVO uuid and name.
    uuid: str
    name: str
    #: Failed runs before this one.
    retries: int
    #: The bus event that triggered this run, or None for a timer run.
    trigger: Event | None = None


class GarbageCollector:
    """Base class of job runners; subclass it at module level and implement :meth:`collect`.

    The manager stores ``module:QualifiedName`` of the subclass and creates
    an instance (without arguments) for every run, on whichever MN owns the
    job then, so a runner keeps no state between runs: everything it needs
    is in the JSON context. A run may be repeated (its MN died while it ran),
    so ``collect`` must be idempotent.
    """

    #: Job name when ``submit`` gets none; defaults to the class name.
    NAME: ClassVar[str | None] = None
    #: Bus event classes that make a waiting job run at once (when
    #: :meth:`event_matches`), e.g. a host reconnecting. Empty: timer only.
    TRIGGER_EVENTS: ClassVar[tuple[type[Event], ...]] = ()
    #: Seconds before the first retry; doubled after each failure...
    RETRY_INTERVAL: ClassVar[float] = 60.0
    #: ...up to this many seconds.
    MAX_RETRY_INTERVAL: ClassVar[float] = 3600.0
    #: Seconds one run may take before it counts as failed (None: no limit).
    TIMEOUT: ClassVar[float | None] = 600.0

    async def collect(self, ctx: GCContext, context: dict[str, Any]) -> None:
        """Try once: return when the garbage is gone; raise to be retried later."""
        raise NotImplementedError(f"{type(self).__name__} must implement collect()")

    def event_matches(self, event: Event, context: dict[str, Any]) -> bool:
        """Whether ``event`` (one of TRIGGER_EVENTS) concerns this job; by default every one does."""
        return True

    @classmethod
    def retry_delay(cls, retries: int) -> float:
        """Seconds to wait after the ``retries``-th failure (1, 2, ...)."""
        # The exponent is capped: a job may fail for weeks, and 2**1100 is no float.
        return min(cls.MAX_RETRY_INTERVAL, cls.RETRY_INTERVAL * 2 ** min(max(0, retries - 1), 40))


def runner_name(runner_cls: type) -> str:
    """``module:QualifiedName``: what GarbageCollectorVO.runnerClass stores."""
    return f"{runner_cls.__module__}:{runner_cls.__qualname__}"


def resolve_runner(name: str) -> type[GarbageCollector]:
    """The runner class stored as ``name``; LookupError saying why when there is none."""
    module_name, _, qualname = name.partition(":")
    if not module_name or not qualname:
        raise LookupError(f"runner class {name!r} is not of the form module:Class")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise LookupError(f"runner class {name!r}: cannot import {module_name}: {exc}") from None
    for part in qualname.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise LookupError(f"runner class {name!r}: {module_name} has no {qualname}")
    if not (isinstance(target, type) and issubclass(target, GarbageCollector)):
        raise LookupError(f"runner class {name!r} is not a GarbageCollector subclass")
    return target
