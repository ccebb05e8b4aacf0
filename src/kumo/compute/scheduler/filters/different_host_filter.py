"""Only hosts running none of the hinted instances (Nova's ``DifferentHostFilter``).

``openstack server create --hint different_host=<uuid>`` (one UUID or a
list): a host fails when any of those instances is on it.
"""

from __future__ import annotations

from collections.abc import Sequence

from kumo.compute.scheduler.filters.base import BaseHostFilter, HostPredicate
from kumo.compute.scheduler.host_state import HostState
from kumo.compute.scheduler.request_spec import RequestSpec


class DifferentHostFilter(BaseHostFilter):
    name = "DifferentHostFilter"
    run_filter_once_per_request = True

    def predicate(self, spec: RequestSpec) -> HostPredicate | None:
        avoided = frozenset(spec.hint_list("different_host"))
        if not avoided:
            return None

        def runs_none(host: HostState) -> bool:
            return avoided.isdisjoint(host.instance_uuids)

        return runs_none

    def explain(self, hosts: Sequence[HostState], spec: RequestSpec) -> str:
        return f"different_host {', '.join(spec.hint_list('different_host'))}"
