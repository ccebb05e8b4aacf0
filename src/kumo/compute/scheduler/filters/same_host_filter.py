"""Only hosts already running one of the hinted instances (Nova's ``SameHostFilter``).

``openstack server create --hint same_host=<uuid>`` (one UUID or a list):
a host passes when any of those instances is on it.
"""

from __future__ import annotations

from collections.abc import Sequence

from kumo.compute.scheduler.filters.base import BaseHostFilter, HostPredicate
from kumo.compute.scheduler.host_state import HostState
from kumo.compute.scheduler.request_spec import RequestSpec


class SameHostFilter(BaseHostFilter):
    name = "SameHostFilter"
    run_filter_once_per_request = True

    def predicate(self, spec: RequestSpec) -> HostPredicate | None:
        wanted = frozenset(spec.hint_list("same_host"))
        if not wanted:
            return None

        def runs_one(host: HostState) -> bool:
            return not wanted.isdisjoint(host.instance_uuids)

        return runs_one

    def explain(self, hosts: Sequence[HostState], spec: RequestSpec) -> str:
        return f"same_host {', '.join(spec.hint_list('same_host'))}"
