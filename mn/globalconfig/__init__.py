"""Global configuration: typed settings by category and name, the same on every MN.

Declare entries where they are used (:class:`GlobalConfig`), read
``entry.value``, change them with ``await entry.update(...)``; the
:class:`GlobalConfigManager` of each MN stores them in GlobalConfigVO and
keeps every MN's copy equal. See ``manager.py`` for how.
"""

from mn.globalconfig.definition import REGISTRY, GlobalConfig, GlobalConfigRegistry
from mn.globalconfig.inventory import GlobalConfigInventory
from mn.globalconfig.manager import DEFAULT_RESYNC_INTERVAL, GlobalConfigManager
from mn.globalconfig.messages import GlobalConfigUpdatedEvent
from mn.globalconfig.validators import at_least, at_most, matches, not_empty, number_range, valid_values

__all__ = [
    "DEFAULT_RESYNC_INTERVAL",
    "GlobalConfig",
    "GlobalConfigInventory",
    "GlobalConfigManager",
    "GlobalConfigRegistry",
    "GlobalConfigUpdatedEvent",
    "REGISTRY",
    "at_least",
    "at_most",
    "matches",
    "not_empty",
    "number_range",
    "valid_values",
]
