"""Only hosts whose compute service is enabled and alive (Nova's ``ComputeFilter``)."""

from __future__ import annotations

from collections.abc import Sequence

from kumo.compute.scheduler.filters.base import BaseHostFilter, HostPredicate
from kumo.compute.scheduler.host_state import HostState
from kumo.compute.scheduler.request_spec import RequestSpec


def _usable(host: HostState) -> bool:
    return host.enabled and host.up


class ComputeFilter(BaseHostFilter):
    """A disabled service (``openstack compute service set --disable``) or a stale heartbeat fails."""

    name = "ComputeFilter"
    run_filter_once_per_request = True

    def predicate(self, spec: RequestSpec) -> HostPredicate | None:
        return _usable

    def explain(self, hosts: Sequence[HostState], spec: RequestSpec) -> str:
        disabled = sum(1 for h in hosts if not h.enabled)
        return f"{disabled} disabled, {len(hosts) - disabled} down"
