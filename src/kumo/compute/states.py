"""The instance lifecycle, with Nova's wire values.

Nova describes an instance with three values (``nova/compute/vm_states.py``,
``task_states.py``, ``power_state.py``):

* ``vm_state``: the stable state the user expects (``active``, ``stopped``...);
* ``task_state``: the operation in progress, or None when idle;
* ``power_state``: what the hypervisor last reported, as Nova's integers.

The API shows neither directly: ``status`` is derived from the first two by
:data:`STATE_MAP` (Nova's ``_STATE_MAP`` in ``nova/api/openstack/common.py``).

:data:`ACTIONS` is the one table of which action is legal in which state,
mirroring the ``@check_instance_state`` / ``@reject_instance_state``
decorators of ``nova/compute/api.py``; :func:`check_action` raises the 409
Nova answers with (``raise_http_conflict_for_instance_invalid_state``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from kumo.core.errors import Conflict


class VmState(StrEnum):
    ACTIVE = "active"
    BUILDING = "building"
    PAUSED = "paused"
    SUSPENDED = "suspended"
    STOPPED = "stopped"
    RESCUED = "rescued"
    RESIZED = "resized"
    SOFT_DELETED = "soft-delete"
    DELETED = "deleted"
    ERROR = "error"
    SHELVED = "shelved"
    SHELVED_OFFLOADED = "shelved_offloaded"


class TaskState(StrEnum):
    SCHEDULING = "scheduling"
    BLOCK_DEVICE_MAPPING = "block_device_mapping"
    NETWORKING = "networking"
    SPAWNING = "spawning"
    IMAGE_SNAPSHOT = "image_snapshot"
    IMAGE_SNAPSHOT_PENDING = "image_snapshot_pending"
    IMAGE_PENDING_UPLOAD = "image_pending_upload"
    IMAGE_UPLOADING = "image_uploading"
    IMAGE_BACKUP = "image_backup"
    UPDATING_PASSWORD = "updating_password"
    RESIZE_PREP = "resize_prep"
    RESIZE_MIGRATING = "resize_migrating"
    RESIZE_MIGRATED = "resize_migrated"
    RESIZE_FINISH = "resize_finish"
    RESIZE_REVERTING = "resize_reverting"
    RESIZE_CONFIRMING = "resize_confirming"
    REBOOTING = "rebooting"
    REBOOT_PENDING = "reboot_pending"
    REBOOT_STARTED = "reboot_started"
    REBOOTING_HARD = "rebooting_hard"
    REBOOT_PENDING_HARD = "reboot_pending_hard"
    REBOOT_STARTED_HARD = "reboot_started_hard"
    PAUSING = "pausing"
    UNPAUSING = "unpausing"
    SUSPENDING = "suspending"
    RESUMING = "resuming"
    POWERING_OFF = "powering-off"
    POWERING_ON = "powering-on"
    RESCUING = "rescuing"
    UNRESCUING = "unrescuing"
    REBUILDING = "rebuilding"
    REBUILD_BLOCK_DEVICE_MAPPING = "rebuild_block_device_mapping"
    REBUILD_SPAWNING = "rebuild_spawning"
    MIGRATING = "migrating"
    DELETING = "deleting"
    SOFT_DELETING = "soft-deleting"
    RESTORING = "restoring"
    SHELVING = "shelving"
    SHELVING_IMAGE_PENDING_UPLOAD = "shelving_image_pending_upload"
    SHELVING_IMAGE_UPLOADING = "shelving_image_uploading"
    SHELVING_OFFLOADING = "shelving_offloading"
    UNSHELVING = "unshelving"


class PowerState(IntEnum):
    """Nova's power states: the integers the API shows as ``OS-EXT-STS:power_state``.

    The gaps (2, 5) are retired values Nova keeps so the numbers never move.
    """

    NOSTATE = 0
    RUNNING = 1
    PAUSED = 3
    SHUTDOWN = 4
    CRASHED = 6
    SUSPENDED = 7

    @property
    def label(self) -> str:
        """Nova's name for the state (``InstancePowerState``): ``pending`` for NOSTATE."""
        return POWER_STATE_LABELS[self]


