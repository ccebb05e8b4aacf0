"""The instance lifecycle tables against Nova's (vm/task/power states, ``_STATE_MAP``, ``check_instance_state``)."""

from __future__ import annotations

import pytest

from kumo.compute.states import (
    ACTIONS,
    STATE_MAP,
    PowerState,
    TaskState,
    VmState,
    check_action,
    check_not_locked,
    states_from_status,
    status_from_state,
)
from kumo.core.errors import Conflict

UUID = "2f1cba3e-6d5b-4d2e-9a0a-0e3f3f0b8f1e"


def test_wire_values() -> None:
    assert VmState.SOFT_DELETED == "soft-delete" and VmState.SHELVED_OFFLOADED == "shelved_offloaded"
    assert len(VmState) == 12
    assert TaskState.POWERING_OFF == "powering-off" and TaskState.SOFT_DELETING == "soft-deleting"
    assert TaskState.REBOOT_STARTED_HARD == "reboot_started_hard" and len(TaskState) == 42
    assert {s.name: int(s) for s in PowerState} == {"NOSTATE": 0, "RUNNING": 1, "PAUSED": 3, "SHUTDOWN": 4,
                                                    "CRASHED": 6, "SUSPENDED": 7}
    assert PowerState.NOSTATE.label == "pending" and PowerState(4).label == "shutdown"


@pytest.mark.parametrize(("vm_state", "task_state", "status"), [
    ("active", None, "ACTIVE"),
    ("active", "rebooting", "REBOOT"),
    ("active", "reboot_started", "REBOOT"),
    ("active", "rebooting_hard", "HARD_REBOOT"),
    ("active", "reboot_pending_hard", "HARD_REBOOT"),
    ("active", "updating_password", "PASSWORD"),
    ("active", "rebuild_spawning", "REBUILD"),
    ("active", "migrating", "MIGRATING"),
    ("active", "resize_migrated", "RESIZE"),
    ("active", "powering-off", "ACTIVE"),
    ("active", "image_snapshot", "ACTIVE"),
    ("active", "deleting", "ACTIVE"),
    ("building", "spawning", "BUILD"),
    ("building", None, "BUILD"),
    ("stopped", None, "SHUTOFF"),
    ("stopped", "resize_prep", "RESIZE"),
    ("stopped", "rebuilding", "REBUILD"),
    ("stopped", "powering-on", "SHUTOFF"),
    ("resized", None, "VERIFY_RESIZE"),
    ("resized", "resize_reverting", "REVERT_RESIZE"),
    ("resized", "resize_confirming", "VERIFY_RESIZE"),
    ("paused", None, "PAUSED"),
    ("paused", "migrating", "MIGRATING"),
    ("suspended", None, "SUSPENDED"),
    ("rescued", None, "RESCUE"),
    ("error", None, "ERROR"),
    ("error", "rebuilding", "REBUILD"),
    ("error", "deleting", "ERROR"),
    ("deleted", None, "DELETED"),
    ("soft-delete", None, "SOFT_DELETED"),
    ("shelved", None, "SHELVED"),
    ("shelved_offloaded", "unshelving", "SHELVED_OFFLOADED"),
    ("nonsense", None, "UNKNOWN"),
])
def test_status_from_state(vm_state: str, task_state: str | None, status: str) -> None:
    assert status_from_state(vm_state, task_state) == status


def test_every_vm_state_has_a_status() -> None:
    assert set(STATE_MAP) == set(VmState)
    assert all("default" in m for m in STATE_MAP.values())


def test_states_from_status() -> None:
    vm_states, task_states = states_from_status(["reboot"])
    assert vm_states == ["active"]
    assert set(task_states) == {"rebooting", "reboot_pending", "reboot_started"}
    vm_states, task_states = states_from_status(["SHUTOFF", "error"])
    assert vm_states == ["error", "stopped"] and task_states == ["default"]
    vm_states, _ = states_from_status(["RESIZE"])
    assert vm_states == ["active", "stopped"]
    assert states_from_status(["nothing"]) == ([], [])


