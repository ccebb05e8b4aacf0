"""Only hosts in the requested availability zone (Nova's ``AvailabilityZoneFilter``).

Without a requested zone every host passes. A host's zone is that of the
host aggregate(s) it is in (``kumo.compute.aggregates.host_zones``, read by
the scheduler manager); hosts outside any zone are in the default zone
``nova`` (Nova's ``default_availability_zone``), which is what
``HostState.availability_zone`` defaults to.
"""

from __future__ import annotations

from collections.abc import Sequence

from kumo.compute.scheduler.filters.base import BaseHostFilter, HostPredicate
from kumo.compute.scheduler.host_state import HostState
from kumo.compute.scheduler.request_spec import RequestSpec


class AvailabilityZoneFilter(BaseHostFilter):
    name = "AvailabilityZoneFilter"
    run_filter_once_per_request = True

    def predicate(self, spec: RequestSpec) -> HostPredicate | None:
        zone = spec.availability_zone
        if not zone:
            return None

        def in_zone(host: HostState) -> bool:
            return host.availability_zone == zone

        return in_zone

    def explain(self, hosts: Sequence[HostState], spec: RequestSpec) -> str:
        return f"requested zone {spec.availability_zone!r}"
