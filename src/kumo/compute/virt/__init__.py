"""Virt drivers: the hypervisors the compute agent drives (Nova's ``nova/virt``).

The registry is a literal dict, chosen by name in config; every entry passes
the contract suite in ``tests/unit/compute/virt/test_virt_drivers.py``.
"""

from __future__ import annotations

from kumo.compute.virt.base import (
    BootImage,
    ConsoleEndpoint,
    HostDown,
    HostResources,
    InstanceExists,
    InstanceInfo,
    InstanceNotFound,
    InstanceSpec,
    InvalidPowerState,
    NicSpec,
    PowerState,
    SpawnError,
    UnsupportedOperation,
    VirtDriver,
    VirtError,
)
from kumo.compute.virt.fake import FakeDriver
from kumo.compute.virt.qemu import QemuDriver

DRIVERS: dict[str, type[VirtDriver]] = {"fake": FakeDriver, "qemu": QemuDriver}


def create_driver(name: str, **options: object) -> VirtDriver:
    """The driver registered as ``name``, built with its own keyword options (e.g. ``vcpus=8``)."""
    try:
        cls = DRIVERS[name]
    except KeyError:
        raise ValueError(f"unknown virt driver {name!r}; choose from {', '.join(DRIVERS)}") from None
    return cls(**options)


__all__ = [
    "BootImage", "ConsoleEndpoint", "DRIVERS", "FakeDriver", "QemuDriver", "HostDown", "HostResources", "InstanceExists", "InstanceInfo",
    "InstanceNotFound", "InstanceSpec", "InvalidPowerState", "NicSpec", "PowerState", "SpawnError",
    "UnsupportedOperation", "VirtDriver", "VirtError", "create_driver",
]