POWER_STATE_LABELS = {PowerState.NOSTATE: "pending", PowerState.RUNNING: "running", PowerState.PAUSED: "paused",
                      PowerState.SHUTDOWN: "shutdown", PowerState.CRASHED: "crashed",
                      PowerState.SUSPENDED: "suspended"}

# Task-state groups Nova names in task_states.py.
SOFT_REBOOT_STATES = (TaskState.REBOOTING, TaskState.REBOOT_PENDING, TaskState.REBOOT_STARTED)
HARD_REBOOT_STATES = (TaskState.REBOOTING_HARD, TaskState.REBOOT_PENDING_HARD, TaskState.REBOOT_STARTED_HARD)
RESIZING_STATES = (TaskState.RESIZE_PREP, TaskState.RESIZE_MIGRATING, TaskState.RESIZE_MIGRATED,
                   TaskState.RESIZE_FINISH)
REBUILD_STATES = (TaskState.REBUILDING, TaskState.REBUILD_BLOCK_DEVICE_MAPPING, TaskState.REBUILD_SPAWNING)

# ------------------------------------------------------------------------------ API status

_REBUILD = dict.fromkeys(REBUILD_STATES, "REBUILD")
_RESIZE = dict.fromkeys(RESIZING_STATES, "RESIZE")

#: vm_state -> {task_state or "default": API status}, exactly Nova's ``_STATE_MAP``.
STATE_MAP: dict[str, dict[str | None, str]] = {
    VmState.ACTIVE: {
        "default": "ACTIVE",
        **dict.fromkeys(SOFT_REBOOT_STATES, "REBOOT"),
        **dict.fromkeys(HARD_REBOOT_STATES, "HARD_REBOOT"),
        TaskState.UPDATING_PASSWORD: "PASSWORD",
        **_REBUILD,
        TaskState.MIGRATING: "MIGRATING",
        **_RESIZE,
    },
    VmState.BUILDING: {"default": "BUILD"},
    VmState.STOPPED: {"default": "SHUTOFF", **_RESIZE, **_REBUILD},
    VmState.RESIZED: {"default": "VERIFY_RESIZE", TaskState.RESIZE_REVERTING: "REVERT_RESIZE"},
    VmState.PAUSED: {"default": "PAUSED", TaskState.MIGRATING: "MIGRATING"},
    VmState.SUSPENDED: {"default": "SUSPENDED"},
    VmState.RESCUED: {"default": "RESCUE"},
    VmState.ERROR: {"default": "ERROR", **_REBUILD},
    VmState.DELETED: {"default": "DELETED"},
    VmState.SOFT_DELETED: {"default": "SOFT_DELETED"},
    VmState.SHELVED: {"default": "SHELVED"},
    VmState.SHELVED_OFFLOADED: {"default": "SHELVED_OFFLOADED"},
}


def status_from_state(vm_state: str, task_state: str | None = None) -> str:
    """The API ``status`` of an instance; ``UNKNOWN`` for a vm_state Nova does not know."""
    task_map = STATE_MAP.get(vm_state)
    if task_map is None:
        return "UNKNOWN"
    return task_map.get(task_state, task_map["default"])


def states_from_status(statuses: Iterable[str]) -> tuple[list[str], list[str | None]]:
    """``(vm_states, task_states)`` whose status is one of ``statuses`` (the servers ``status`` filter).

    As Nova's ``task_and_vm_state_from_status``, matching is case-insensitive
    and ``"default"`` stands for "any task state not listed otherwise".
    """
    wanted = {s.lower() for s in statuses}
    vm_states: set[str] = set()
    task_states: set[str | None] = set()
    for vm_state, task_map in STATE_MAP.items():
        for task_state, status in task_map.items():
            if status.lower() in wanted:
                vm_states.add(vm_state)
                task_states.add(task_state)
    return sorted(vm_states), sorted(task_states, key=lambda t: (t is None, t or ""))


