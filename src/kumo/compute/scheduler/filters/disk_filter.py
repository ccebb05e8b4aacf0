"""Only hosts with enough free local disk, overcommit included (Nova's ``DiskFilter``).

The instance needs ``root_gb + ephemeral_gb + swap / 1024`` GB (swap is in
MB, as in Nova's flavors); usable disk is ``total * disk_allocation_ratio -
used`` (``HostState.free_disk_gb``).
"""

from __future__ import annotations

from collections.abc import Sequence

from kumo.compute.scheduler.filters.base import BaseHostFilter, HostPredicate
from kumo.compute.scheduler.host_state import HostState
from kumo.compute.scheduler.request_spec import RequestSpec


class DiskFilter(BaseHostFilter):
    name = "DiskFilter"
    runs_on_forced_hosts = True

    def predicate(self, spec: RequestSpec) -> HostPredicate | None:
        need = spec.flavor.disk_gb

        def has_disk(host: HostState) -> bool:
            return host.free_disk_gb >= need

        return has_disk

    def explain(self, hosts: Sequence[HostState], spec: RequestSpec) -> str:
        best = max(h.free_disk_gb for h in hosts)
        return f"need {spec.flavor.disk_gb:g} GB disk; best host has {best:g} GB free"
