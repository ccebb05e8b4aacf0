"""Hard affinity: every member of the group on the same host (Nova's ``ServerGroupAffinityFilter``).

Only for groups with policy ``affinity``. The first member may go anywhere;
after that only the hosts already carrying members pass. It reruns for each
instance of a multi-instance request, because the selector adds each chosen
host to the group's ``member_hosts`` before placing the next instance.
"""

from __future__ import annotations

from collections.abc import Sequence

from kumo.compute.scheduler.filters.base import BaseHostFilter, HostPredicate
from kumo.compute.scheduler.host_state import HostState
from kumo.compute.scheduler.request_spec import AFFINITY, RequestSpec


class ServerGroupAffinityFilter(BaseHostFilter):
    name = "ServerGroupAffinityFilter"

    def predicate(self, spec: RequestSpec) -> HostPredicate | None:
        group = spec.server_group
        if group is None or group.policy != AFFINITY or not group.member_hosts:
            return None
        group_hosts = frozenset(group.member_hosts)

        def with_the_group(host: HostState) -> bool:
            return host.host in group_hosts

        return with_the_group

    def explain(self, hosts: Sequence[HostState], spec: RequestSpec) -> str:
        assert spec.server_group is not None
        return f"affinity group is on {', '.join(sorted(set(spec.server_group.member_hosts)))}"
