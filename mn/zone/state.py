"""State machines of resources that are Enabled or Disabled (ZStack's StateMachine).

A state machine maps (current state, event) to the next state; an event
with no transition from the current state is refused with SYS.1005.
"""

from __future__ import annotations

from collections.abc import Mapping

from mn.errors import OperationError, SysErrors

ENABLED = "Enabled"
DISABLED = "Disabled"
ENABLE = "enable"
DISABLE = "disable"


class StateMachine:
    """Transitions of one resource type's state."""

    def __init__(self, resource: str, transitions: Mapping[tuple[str, str], str]):
        self.resource = resource
        self.transitions = dict(transitions)

    def next_state(self, current: str, event: str) -> str:
        """The state ``event`` leads to from ``current``; OperationError SYS.1005 if none."""
        try:
            return self.transitions[(current, event)]
        except KeyError:
            raise OperationError.of(
                SysErrors.CHANGE_RESOURCE_STATE_ERROR,
                f"{self.resource} in state {current} cannot take the state event {event}") from None


def enable_disable(resource: str) -> StateMachine:
    """ZStack's machine of zones and clusters: enable or disable from either
    state; the event that matches the current state changes nothing."""
    return StateMachine(resource, {
        (ENABLED, DISABLE): DISABLED,
        (ENABLED, ENABLE): ENABLED,
        (DISABLED, DISABLE): DISABLED,
        (DISABLED, ENABLE): ENABLED,
    })


#: ZStack's ZoneState / ZoneStateEvent machine (compute's AbstractZone).
ZONE_STATE_MACHINE = enable_disable("zone")
