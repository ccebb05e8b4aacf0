"""Hard anti-affinity: at most ``max_server_per_host`` members per host (Nova's ``ServerGroupAntiAffinityFilter``).

Only for groups with policy ``anti-affinity``. The rule
``max_server_per_host`` (microversion 2.64) defaults to 1. As in Nova, a
host that already runs the instance being scheduled passes (a resize to the
same host must not be refused by its own group).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from kumo.compute.scheduler.filters.base import BaseHostFilter, HostPredicate
from kumo.compute.scheduler.host_state import HostState
from kumo.compute.scheduler.request_spec import ANTI_AFFINITY, RequestSpec


class ServerGroupAntiAffinityFilter(BaseHostFilter):
    name = "ServerGroupAntiAffinityFilter"

    def predicate(self, spec: RequestSpec) -> HostPredicate | None:
        group = spec.server_group
        if group is None or group.policy != ANTI_AFFINITY or not group.member_hosts:
            return None
        members_on = dict(Counter(group.member_hosts))
        limit = int(group.rules.get("max_server_per_host", 1))
        moving = spec.instance_uuid

        def below_limit(host: HostState) -> bool:
            if moving and moving in host.instance_uuids:
                return True
            return members_on.get(host.host, 0) < limit

        return below_limit

    def explain(self, hosts: Sequence[HostState], spec: RequestSpec) -> str:
        assert spec.server_group is not None
        limit = spec.server_group.rules.get("max_server_per_host", 1)
        return f"anti-affinity group allows {limit} per host"
