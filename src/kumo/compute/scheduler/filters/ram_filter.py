"""Only hosts with enough free RAM, overcommit included (Nova's ``RamFilter``).

Usable RAM is ``total * ram_allocation_ratio - reserved_host_memory_mb -
used`` (``HostState.free_ram_mb``); a host passes when it is at least the
flavor's ``memory_mb``, so a host with exactly enough passes.
"""

from __future__ import annotations

from collections.abc import Sequence

from kumo.compute.scheduler.filters.base import BaseHostFilter, HostPredicate
from kumo.compute.scheduler.host_state import HostState
from kumo.compute.scheduler.request_spec import RequestSpec


class RamFilter(BaseHostFilter):
    name = "RamFilter"
    runs_on_forced_hosts = True

    def predicate(self, spec: RequestSpec) -> HostPredicate | None:
        need = spec.flavor.memory_mb

        def has_ram(host: HostState) -> bool:
            return host.free_ram_mb >= need

        return has_ram

    def explain(self, hosts: Sequence[HostState], spec: RequestSpec) -> str:
        best = max(h.free_ram_mb for h in hosts)
        return f"need {spec.flavor.memory_mb} MB RAM; best host has {best:.0f} MB free"