# ------------------------------------------------------------------------------ allowed actions


@dataclass(frozen=True)
class ActionRule:
    """When an action is legal, as one ``@check_instance_state`` of ``nova/compute/api.py``.

    ``vm_states`` / ``task_states`` None means "any"; Nova's decorator defaults
    ``task_state`` to ``(None,)`` (no task in progress), as :func:`_rule` does.
    ``rejected_task_states`` is ``@reject_instance_state`` (consoles).
    ``api_name`` is the name the 409 message uses, as the Nova API handler passes it.
    """

    api_name: str
    vm_states: frozenset[str] | None
    task_states: frozenset[str | None] | None
    must_have_launched: bool = True
    rejected_task_states: frozenset[str] = frozenset()


_IDLE: tuple[str | None, ...] = (None,)
_ANY = None


def _rule(api_name: str, vm_states: Iterable[str] | None, task_states: Iterable[str | None] | None = _IDLE,
          *, must_have_launched: bool = True, rejected: Iterable[str] = ()) -> ActionRule:
    return ActionRule(api_name, None if vm_states is None else frozenset(vm_states),
                      None if task_states is None else frozenset(task_states), must_have_launched,
                      frozenset(rejected))


V = VmState
T = TaskState
_SNAPSHOTTABLE = (V.ACTIVE, V.STOPPED, V.PAUSED, V.SUSPENDED)
_VOLUME_STATES = (V.ACTIVE, V.PAUSED, V.STOPPED, V.RESIZED, V.SOFT_DELETED, V.SHELVED, V.SHELVED_OFFLOADED)
# vm_states.ALLOW_HARD_REBOOT and task_states.ALLOW_REBOOT.
_HARD_REBOOT_VM = (V.ACTIVE, V.STOPPED, V.PAUSED, V.SUSPENDED, V.ERROR)
_HARD_REBOOT_TASK = (None, T.REBOOTING, T.REBOOT_PENDING, T.REBOOT_STARTED, T.RESUMING, T.REBOOTING_HARD,
                     T.UNPAUSING, T.PAUSING, T.SUSPENDING)
_CONSOLE_REJECTED = (T.DELETING, T.MIGRATING)

