"""Only hosts with enough free vCPUs, overcommit included (Nova's ``CoreFilter``).

Usable vCPUs are ``total * cpu_allocation_ratio - used``
(``HostState.free_vcpus``). As in Nova, an instance may overcommit against
other instances but not against itself: a flavor with more vCPUs than the
host has physical CPUs fails whatever the ratio.
"""

from __future__ import annotations

from collections.abc import Sequence

from kumo.compute.scheduler.filters.base import BaseHostFilter, HostPredicate
from kumo.compute.scheduler.host_state import HostState
from kumo.compute.scheduler.request_spec import RequestSpec


class CoreFilter(BaseHostFilter):
    name = "CoreFilter"
    runs_on_forced_hosts = True

    def predicate(self, spec: RequestSpec) -> HostPredicate | None:
        need = spec.flavor.vcpus

        def has_vcpus(host: HostState) -> bool:
            return host.total_vcpus >= need and host.free_vcpus >= need

        return has_vcpus

    def explain(self, hosts: Sequence[HostState], spec: RequestSpec) -> str:
        best = max(h.free_vcpus for h in hosts)
        return f"need {spec.flavor.vcpus} vCPUs; best host has {best:g} free"
