"""Match flavor extra specs against what hosts report (Nova's ``ComputeCapabilitiesFilter``).

As in Nova, a key ``capabilities:<name>`` is looked up on the host (a
``HostState`` attribute such as ``cpu_arch`` or ``hypervisor_type``, else the
free-form ``capabilities`` dict) and a host without it fails. A key with no
scope (``"ssd": "true"``) is Nova's backward-compatible form: it is checked
only on hosts that have it. Keys in any other scope (``hw:``, ``quota:``,
``trait:``…) are for other parts of the system and ignored here. Values
are compared as strings with the extra-spec operators (``extra_specs_ops``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from kumo.compute.scheduler.filters.base import BaseHostFilter, HostPredicate
from kumo.compute.scheduler.filters.extra_specs_ops import Matcher, compile_requirement
from kumo.compute.scheduler.host_state import HostState
from kumo.compute.scheduler.request_spec import RequestSpec

_ATTRIBUTES = (frozenset(f.name for f in dataclasses.fields(HostState)) - {"capabilities", "instance_uuids"}) \
    | {"free_ram_mb", "free_vcpus", "free_disk_gb"}
_SCOPE = "capabilities"


def _lookup(host: HostState, name: str) -> str | None:
    if name in _ATTRIBUTES:
        return str(getattr(host, name))
    return host.capabilities.get(name)


class ComputeCapabilitiesFilter(BaseHostFilter):
    name = "ComputeCapabilitiesFilter"
    run_filter_once_per_request = True

    def predicate(self, spec: RequestSpec) -> HostPredicate | None:
        required: list[tuple[str, Matcher]] = []  # a host without the name fails
        optional: list[tuple[str, Matcher]] = []  # unscoped: checked only where present
        for key, requirement in spec.flavor.extra_specs.items():
            scope, sep, name = key.partition(":")
            if not sep:
                optional.append((key, compile_requirement(requirement)))
            elif scope == _SCOPE and name:
                required.append((name, compile_requirement(requirement)))
        if not required and not optional:
            return None

        def satisfies(host: HostState) -> bool:
            for name, matches in required:
                if not matches(_lookup(host, name)):
                    return False
            for name, matches in optional:
                value = _lookup(host, name)
                if value is not None and not matches(value):
                    return False
            return True

        return satisfies

    def explain(self, hosts: Sequence[HostState], spec: RequestSpec) -> str:
        wanted = ", ".join(f"{k}={v!r}" for k, v in spec.flavor.extra_specs.items()
                           if ":" not in k or k.startswith(_SCOPE + ":"))
        return f"flavor requires {wanted}"
