"""The host state machine (ZStack's HostState / HostStateEvent) and status machine.

State is what the admin chose (Enabled, Disabled, PreMaintenance,
Maintenance); status is the connection to the host (Connecting,
Connected, Disconnected).
"""

from __future__ import annotations

from mn.db.models.host import (
    HOST_CONNECTED,
    HOST_CONNECTING,
    HOST_DISABLED,
    HOST_DISCONNECTED,
    HOST_ENABLED,
    HOST_MAINTENANCE,
    HOST_PRE_MAINTENANCE,
)
from mn.zone.state import StateMachine

ENABLE = "enable"
DISABLE = "disable"
#: What the API's ``maintain`` starts with: PreMaintenance while the host is emptied.
PRE_MAINTAIN = "preMaintain"
MAINTAIN = "maintain"

#: ZStack's HostState transitions. ``maintain`` only leads out of
#: PreMaintenance; the API's ``maintain`` passes through ``preMaintain`` first.
HOST_STATE_MACHINE = StateMachine("host", {
    (HOST_ENABLED, DISABLE): HOST_DISABLED,
    (HOST_ENABLED, ENABLE): HOST_ENABLED,
    (HOST_ENABLED, PRE_MAINTAIN): HOST_PRE_MAINTENANCE,
    (HOST_DISABLED, DISABLE): HOST_DISABLED,
    (HOST_DISABLED, ENABLE): HOST_ENABLED,
    (HOST_DISABLED, PRE_MAINTAIN): HOST_PRE_MAINTENANCE,
    (HOST_PRE_MAINTENANCE, DISABLE): HOST_DISABLED,
    (HOST_PRE_MAINTENANCE, ENABLE): HOST_ENABLED,
    (HOST_PRE_MAINTENANCE, MAINTAIN): HOST_MAINTENANCE,
    (HOST_PRE_MAINTENANCE, PRE_MAINTAIN): HOST_PRE_MAINTENANCE,
    (HOST_MAINTENANCE, DISABLE): HOST_DISABLED,
    (HOST_MAINTENANCE, ENABLE): HOST_ENABLED,
})

#: The event that takes a host back to each state (rolling back a failed maintenance).
EVENT_TO_STATE = {HOST_ENABLED: ENABLE, HOST_DISABLED: DISABLE, HOST_PRE_MAINTENANCE: PRE_MAINTAIN}

CONNECTING = "connecting"
CONNECTED = "connected"
DISCONNECTED = "disconnected"

#: ZStack's HostStatus / HostStatusEvent: every event is accepted from every status.
HOST_STATUS_MACHINE = StateMachine("host status", {
    (status, event): target
    for status in (HOST_CONNECTING, HOST_CONNECTED, HOST_DISCONNECTED)
    for event, target in ((CONNECTING, HOST_CONNECTING), (CONNECTED, HOST_CONNECTED),
                          (DISCONNECTED, HOST_DISCONNECTED))
})

#: States in which a host takes no new work (ZStack's HostBase.checkState).
MAINTENANCE_STATES = (HOST_PRE_MAINTENANCE, HOST_MAINTENANCE)
