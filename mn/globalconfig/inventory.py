"""GlobalConfigInventory: a global config entry as ZStack's API shows it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mn.api.inventory import Inventory
from mn.db.models.global_config import GlobalConfigVO

if TYPE_CHECKING:
    from mn.globalconfig.definition import GlobalConfig


class GlobalConfigInventory(Inventory):
    """ZStack's GlobalConfigInventory: every value as text.

    Queries read it from GlobalConfigVO rows (``id`` set); an entry's own
    inventory (:meth:`of`) has no ``id``, as ZStack's built from a GlobalConfig.
    """

    VO = GlobalConfigVO

    id: int | None = None
    name: str
    category: str
    description: str | None = None
    defaultValue: str | None = None
    value: str | None = None

    @classmethod
    def of(cls, entry: "GlobalConfig") -> "GlobalConfigInventory":
        """From an entry: its definition and this MN's current value."""
        return cls(name=entry.name, category=entry.category, description=entry.description,
                   defaultValue=entry.default_text, value=entry.text)

    @classmethod
    def of_vo(cls, vo: GlobalConfigVO) -> "GlobalConfigInventory":
        """From a row, as a query over GlobalConfigVO returns it."""
        return cls.from_vo(vo)
