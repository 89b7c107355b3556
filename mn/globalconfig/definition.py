"""Global config entries, declared in code next to the service that reads them.

::

    CPU_OVERPROVISIONING = GlobalConfig(
        "host", "cpu.overProvisioning.ratio", float, 10.0,
        description="virtual CPUs a host offers per physical CPU",
        validators=[number_range(1, 100)])

    CPU_OVERPROVISIONING.value                  # 10.0, from memory, no await
    await CPU_OVERPROVISIONING.update("12.5")   # validated, stored, sent to every MN
    CPU_OVERPROVISIONING.on_change(lambda old, new: ...)

An entry belongs to a :class:`GlobalConfigRegistry` (the process-wide
:data:`REGISTRY` unless told otherwise); the :class:`GlobalConfigManager`
started on that registry stores the values in GlobalConfigVO and keeps every
MN's copy the same.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Generic, Iterable, Iterator, TypeVar

from mn.db.models.global_config import CATEGORY_LENGTH, DESCRIPTION_LENGTH, NAME_LENGTH
from mn.errors import OperationError, SysErrors
from mn.globalconfig import values

if TYPE_CHECKING:
    from mn.globalconfig.inventory import GlobalConfigInventory
    from mn.globalconfig.manager import GlobalConfigManager

log = logging.getLogger(__name__)

T = TypeVar("T")

#: ``listener(old, new)``, plain or async; called on every MN after a change.
Listener = Callable[[Any, Any], "Awaitable[None] | None"]
#: ``check(new)``, plain or async; raises ValueError (or OperationError) to refuse.
Validator = Callable[[Any], "Awaitable[None] | None"]


class GlobalConfigRegistry:
    """The entries one process declares, and the manager that serves them."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], GlobalConfig] = {}
        self._manager: GlobalConfigManager | None = None

    def find(self, category: str, name: str) -> "GlobalConfig | None":
        return self._entries.get((category, name))

    def __iter__(self) -> Iterator["GlobalConfig"]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)

    def _add(self, entry: "GlobalConfig") -> None:
        self._entries[(entry.category, entry.name)] = entry

    @property
    def manager(self) -> "GlobalConfigManager | None":
        """The started manager serving these entries, if any."""
        return self._manager

    def bind(self, manager: "GlobalConfigManager") -> None:
        if self._manager is not None and self._manager is not manager:
            raise RuntimeError("this global config registry is already served by another manager")
        self._manager = manager

    def unbind(self, manager: "GlobalConfigManager") -> None:
        if self._manager is manager:
            self._manager = None


#: Where entries go unless declared with ``registry=``: one MN per process.
REGISTRY = GlobalConfigRegistry()