#: action -> when it is legal. Keys are Kumo's names; ``api_name`` is Nova's.
ACTIONS: dict[str, ActionRule] = {
    "delete": _rule("delete", _ANY, _ANY, must_have_launched=False),
    "soft_delete": _rule("delete", _ANY, _ANY),
    "force_delete": _rule("forceDelete", _ANY, _IDLE, must_have_launched=False),
    "restore": _rule("restore", (V.SOFT_DELETED,)),
    "stop": _rule("stop", (V.ACTIVE, V.ERROR)),
    "start": _rule("start", (V.STOPPED,)),
    "reboot": _rule("reboot", (V.ACTIVE,)),
    "reboot_hard": _rule("reboot", _HARD_REBOOT_VM, _HARD_REBOOT_TASK),
    "pause": _rule("pause", (V.ACTIVE,)),
    "unpause": _rule("unpause", (V.PAUSED,)),
    "suspend": _rule("suspend", (V.ACTIVE,)),
    "resume": _rule("resume", (V.SUSPENDED,)),
    "rescue": _rule("rescue", (V.ACTIVE, V.STOPPED, V.ERROR)),
    "unrescue": _rule("unrescue", (V.RESCUED,)),
    "rebuild": _rule("rebuild", (V.ACTIVE, V.STOPPED, V.ERROR)),
    "resize": _rule("resize", (V.ACTIVE, V.STOPPED)),
    "migrate": _rule("migrate", (V.ACTIVE, V.STOPPED)),
    "confirm_resize": _rule("confirmResize", (V.RESIZED,)),
    "revert_resize": _rule("revertResize", (V.RESIZED,)),
    "create_image": _rule("createImage", _SNAPSHOTTABLE),
    "backup": _rule("createBackup", _SNAPSHOTTABLE),
    "shelve": _rule("shelve", _SNAPSHOTTABLE),
    "shelve_offload": _rule("shelveOffload", (V.SHELVED,)),
    "unshelve": _rule("unshelve", (V.SHELVED, V.SHELVED_OFFLOADED)),
    "set_admin_password": _rule("changePassword", (V.ACTIVE,)),
    "trigger_crash_dump": _rule("trigger_crash_dump", (V.ACTIVE, V.PAUSED, V.RESCUED, V.RESIZED, V.ERROR)),
    "live_migrate": _rule("os-migrateLive", (V.ACTIVE, V.PAUSED)),
    "evacuate": _rule("evacuate", (V.ACTIVE, V.STOPPED, V.ERROR), _ANY),
    "attach_volume": _rule("attach_volume", _VOLUME_STATES),
    "detach_volume": _rule("detach_volume", _VOLUME_STATES),
    "swap_volume": _rule("swap_volume", (V.ACTIVE, V.PAUSED, V.RESIZED)),
    "attach_interface": _rule("attach_interface", (V.ACTIVE, V.PAUSED, V.STOPPED)),
    "detach_interface": _rule("detach_interface", (V.ACTIVE, V.PAUSED, V.STOPPED)),
    "update_metadata": _rule("update metadata", (V.ACTIVE, V.PAUSED, V.SUSPENDED, V.STOPPED), _ANY),
    "delete_metadata": _rule("delete metadata", (V.ACTIVE, V.PAUSED, V.SUSPENDED, V.STOPPED), _ANY),
    # Nova's lock/unlock and console output carry no state check at all.
    "lock": _rule("lock", _ANY, _ANY, must_have_launched=False),
    "unlock": _rule("unlock", _ANY, _ANY, must_have_launched=False),
    "get_console_output": _rule("get_console_output", _ANY, _ANY, must_have_launched=False),
    "get_vnc_console": _rule("get_vnc_console", _ANY, _ANY, must_have_launched=False, rejected=_CONSOLE_REJECTED),
    "get_serial_console": _rule("get_serial_console", _ANY, _ANY, must_have_launched=False,
                                rejected=_CONSOLE_REJECTED),
}
del V, T


def invalid_state(action: str, instance_uuid: str, attr: str, state: object) -> Conflict:
    """Nova's 409 for an action refused in the instance's current state."""
    name = ACTIONS[action].api_name if action in ACTIONS else action
    return Conflict(f"Cannot '{name}' instance {instance_uuid} while it is in {attr} {state}")


def check_action(action: str, vm_state: str, task_state: str | None, *, instance_uuid: str,
                 launched: bool = True) -> None:
    """Raise :class:`Conflict` unless ``action`` is legal in (``vm_state``, ``task_state``).

    Checks in Nova's order: vm_state, then task_state, then (for actions that
    need it) that the instance has been launched once. ``launched`` is
    whether ``launched_at`` is set. An unknown ``action`` is a programming
    error (``KeyError``), never a silent pass.
    """
    rule = ACTIONS[action]
    if rule.vm_states is not None and vm_state not in rule.vm_states:
        raise invalid_state(action, instance_uuid, "vm_state", vm_state)
    if rule.task_states is not None and task_state not in rule.task_states:
        raise invalid_state(action, instance_uuid, "task_state", task_state)
    if task_state in rule.rejected_task_states:
        raise invalid_state(action, instance_uuid, "task_state", task_state)
    if rule.must_have_launched and not launched:
        raise invalid_state(action, instance_uuid, "launched_at", None)


def check_not_locked(instance_uuid: str, locked: bool, is_admin: bool) -> None:
    """Nova's ``@check_instance_lock``: a locked instance refuses actions unless the caller is admin."""
    if locked and not is_admin:
        raise Conflict(f"Instance {instance_uuid} is locked")
