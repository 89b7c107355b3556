"""ZStack's VM state machine (VmInstanceState, VmInstanceStateEvent) and which
operations each state allows (AbstractVmInstance.allowedOperations).

Two separate questions, as in ZStack:

* may this operation start on a VM in this state? :func:`check_operation`
  (refused with SYS.1006 caused by VM.1010, ZStack's NOT_IN_CORRECT_STATE);
* which state does an event lead to? :func:`next_state` (a missing
  transition is a bug in the caller: SYS.1005).
"""

from __future__ import annotations

from mn.errors import ErrorCode, OperationError, SysErrors, error

# -- states (VmInstanceState) ------------------------------------------------------

CREATED = "Created"
STARTING = "Starting"
RUNNING = "Running"
STOPPING = "Stopping"
STOPPED = "Stopped"
REBOOTING = "Rebooting"
DESTROYING = "Destroying"
DESTROYED = "Destroyed"
MIGRATING = "Migrating"
EXPUNGING = "Expunging"
PAUSING = "Pausing"
PAUSED = "Paused"
RESUMING = "Resuming"
VOLUME_MIGRATING = "VolumeMigrating"
VOLUME_RECOVERING = "VolumeRecovering"
ERROR = "Error"
NO_STATE = "NoState"
UNKNOWN = "Unknown"
CRASHED = "Crashed"

STATES = (CREATED, STARTING, RUNNING, STOPPING, STOPPED, REBOOTING, DESTROYING, DESTROYED, MIGRATING,
          EXPUNGING, PAUSING, PAUSED, RESUMING, VOLUME_MIGRATING, VOLUME_RECOVERING, ERROR, NO_STATE,
          UNKNOWN, CRASHED)

#: States an operation passes through; a VM must never be left in one
#: (a failed or interrupted operation puts the VM back where it was).
INTERMEDIATE_STATES = frozenset({STARTING, STOPPING, REBOOTING, DESTROYING, MIGRATING, PAUSING, RESUMING,
                                 VOLUME_MIGRATING, VOLUME_RECOVERING})

#: States in which the VM occupies its host (``hostUuid`` set, capacity held).
ON_HOST_STATES = frozenset({STARTING, RUNNING, STOPPING, REBOOTING, MIGRATING, PAUSING, PAUSED, RESUMING,
                            UNKNOWN, CRASHED, NO_STATE})

# -- events (VmInstanceStateEvent) -------------------------------------------------

class Event:
    """VmInstanceStateEvent values."""

    starting = "starting"
    stopping = "stopping"
    migrating = "migrating"
    migrated = "migrated"
    destroying = "destroying"
    rebooting = "rebooting"
    destroyed = "destroyed"
    expunging = "expunging"
    pausing = "pausing"
    resuming = "resuming"
    volumeMigrating = "volumeMigrating"
    volumeMigrated = "volumeMigrated"
    volumeRecovering = "volumeRecovering"
    volumeRecovered = "volumeRecovered"
    unknown = "unknown"
    running = "running"
    stopped = "stopped"
    paused = "paused"
    crashed = "crashed"
    noState = "noState"


E = Event

#: ZStack's transitions: state -> {event: next state}.
TRANSITIONS: dict[str, dict[str, str]] = {
    CREATED: {E.starting: STARTING, E.destroying: DESTROYING, E.destroyed: DESTROYED},
    STARTING: {E.running: RUNNING, E.stopped: STOPPED, E.paused: PAUSED, E.destroying: DESTROYING,
               E.unknown: UNKNOWN},
    RUNNING: {E.running: RUNNING, E.destroying: DESTROYING, E.stopping: STOPPING, E.stopped: STOPPED,
              E.rebooting: REBOOTING, E.migrating: MIGRATING, E.volumeMigrating: MIGRATING,
              E.volumeRecovering: VOLUME_RECOVERING, E.pausing: PAUSING, E.paused: PAUSED,
              E.crashed: CRASHED, E.noState: NO_STATE, E.unknown: UNKNOWN},
    STOPPING: {E.stopped: STOPPED, E.destroying: DESTROYING, E.running: RUNNING, E.unknown: UNKNOWN},
    STOPPED: {E.starting: STARTING, E.stopped: STOPPED, E.running: RUNNING, E.paused: PAUSED,
              E.destroying: DESTROYING, E.volumeMigrating: VOLUME_MIGRATING,
              E.volumeRecovering: VOLUME_RECOVERING, E.noState: NO_STATE, E.unknown: UNKNOWN},
    MIGRATING: {E.migrated: RUNNING, E.volumeMigrated: RUNNING, E.running: RUNNING, E.paused: PAUSED,
                E.stopped: STOPPED, E.noState: NO_STATE, E.unknown: UNKNOWN, E.destroying: DESTROYING},
    VOLUME_MIGRATING: {E.volumeMigrated: STOPPED, E.stopped: STOPPED, E.noState: NO_STATE,
                       E.unknown: UNKNOWN, E.destroying: DESTROYING},
    VOLUME_RECOVERING: {E.starting: VOLUME_RECOVERING, E.running: VOLUME_RECOVERING,
                        E.volumeRecovering: VOLUME_RECOVERING, E.volumeRecovered: RUNNING,
                        E.stopping: STOPPING, E.stopped: STOPPED, E.noState: NO_STATE, E.unknown: UNKNOWN,
                        E.destroying: DESTROYING},
    REBOOTING: {E.running: RUNNING, E.stopped: STOPPED, E.noState: NO_STATE, E.unknown: UNKNOWN,
                E.destroying: DESTROYING},
    PAUSED: {E.resuming: RESUMING, E.stopped: STOPPED, E.running: RUNNING, E.stopping: STOPPING,
             E.destroying: DESTROYING, E.noState: NO_STATE, E.unknown: UNKNOWN, E.migrating: MIGRATING,
             E.volumeMigrated: RUNNING},
    PAUSING: {E.paused: PAUSED, E.destroying: DESTROYING, E.running: RUNNING, E.noState: NO_STATE,
              E.unknown: UNKNOWN},
    RESUMING: {E.running: RUNNING, E.destroying: DESTROYING, E.paused: PAUSED, E.noState: NO_STATE,
               E.unknown: UNKNOWN},
    UNKNOWN: {E.destroying: DESTROYING, E.stopping: STOPPING, E.unknown: UNKNOWN, E.paused: PAUSED,
              E.running: RUNNING, E.migrating: MIGRATING, E.noState: NO_STATE, E.stopped: STOPPED},
    DESTROYING: {E.unknown: UNKNOWN, E.destroyed: DESTROYED, E.destroying: DESTROYING, E.running: RUNNING,
                 E.expunging: EXPUNGING},
    DESTROYED: {E.stopped: STOPPED},
    CRASHED: {E.running: RUNNING, E.unknown: UNKNOWN, E.stopping: STOPPING, E.stopped: STOPPED,
              E.rebooting: REBOOTING, E.crashed: CRASHED, E.destroyed: DESTROYED, E.noState: NO_STATE,
              E.destroying: DESTROYING},
    NO_STATE: {E.running: RUNNING, E.unknown: UNKNOWN, E.stopping: STOPPING, E.stopped: STOPPED,
               E.rebooting: REBOOTING, E.crashed: CRASHED, E.destroyed: DESTROYED, E.noState: NO_STATE,
               E.destroying: DESTROYING},
    EXPUNGING: {},
    ERROR: {},
}


