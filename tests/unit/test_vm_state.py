"""ZStack's VM state machine and the operations each state allows."""

from __future__ import annotations

import pytest

from mn.errors import OperationError
from mn.vm import state as s


def test_transitions_follow_zstack():
    assert s.next_state(s.CREATED, s.Event.starting) == s.STARTING
    assert s.next_state(s.STARTING, s.Event.running) == s.RUNNING
    assert s.next_state(s.RUNNING, s.Event.stopping) == s.STOPPING
    assert s.next_state(s.STOPPING, s.Event.stopped) == s.STOPPED
    assert s.next_state(s.RUNNING, s.Event.volumeMigrating) == s.MIGRATING  # ZStack's quirk, kept
    assert s.next_state(s.MIGRATING, s.Event.migrated) == s.RUNNING
    assert s.next_state(s.PAUSED, s.Event.resuming) == s.RESUMING
    assert s.next_state(s.DESTROYING, s.Event.destroyed) == s.DESTROYED
    assert s.next_state(s.DESTROYED, s.Event.stopped) == s.STOPPED  # recover


def test_a_missing_transition_is_refused_with_sys_1005():
    with pytest.raises(OperationError) as info:
        s.next_state(s.DESTROYED, s.Event.starting)
    assert info.value.error.code == "SYS.1005"
    assert "Destroyed" in info.value.error.details and "starting" in info.value.error.details


def test_every_state_and_event_is_known():
    events = {v for k, v in vars(s.Event).items() if not k.startswith("_")}
    for current, moves in s.TRANSITIONS.items():
        assert current in s.STATES
        assert set(moves) <= events
        assert set(moves.values()) <= set(s.STATES)
    assert s.INTERMEDIATE_STATES <= set(s.STATES)


@pytest.mark.parametrize("operation, allowed, refused", [
    (s.START, [s.STOPPED, s.RUNNING, s.CREATED], [s.DESTROYED, s.PAUSED, s.STARTING]),
    (s.STOP, [s.RUNNING, s.STOPPED, s.PAUSED, s.UNKNOWN], [s.DESTROYED, s.CREATED, s.MIGRATING]),
    (s.PAUSE, [s.RUNNING], [s.STOPPED, s.PAUSED]),
    (s.RESUME, [s.PAUSED], [s.RUNNING]),
    (s.DESTROY, [s.RUNNING, s.STOPPED, s.STARTING, s.PAUSED], [s.DESTROYED, s.CREATED]),
    (s.EXPUNGE, [s.DESTROYED], [s.RUNNING, s.STOPPED]),
    (s.RECOVER, [s.DESTROYED], [s.STOPPED]),
    (s.MIGRATE, [s.RUNNING, s.PAUSED, s.UNKNOWN], [s.STOPPED]),
    (s.ATTACH_L3, [s.RUNNING, s.STOPPED], [s.PAUSED, s.DESTROYED]),
])
def test_allowed_operations_are_zstacks(operation, allowed, refused):
    for state in allowed:
        s.check_operation(operation, state, "v" * 32)
    for state in refused:
        with pytest.raises(OperationError) as info:
            s.check_operation(operation, state, "v" * 32)
        err = info.value.error
        assert err.code == "SYS.1006" and err.cause.code == s.VM_NOT_IN_CORRECT_STATE
        assert state in err.details and operation in err.details
