"""Drop the hosts already tried for this request (Nova's ``RetryFilter`` / ``ignore_hosts``).

When a build fails on a host the conductor reschedules with that host added
to ``ignore_hosts``, so the same broken host is not picked again. Nova strips
them in ``HostManager._strip_ignore_hosts`` (and earlier in ``RetryFilter``);
as a filter it shows up in the NoValidHost counts like any other.
"""

from __future__ import annotations

from kumo.compute.scheduler.filters.base import BaseHostFilter, HostPredicate
from kumo.compute.scheduler.host_state import HostState
from kumo.compute.scheduler.request_spec import RequestSpec


class IgnoreHostsFilter(BaseHostFilter):
    name = "IgnoreHostsFilter"
    run_filter_once_per_request = True
    runs_on_forced_hosts = True

    def predicate(self, spec: RequestSpec) -> HostPredicate | None:
        if not spec.ignore_hosts:
            return None
        tried = frozenset(spec.ignore_hosts)

        def not_tried(host: HostState) -> bool:
            return host.host not in tried

        return not_tried