def next_state(current: str, event: str) -> str:
    """The state ``event`` leads to from ``current`` (ZStack's VmInstanceState.nextState)."""
    try:
        return TRANSITIONS[current][event]
    except KeyError:
        raise OperationError.of(SysErrors.CHANGE_RESOURCE_STATE_ERROR,
                                f"cannot find next state for current state[{current}] on transaction "
                                f"event[{event}]") from None


# -- operations allowed per state (AbstractVmInstance.allowedOperations) --------------

#: Operation names: the API names (without API/Msg) of ZStack's allowed operations.
START = "StartVmInstance"
STOP = "StopVmInstance"
REBOOT = "RebootVmInstance"
PAUSE = "PauseVmInstance"
RESUME = "ResumeVmInstance"
DESTROY = "DestroyVmInstance"
RECOVER = "RecoverVmInstance"
EXPUNGE = "ExpungeVmInstance"
MIGRATE = "MigrateVm"
CHANGE_INSTANCE_OFFERING = "ChangeInstanceOffering"
ATTACH_L3 = "AttachL3NetworkToVm"
DETACH_L3 = "DetachL3NetworkFromVm"
ATTACH_VOLUME = "AttachDataVolumeToVm"
DETACH_VOLUME = "DetachDataVolumeFromVm"

_ALLOWED_STATES: dict[str, frozenset[str]] = {
    START: frozenset({CREATED, RUNNING, STOPPED, CRASHED}),
    STOP: frozenset({NO_STATE, RUNNING, STOPPED, UNKNOWN, CRASHED, PAUSED}),
    REBOOT: frozenset({NO_STATE, RUNNING, CRASHED}),
    PAUSE: frozenset({RUNNING}),
    RESUME: frozenset({PAUSED}),
    DESTROY: frozenset({RUNNING, STOPPED, UNKNOWN, CRASHED, STARTING, MIGRATING, VOLUME_MIGRATING, STOPPING,
                        REBOOTING, PAUSED, PAUSING, RESUMING}),
    RECOVER: frozenset({DESTROYED}),
    EXPUNGE: frozenset({DESTROYED}),
    MIGRATE: frozenset({RUNNING, UNKNOWN, PAUSED}),
    CHANGE_INSTANCE_OFFERING: frozenset({RUNNING, STOPPED, PAUSED}),
    # ZStack's interceptor narrows these two to Running and Stopped.
    ATTACH_L3: frozenset({RUNNING, STOPPED}),
    DETACH_L3: frozenset({RUNNING, STOPPED}),
    ATTACH_VOLUME: frozenset({RUNNING, STOPPED, PAUSED}),
    DETACH_VOLUME: frozenset({RUNNING, STOPPED, PAUSED}),
}

#: ZStack's VmErrors.NOT_IN_CORRECT_STATE.
VM_NOT_IN_CORRECT_STATE = "VM.1010"


def allowed_states(operation: str) -> frozenset[str]:
    """The states in which ``operation`` may start."""
    return _ALLOWED_STATES[operation]


def is_allowed(operation: str, state: str) -> bool:
    return state in _ALLOWED_STATES[operation]


def check_operation(operation: str, state: str, vm_uuid: str) -> None:
    """Refuse ``operation`` on a VM in ``state`` unless ZStack allows it.

    Raises OperationError SYS.1006 (HTTP 409) caused by VM.1010, as
    ZStack's ``validateOperationByState``.
    """
    if is_allowed(operation, state):
        return
    allowed = ", ".join(sorted(_ALLOWED_STATES[operation]))
    details = (f"current vm instance[uuid:{vm_uuid}] state[{state}] doesn't allow to proceed "
               f"{operation}, allowed states are [{allowed}]")
    cause = ErrorCode(VM_NOT_IN_CORRECT_STATE, "The vm is not in a correct state", details)
    raise OperationError(error(SysErrors.OPERATION_ERROR, details, cause))