@pytest.mark.parametrize(("action", "vm_state", "task_state"), [
    ("reboot", "active", None),
    ("reboot_hard", "stopped", None),
    ("reboot_hard", "error", None),
    ("reboot_hard", "active", "rebooting"),
    ("reboot_hard", "paused", "pausing"),
    ("stop", "active", None),
    ("stop", "error", None),
    ("start", "stopped", None),
    ("pause", "active", None),
    ("unpause", "paused", None),
    ("suspend", "active", None),
    ("resume", "suspended", None),
    ("rebuild", "error", None),
    ("resize", "stopped", None),
    ("confirm_resize", "resized", None),
    ("revert_resize", "resized", None),
    ("create_image", "suspended", None),
    ("delete", "building", "scheduling"),
    ("delete", "error", "deleting"),
    ("lock", "building", "spawning"),
    ("unlock", "shelved_offloaded", "unshelving"),
    ("get_console_output", "active", "rebooting"),
    ("get_vnc_console", "active", "rebooting"),
    ("update_metadata", "active", "image_snapshot"),
    ("evacuate", "error", "rebuilding"),
    ("unshelve", "shelved_offloaded", None),
])
def test_allowed(action: str, vm_state: str, task_state: str | None) -> None:
    check_action(action, vm_state, task_state, instance_uuid=UUID)


@pytest.mark.parametrize(("action", "vm_state", "task_state", "message"), [
    ("reboot", "stopped", None, "Cannot 'reboot' instance {u} while it is in vm_state stopped"),
    ("reboot", "active", "rebooting", "Cannot 'reboot' instance {u} while it is in task_state rebooting"),
    ("reboot_hard", "building", None, "Cannot 'reboot' instance {u} while it is in vm_state building"),
    ("reboot_hard", "active", "image_snapshot",
     "Cannot 'reboot' instance {u} while it is in task_state image_snapshot"),
    ("stop", "stopped", None, "Cannot 'stop' instance {u} while it is in vm_state stopped"),
    ("stop", "active", "powering-off", "Cannot 'stop' instance {u} while it is in task_state powering-off"),
    ("start", "active", None, "Cannot 'start' instance {u} while it is in vm_state active"),
    ("pause", "paused", None, "Cannot 'pause' instance {u} while it is in vm_state paused"),
    ("unpause", "active", None, "Cannot 'unpause' instance {u} while it is in vm_state active"),
    ("suspend", "stopped", None, "Cannot 'suspend' instance {u} while it is in vm_state stopped"),
    ("resume", "active", None, "Cannot 'resume' instance {u} while it is in vm_state active"),
    ("rebuild", "building", None, "Cannot 'rebuild' instance {u} while it is in vm_state building"),
    ("resize", "error", None, "Cannot 'resize' instance {u} while it is in vm_state error"),
    ("confirm_resize", "active", None, "Cannot 'confirmResize' instance {u} while it is in vm_state active"),
    ("revert_resize", "resized", "resize_reverting",
     "Cannot 'revertResize' instance {u} while it is in task_state resize_reverting"),
    ("create_image", "error", None, "Cannot 'createImage' instance {u} while it is in vm_state error"),
    ("create_image", "active", "image_snapshot",
     "Cannot 'createImage' instance {u} while it is in task_state image_snapshot"),
    ("get_vnc_console", "active", "deleting", ("Cannot 'get_vnc_console' instance {u} while it is in task_state "
                                              "deleting")),
    ("update_metadata", "building", None, "Cannot 'update metadata' instance {u} while it is in vm_state building"),
    ("force_delete", "active", "deleting", "Cannot 'forceDelete' instance {u} while it is in task_state deleting"),
])
def test_refused_with_novas_message(action: str, vm_state: str, task_state: str | None, message: str) -> None:
    with pytest.raises(Conflict) as info:
        check_action(action, vm_state, task_state, instance_uuid=UUID)
    assert info.value.status == 409
    assert info.value.message == message.format(u=UUID)


def test_must_have_launched() -> None:
    with pytest.raises(Conflict, match=f"Cannot 'stop' instance {UUID} while it is in launched_at None"):
        check_action("stop", "active", None, instance_uuid=UUID, launched=False)
    check_action("delete", "error", None, instance_uuid=UUID, launched=False)


def test_unknown_action_is_a_bug_not_a_pass() -> None:
    with pytest.raises(KeyError):
        check_action("teleport", "active", None, instance_uuid=UUID)


def test_table_covers_the_api_actions() -> None:
    wanted = {"reboot", "reboot_hard", "stop", "start", "pause", "unpause", "suspend", "resume", "rebuild", "resize",
              "confirm_resize", "revert_resize", "create_image", "lock", "unlock", "delete", "get_console_output",
              "shelve", "unshelve", "rescue", "unrescue", "backup"}
    assert wanted <= set(ACTIONS)
    for rule in ACTIONS.values():
        assert rule.vm_states is None or rule.vm_states <= set(VmState)
        assert rule.task_states is None or rule.task_states - {None} <= set(TaskState)


def test_locked() -> None:
    check_not_locked(UUID, locked=False, is_admin=False)
    check_not_locked(UUID, locked=True, is_admin=True)
    with pytest.raises(Conflict, match=f"Instance {UUID} is locked"):
        check_not_locked(UUID, locked=True, is_admin=False)
