"""What every check shares: the Problem it reports, the registry, the context it reads.

A check is a function ``fn(ctx) -> Iterable[Problem]`` registered with
:func:`check`; its docstring is its rule, shown by ``zstack-ctl check``.
It only reads the database (``ctx.session``), so it needs no running MN.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mn.db.models.global_config import GlobalConfigVO
from mn.globalconfig import GlobalConfig, values


@dataclasses.dataclass(frozen=True)
class Problem:
    """One broken invariant: which check found it, on which row, and what is wrong (with figures)."""

    check: str
    resource_type: str
    resource_uuid: str
    details: str

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Check:
    """A registered check: its name, its rule (the function's docstring) and the function."""

    name: str
    doc: str
    fn: Callable[["CheckContext"], Iterable[Problem]]

    @property
    def summary(self) -> str:
        """The first line of the rule."""
        return self.doc.strip().splitlines()[0] if self.doc.strip() else self.name


#: Every check, in the order they run and are reported.
CHECKS: list[Check] = []


def check(name: str) -> Callable:
    """Register ``fn(ctx)`` as the check ``name``; its docstring is the rule it enforces."""

    def register(fn: Callable[["CheckContext"], Iterable[Problem]]):
        if any(existing.name == name for existing in CHECKS):
            raise ValueError(f"a check named {name!r} is already registered")
        CHECKS.append(Check(name, fn.__doc__ or "", fn))
        return fn

    return register


@dataclasses.dataclass
class CheckContext:
    """What the checks read: the session, the time the run counts as now, and options.

    ``transition_timeout`` is in seconds; None means the ``api/timeout``
    global config as stored in the database. ``strict_storage`` says that
    primary storage whose initial capacity was given by its creator
    (SimulatorPrimaryStorage) started empty, so any use beyond its volumes
    is a leak.
    """

    session: Session
    now: datetime
    transition_timeout: float | None = None
    strict_storage: bool = False
    _config_cache: dict[tuple[str, str], Any] = dataclasses.field(default_factory=dict)

    def config(self, entry: GlobalConfig) -> Any:
        """``entry``'s value as stored in GlobalConfigVO, or its default.

        Read from the database rather than ``entry.value``: this process is
        not an MN and its registry holds defaults only. A stored text that
        is not valid counts as the default, as the MNs read it.
        """
        key = (entry.category, entry.name)
        if key not in self._config_cache:
            text = self.session.scalar(select(GlobalConfigVO.value).where(
                GlobalConfigVO.category == entry.category, GlobalConfigVO.name == entry.name))
            try:
                if text is None:
                    raise ValueError("not stored")
                value = values.convert(entry.value_type, text)
                entry.check(value)
            except ValueError:
                value = entry.default
            self._config_cache[key] = value
        return self._config_cache[key]

    def older_than_timeout(self) -> tuple[datetime, float]:
        """The cut-off date of transitional states and the timeout it comes from (seconds)."""
        from mn.api.jobs import JOB_TIMEOUT

        seconds = self.transition_timeout
        if seconds is None:
            seconds = float(self.config(JOB_TIMEOUT))
        return self.now - timedelta(seconds=seconds), seconds


def naive_utc(moment: datetime) -> datetime:
    """``moment`` as the naive UTC datetime the database stores."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment
