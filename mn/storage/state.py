"""State machines of primary and backup storage (ZStack's AbstractPrimaryStorage
and AbstractBackupStorage)."""

from __future__ import annotations

from mn.db.models.storage import STATE_DELETING, STATE_DISABLED, STATE_ENABLED, STATE_MAINTENANCE
from mn.zone.state import StateMachine, enable_disable

#: ZStack's PrimaryStorageStateEvent values.
PRIMARY_STORAGE_STATE_EVENTS = ("enable", "disable", "maintain", "deleting")

_EVENT_TARGETS = {"enable": STATE_ENABLED, "disable": STATE_DISABLED, "maintain": STATE_MAINTENANCE,
                  "deleting": STATE_DELETING}

#: Every state takes every event, as in ZStack: enable, disable, maintain
#: and deleting lead to Enabled, Disabled, Maintenance and Deleting.
PRIMARY_STORAGE_STATE_MACHINE = StateMachine("primary storage", {
    (state, event): target
    for state in (STATE_ENABLED, STATE_DISABLED, STATE_MAINTENANCE, STATE_DELETING)
    for event, target in _EVENT_TARGETS.items()
})

#: ZStack's BackupStorageState / BackupStorageStateEvent machine.
BACKUP_STORAGE_STATE_MACHINE = enable_disable("backup storage")
