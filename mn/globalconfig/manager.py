"""GlobalConfigManager: global config values in the database, the same on every MN.

* **Start**: insert a row (with the default) for every declared entry the
  database lacks (insert-ignore: MNs starting together all succeed), then
  read every value into memory. Reads of ``entry.value`` never touch the
  database afterwards.
* **Update**: check the value, write the row, publish
  :class:`GlobalConfigUpdatedEvent`, then re-read the row and apply it here.
* **Other MNs**: on the event, re-read that row and apply it. Re-reading
  instead of trusting the event's value makes concurrent updates converge:
  the database keeps the last write, and every MN reads it after the event
  of that write arrives, whatever order events come in.
* **Resync**: every ``resync_interval`` seconds re-read every row, so a lost
  event (a broker restart) or a change made behind our back is picked up.

Re-reads and applies are serialised by one lock: a read that starts later
is applied later, so an older read can never overwrite a newer one.
Listeners run after the lock is released (they may update entries).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, Callable, Collection

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import DBAPIError

from mn.db.models.global_config import GlobalConfigVO
from mn.errors import OperationError, SysErrors
from mn.globalconfig import values
from mn.globalconfig.definition import REGISTRY, GlobalConfig, GlobalConfigRegistry, canonical_name
from mn.globalconfig.messages import GlobalConfigUpdatedEvent

if TYPE_CHECKING:
    from mn.node import ManagementNode

log = logging.getLogger(__name__)

#: Seconds between two full re-reads of GlobalConfigVO: the longest a change
#: whose event was lost stays unseen by an MN.
DEFAULT_RESYNC_INTERVAL = 15.0
#: MariaDB may pick one of two MNs inserting the same rows as a deadlock
#: victim; the transaction is simply run again.
DEADLOCK_ATTEMPTS = 3
_RETRYABLE_MYSQL_ERRORS = (1205, 1213)  # lock wait timeout, deadlock

Key = tuple[str, str]
_TABLE = GlobalConfigVO.__table__
_INSERT_IGNORE = (insert(_TABLE)
                  .prefix_with("IGNORE", dialect="mysql")
                  .prefix_with("IGNORE", dialect="mariadb")
                  .prefix_with("OR IGNORE", dialect="sqlite"))


class GlobalConfigManager:
    """Stores the entries of ``registry`` and keeps them equal on every MN.

    ``node`` needs ``.uuid``, ``.db`` (a started :class:`~mn.db.Database`)
    and ``.bus`` (a started :class:`~mn.bus.CloudBus`) by the time
    :meth:`start` runs.
    """

    def __init__(self, node: "ManagementNode", *, registry: GlobalConfigRegistry = REGISTRY,
                 resync_interval: float = DEFAULT_RESYNC_INTERVAL):
        self.node = node
        self.registry = registry
        self.resync_interval = resync_interval
        self.started = False
        self._refresh_lock = asyncio.Lock()
        self._resync_task: asyncio.Task | None = None
        self._unsubscribe: Callable[[], None] | None = None
        # Bad stored values already logged, so a resync does not repeat them.
        self._reported: set[tuple[Key, str | None]] = set()

    # -- life cycle ---------------------------------------------------------

    async def start(self) -> None:
        """Insert missing rows, load every value, follow changes from other MNs."""
        self.registry.bind(self)
        try:
            # Subscribe first: a change made while we load is re-read after it.
            self._unsubscribe = self.node.bus.subscribe(GlobalConfigUpdatedEvent, self._on_updated)
            await self._run(_sync_definitions, list(self.registry))
            await self._refresh(None, notify=False)
        except BaseException:
            await self.stop()
            raise
        self._resync_task = asyncio.create_task(self._resync_loop(), name="global-config-resync")
        self.started = True
        log.info("global config: %d entries loaded", len(self.registry))

    async def stop(self) -> None:
        """Stop following changes; entries keep their last values."""
        self.started = False
        if self._resync_task is not None:
            self._resync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resync_task
            self._resync_task = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.registry.unbind(self)

    # -- reading and changing ---------------------------------------------------

    def get(self, category: str, name: str) -> GlobalConfig:
        """The entry; OperationError SYS.1007 if no such entry is declared."""
        entry = self.registry.find(category, name)
        if entry is None:
            raise OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR,
                                    f"unable to find {canonical_name(category, name)}")
        return entry

    def entries(self) -> list[GlobalConfig]:
        return list(self.registry)

    async def update(self, category: str, name: str, value: Any) -> GlobalConfig:
        """Set an entry from text (as the API passes it) or a typed value."""
        return await self.update_entry(self.get(category, name), value)

    async def update_entry(self, entry: GlobalConfig, value: Any) -> GlobalConfig:
        """Check ``value``, store it, tell every MN; return once it is applied here.

        A refused value raises OperationError SYS.1007 and leaves no trace.
        """
        if entry.registry is not self.registry:
            raise ValueError(f"{entry.canonical_name} belongs to another registry")
        if not self.started:
            raise OperationError.of(SysErrors.NOT_READY_ERROR,
                                    f"{entry.canonical_name} cannot be updated: the global config "
                                    "manager is not running")
        typed = entry.convert(value)
        await entry.validate(typed)
        text = values.to_text(entry.value_type, typed)
        await self._run(_write_value, _row(entry, text))
        log.info("%s set to %s", entry.canonical_name, text)
        try:
            await self.node.bus.publish(GlobalConfigUpdatedEvent(
                category=entry.category, name=entry.name, value=text, nodeUuid=self.node.uuid))
        except Exception as exc:
            # The value is stored: peers get it at their next resync.
            log.warning("could not announce the update of %s (%s); other management nodes "
                        "will see it within %gs", entry.canonical_name, exc, self.resync_interval)
        await self._refresh([(entry.category, entry.name)])
        return entry

    async def resync(self) -> int:
        """Re-read every entry now; returns how many values changed."""
        changed = await self._refresh(None)
        if changed:
            log.info("global config resync applied %d change(s) no event had brought", changed)
        return changed

    # -- keeping in step ------------------------------------------------------

    async def _on_updated(self, event: GlobalConfigUpdatedEvent) -> None:
        if event.nodeUuid == self.node.uuid:
            return  # we applied it before announcing it
        if self.registry.find(event.category, event.name) is None:
            return  # an entry this MN does not declare
        try:
            await self._refresh([(event.category, event.name)])
        except Exception as exc:
            log.warning("could not re-read %s after its update on %s (%s); the next resync will",
                        canonical_name(event.category, event.name), event.nodeUuid, exc)

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.resync_interval)
            try:
                await self.resync()
            except Exception as exc:
                log.warning("global config resync failed: %s", exc)

    async def _refresh(self, keys: Collection[Key] | None, *, notify: bool = True) -> int:
        """Re-read ``keys`` (None: every entry, inserting missing rows) and apply them."""
        if keys is None:
            entries = list(self.registry)
        else:
            found = (self.registry.find(category, name) for category, name in keys)
            entries = [entry for entry in found if entry is not None]
        changes = []
        async with self._refresh_lock:
            stored = await self._run(_read_values, entries, keys is None)
            for entry in entries:
                key = (entry.category, entry.name)
                if key not in stored:
                    continue  # row deleted by hand: the next resync puts it back
                new = self._value_of(entry, stored[key])
                if new != entry.value:
                    changes.append((entry, entry._set(new), new))
        for entry, old, new in changes:
            if notify:
                log.info("%s changed: %r -> %r", entry.canonical_name, old, new)
                await entry._notify(old, new)
        return len(changes)

    def _value_of(self, entry: GlobalConfig, text: str | None) -> Any:
        """The value a stored text stands for; the default if it is not valid now."""
        try:
            if text is None:
                raise ValueError("no value is stored")
            value = values.convert(entry.value_type, text)
            entry.check(value)
            return value
        except ValueError as exc:
            report = ((entry.category, entry.name), text)
            if report not in self._reported:
                self._reported.add(report)
                log.warning("%s: stored value %r is not valid (%s); using the default %r",
                            entry.canonical_name, text, exc, entry.default)
            return entry.default

    async def _run(self, fn, *args):
        for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
            try:
                return await self.node.db.run(fn, *args)
            except DBAPIError as exc:
                if attempt == DEADLOCK_ATTEMPTS or not _retryable(exc):
                    raise
                log.info("global config: %s, trying again", exc.orig)
                await asyncio.sleep(0.05 * attempt)


# -- database work (runs in a DB worker thread, one transaction each) ----------

def _row(entry: GlobalConfig, value: str) -> dict[str, Any]:
    return {"category": entry.category, "name": entry.name, "description": entry.description or None,
            "defaultValue": entry.default_text, "value": value}


def _where(category: str, name: str):
    return and_(_TABLE.c.category == category, _TABLE.c.name == name)


def _sync_definitions(session, entries: list[GlobalConfig]) -> None:
    """Insert the rows of new entries; follow changed defaults and descriptions."""
    stored = {(vo.category, vo.name): vo for vo in session.scalars(select(GlobalConfigVO))}
    missing = [_row(e, e.default_text) for e in entries if (e.category, e.name) not in stored]
    if missing:
        session.execute(_INSERT_IGNORE, missing)
    for entry in entries:
        vo = stored.get((entry.category, entry.name))
        if vo is None:
            continue
        if vo.defaultValue != entry.default_text:
            # ZStack's rule on upgrade: a value still at the old default
            # follows the new default; a value someone chose is kept.
            if vo.value == vo.defaultValue:
                vo.value = entry.default_text
            vo.defaultValue = entry.default_text
        if vo.description != (entry.description or None):
            vo.description = entry.description or None


def _read_values(session, entries: list[GlobalConfig], insert_missing: bool) -> dict[Key, str | None]:
    if not entries:
        return {}
    stmt = select(_TABLE.c.category, _TABLE.c.name, _TABLE.c.value)
    if not insert_missing:
        stmt = stmt.where(or_(*(_where(e.category, e.name) for e in entries)))
    stored = {(c, n): v for c, n, v in session.execute(stmt)}
    if insert_missing:
        missing = [e for e in entries if (e.category, e.name) not in stored]
        if missing:
            # Declared after start, or deleted by hand: store the default.
            session.execute(_INSERT_IGNORE, [_row(e, e.default_text) for e in missing])
            stmt = select(_TABLE.c.category, _TABLE.c.name, _TABLE.c.value).where(
                or_(*(_where(e.category, e.name) for e in missing)))
            stored.update({(c, n): v for c, n, v in session.execute(stmt)})
    return stored


def _write_value(session, row: dict[str, Any]) -> None:
    where = _where(row["category"], row["name"])
    if session.execute(update(_TABLE).where(where).values(value=row["value"])).rowcount == 0:
        # The row is gone (deleted by hand): put it back with this value.
        session.execute(_INSERT_IGNORE, [row])
        session.execute(update(_TABLE).where(where).values(value=row["value"]))


def _retryable(exc: DBAPIError) -> bool:
    args = getattr(exc.orig, "args", ())
    return bool(args) and args[0] in _RETRYABLE_MYSQL_ERRORS