class GlobalConfig(Generic[T]):
    """One typed setting, identified by ``category`` and ``name`` (ZStack's GlobalConfig).

    ``validators`` are value checks (see :mod:`mn.globalconfig.validators`):
    they define which values are valid, so they also apply to what is read
    from the database and to the default (checked here, at declaration).
    :meth:`add_validator` installs further checks that only guard updates,
    e.g. a plugin refusing a value it cannot honour.

    Declaring the same category and name twice with an identical definition
    (a module imported twice) gives back the first entry; a different
    definition is a programming error and raises ValueError.
    """

    def __new__(cls, category: str, name: str, value_type: type, default: Any, *,
                description: str = "", validators: Iterable[Validator] = (),
                registry: GlobalConfigRegistry = REGISTRY):
        existing = registry.find(category, name)
        if existing is None:
            return super().__new__(cls)
        if existing._definition() != (value_type, default, description, tuple(validators)):
            raise ValueError(f"{canonical_name(category, name)} is declared twice with different "
                             f"definitions: {existing._definition()} and "
                             f"{(value_type, default, description, tuple(validators))}")
        return existing

    def __init__(self, category: str, name: str, value_type: type, default: Any, *,
                 description: str = "", validators: Iterable[Validator] = (),
                 registry: GlobalConfigRegistry = REGISTRY):
        if registry.find(category, name) is self:
            return  # the identical re-declaration __new__ handed back
        if value_type not in values.SUPPORTED_TYPES:
            raise TypeError(f"{canonical_name(category, name)}: type must be one of "
                            f"{[t.__name__ for t in values.SUPPORTED_TYPES]}, not {value_type!r}")
        for what, text, limit in (("category", category, CATEGORY_LENGTH), ("name", name, NAME_LENGTH),
                                  ("description", description, DESCRIPTION_LENGTH)):
            if len(text) > limit:
                raise ValueError(f"{canonical_name(category, name)}: {what} is longer than {limit} characters")
        if not category or not name:
            raise ValueError("a global config needs a category and a name")
        self.category = category
        self.name = name
        self.value_type = value_type
        self.description = description
        self.validators: tuple[Validator, ...] = tuple(validators)
        self.registry = registry
        self._extra_validators: list[Validator] = []
        self._listeners: list[Listener] = []
        try:
            typed_default = values.convert(value_type, default)
            self.check(typed_default)
        except ValueError as exc:
            raise ValueError(f"{self.canonical_name}: bad default {default!r}: {exc}") from None
        self.default: T = typed_default
        self._declared_default = default
        self._value: T = typed_default
        registry._add(self)

    # -- reading -------------------------------------------------------------

    @property
    def value(self) -> T:
        """The current value, from memory (the manager keeps it up to date)."""
        return self._value

    @property
    def text(self) -> str:
        """The current value as stored in GlobalConfigVO."""
        return values.to_text(self.value_type, self._value)

    @property
    def default_text(self) -> str:
        return values.to_text(self.value_type, self.default)

    @property
    def canonical_name(self) -> str:
        return canonical_name(self.category, self.name)

    def inventory(self) -> "GlobalConfigInventory":
        from mn.globalconfig.inventory import GlobalConfigInventory

        return GlobalConfigInventory.of(self)

    # -- changing ------------------------------------------------------------

    async def update(self, value: Any) -> T:
        """Validate, store and broadcast ``value`` (text or typed); return the new value.

        Raises OperationError: SYS.1007 for a bad value (nothing is stored),
        SYS.1010 when no manager serves this entry's registry.
        """
        manager = self.registry.manager
        if manager is None:
            raise OperationError.of(SysErrors.NOT_READY_ERROR,
                                    f"{self.canonical_name} cannot be updated: no global config "
                                    "manager is running")
        await manager.update_entry(self, value)
        return self._value

    def on_change(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(old, new)`` after every change of the value; returns an unsubscriber.

        Called on every MN (the one that made the change too), after the
        new value is readable. A listener that raises is logged and skipped.
        """
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def add_validator(self, validator: Validator) -> Callable[[], None]:
        """Install an update check ``validator(new)``; returns its remover.

        It may be async; it refuses with ValueError (reported as SYS.1007)
        or with its own OperationError.
        """
        self._extra_validators.append(validator)
        return lambda: self._extra_validators.remove(validator)

    # -- used by the manager ---------------------------------------------------

    def convert(self, value: Any) -> T:
        """``value`` as this entry's type; OperationError SYS.1007 if it is not one."""
        try:
            return values.convert(self.value_type, value)
        except ValueError as exc:
            raise self._invalid(f"is of type {self.value_type.__name__}: {exc}") from None

    def check(self, value: T) -> None:
        """Run the declared value checks; ValueError if ``value`` is not valid."""
        for validator in self.validators:
            validator(value)

    async def validate(self, value: T) -> None:
        """Every check an update must pass; OperationError SYS.1007 on refusal."""
        for validator in (*self.validators, *self._extra_validators):
            try:
                result = validator(value)
                if inspect.isawaitable(result):
                    await result
            except ValueError as exc:
                raise self._invalid(str(exc)) from None

    def _set(self, value: T) -> T:
        old, self._value = self._value, value
        return old

    async def _notify(self, old: T, new: T) -> None:
        for listener in list(self._listeners):
            try:
                result = listener(old, new)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("listener %r of %s failed on %r -> %r", listener,
                              self.canonical_name, old, new)

    def _invalid(self, reason: str) -> OperationError:
        return OperationError.of(SysErrors.INVALID_ARGUMENT_ERROR, f"{self.canonical_name} {reason}")

    def _definition(self) -> tuple:
        return (self.value_type, self._declared_default, self.description, self.validators)

    def __repr__(self) -> str:
        return f"<{self.canonical_name} = {self._value!r}>"


def canonical_name(category: str, name: str) -> str:
    """How messages name an entry: ``GlobalConfig[category:c, name:n]``."""
    # ZStack's wording, which users of its API see in error messages.
    return f"GlobalConfig[category:{category}, name:{name}]"
