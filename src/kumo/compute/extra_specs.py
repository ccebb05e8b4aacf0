"""Validation of well-known flavor extra specs (Nova microversion 2.86).

From 2.86 Nova checks the value of every extra spec it knows
(``nova/api/validation/extra_specs``) and rejects unknown keys inside its
namespaces. Kumo knows the keys that matter to its scheduler and QEMU driver
(the common ``hw:``, ``hw_rng:``, ``hw_video:``, ``os:``, ``quota:``,
``resources``, ``trait`` keys); a key outside this table passes unchecked,
including unknown keys in Nova's namespaces (Nova would refuse those), since
refusing a key Nova accepts would break clients that Nova serves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kumo.core import errors

_CPU_MASK = r"\^?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*"
_GROUP = r"([a-zA-Z0-9_-]{1,64})?"
TRUE_STRINGS = ("1", "t", "true", "on", "y", "yes")
FALSE_STRINGS = ("0", "f", "false", "off", "n", "no")


@dataclass(frozen=True)
class Spec:
    """One known extra spec: ``kind`` is int, bool or str; a str has an ``enum`` or a ``pattern``."""

    kind: type
    enum: tuple[str, ...] = ()
    pattern: str | None = None
    min: int | None = None
    max: int | None = None


def _int(min_: int | None = 0, max_: int | None = None) -> Spec:
    return Spec(int, min=min_, max=max_)


BOOL = Spec(bool)

#: Name (a regex, matched in full) -> Spec.
KNOWN: dict[str, Spec] = {
    "hw:cpu_policy": Spec(str, enum=("dedicated", "shared", "mixed")),
    "hw:cpu_thread_policy": Spec(str, enum=("prefer", "isolate", "require")),
    "hw:emulator_threads_policy": Spec(str, enum=("isolate", "share")),
    "hw:cpu_realtime": BOOL,
    "hw:cpu_realtime_mask": Spec(str, pattern=r"(\^)?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*"),
    "hw:cpu_dedicated_mask": Spec(str, pattern=_CPU_MASK),
    "hw:hide_hypervisor_id": BOOL,
    "hw:mem_page_size": Spec(str, pattern=r"(large|small|any|\d+([kKMGT]i?)?(b|bit|B)?)"),
    "hw:locked_memory": BOOL,
    "hw:numa_nodes": _int(1),
    r"hw:numa_cpus\.\d+": Spec(str, pattern=_CPU_MASK),
    r"hw:numa_mem\.\d+": _int(1),
    "hw:cpu_sockets": _int(1), "hw:cpu_cores": _int(1), "hw:cpu_threads": _int(1),
    "hw:cpu_max_sockets": _int(1), "hw:cpu_max_cores": _int(1), "hw:cpu_max_threads": _int(1),
    "hw:boot_menu": BOOL,
    "hw:vif_multiqueue_enabled": BOOL,
    "hw:mem_encryption": BOOL,
    "hw:pmu": BOOL,
    "hw:serial_port_count": _int(0),
    "hw:tpm_model": Spec(str, enum=("tpm-tis", "tpm-crb")),
    "hw:tpm_version": Spec(str, enum=("1.2", "2.0")),
    "hw:watchdog_action": Spec(str, enum=("none", "pause", "poweroff", "reset", "disabled")),
    "hw:virtio_packed_ring": BOOL,
    "hw:redirected_usb_ports": _int(0, 15),
    "hw_rng:allowed": BOOL,
    "hw_rng:rate_bytes": _int(0),
    "hw_rng:rate_period": _int(0),
    "hw_video:ram_max_mb": _int(0),
    "os:secure_boot": Spec(str, enum=("disabled", "required")),
    "hide_hypervisor_id": BOOL,
    "group_policy": Spec(str, enum=("isolate", "none")),
    "quota:cpu_shares": _int(0), "quota:cpu_period": _int(0), "quota:cpu_quota": _int(None),
    r"quota:(cpu|memory|disk_io|vif)_(limit|reservation|shares_share)": _int(0),
    r"quota:(cpu|memory|disk_io|vif)_shares_level": Spec(str, enum=("custom", "high", "normal", "low")),
    r"quota:disk_(read|write|total)_(bytes|iops)_sec": _int(0),
    r"quota:vif_(inbound|outbound)_(average|peak|burst)": _int(0),
    rf"resources{_GROUP}:[A-Z0-9_]+": _int(0),
    rf"trait{_GROUP}:[A-Z0-9_]+": Spec(str, enum=("required", "forbidden")),
}
_COMPILED = [(re.compile(name), spec) for name, spec in KNOWN.items()]


def validate(name: str, value: str) -> None:
    """Raise 400 with Nova's "Validation failed; ..." message when a known spec has a bad value."""
    for regex, spec in _COMPILED:
        if regex.fullmatch(name):
            _check(spec, value)
            return


def _check(spec: Spec, value: str) -> None:
    if spec.kind is bool:
        if value.strip().lower() not in TRUE_STRINGS + FALSE_STRINGS:
            raise errors.BadRequest(f"Validation failed; '{value}' is not a valid boolean-like value.")
    elif spec.kind is int:
        try:
            number = int(value)
        except ValueError:
            raise errors.BadRequest(f"Validation failed; '{value}' is not a valid integer value.") from None
        if spec.max is not None and number > spec.max:
            raise errors.BadRequest(f"Validation failed; '{value}' is greater than the max value of '{spec.max}'.")
        if spec.min is not None and number < spec.min:
            raise errors.BadRequest(f"Validation failed; '{value}' is less than the min value of '{spec.min}'.")
    elif spec.pattern is not None:
        if not re.fullmatch(spec.pattern, value):
            raise errors.BadRequest(f"Validation failed; '{value}' is not of the format '{spec.pattern}'.")
    elif spec.enum and value not in spec.enum:
        raise errors.BadRequest(f"Validation failed; '{value}' is not one of: {', '.join(spec.enum)}.")
