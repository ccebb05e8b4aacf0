"""The virt package's public surface and its import boundary (ARCHITECTURE.md §2)."""

from __future__ import annotations

import ast
from pathlib import Path

from kumo.compute import virt
from kumo.compute.virt.base import TRANSITIONS, PowerState

VIRT = Path(virt.__file__).parent


def test_public_surface_is_pinned() -> None:
    assert sorted(virt.__all__) == [
        "BootImage", "ConsoleEndpoint", "DRIVERS", "FakeDriver", "HostDown", "HostResources", "InstanceExists",
        "InstanceInfo", "InstanceNotFound", "InstanceSpec", "InvalidPowerState", "NicSpec", "PowerState",
        "QemuDriver", "SpawnError", "UnsupportedOperation", "VirtDriver", "VirtError", "create_driver",
    ]
    assert virt.DRIVERS == {"fake": virt.FakeDriver, "qemu": virt.QemuDriver}


def test_power_state_codes_are_novas() -> None:
    assert {s.name: int(s) for s in PowerState} == {
        "NOSTATE": 0, "RUNNING": 1, "PAUSED": 3, "SHUTDOWN": 4, "CRASHED": 6, "SUSPENDED": 7}
    assert all(PowerState.NOSTATE not in allowed for allowed, _ in TRANSITIONS.values())


def test_virt_imports_no_db_and_no_other_compute_module() -> None:
    for path in VIRT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(("sqlalchemy", "kumo.core.db", "kumo.core.models")), (path, name)
                if name.startswith("kumo."):
                    assert name.startswith("kumo.compute.virt"), (path, name)
