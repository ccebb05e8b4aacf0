"""The host filter interface (Nova's ``scheduler/filters/__init__.BaseHostFilter``).

Nova calls ``host_passes(host_state, spec)`` once per host per filter. That is
the contract here too, but the work is split so a decision over thousands of
hosts stays cheap: ``predicate(spec)`` reads the request once (sizes,
requested zone, parsed extra specs) and returns a function of the host alone,
or ``None`` when the filter has nothing to check for this request (no zone
requested, no server group, no hints) and is skipped without touching a host.
``host_passes`` and ``filter_all`` are both built on it, so there is one
truth per filter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from kumo.compute.scheduler.host_state import HostState
from kumo.compute.scheduler.request_spec import RequestSpec

HostPredicate = Callable[[HostState], bool]


class BaseHostFilter:
    """One yes/no question about a host for a request.

    ``run_filter_once_per_request`` (Nova's flag of the same name): for a
    multi-instance request the filter runs for the first instance only,
    because its answer cannot change when the earlier instances are claimed
    (zones, images, hints). Resource and server-group filters must rerun.

    ``runs_on_forced_hosts`` marks the filters that still run when an admin
    forces a host: Nova skips every filter then, but still drops the hosts
    already tried, and Placement still refuses a host without room (the
    resource filters are Kumo's Placement).
    """

    name: ClassVar[str] = "BaseHostFilter"
    run_filter_once_per_request: ClassVar[bool] = False
    runs_on_forced_hosts: ClassVar[bool] = False

    def predicate(self, spec: RequestSpec) -> HostPredicate | None:
        """The per-host test for ``spec``, or ``None`` if this filter does not apply to it."""
        raise NotImplementedError

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        """Whether ``host`` can take one instance of ``spec`` as far as this filter knows."""
        check = self.predicate(spec)
        return check is None or check(host)

    def filter_all(self, hosts: Sequence[HostState], spec: RequestSpec) -> list[HostState]:
        """The hosts that pass, in their original order."""
        check = self.predicate(spec)
        return list(hosts) if check is None else list(filter(check, hosts))

    def explain(self, hosts: Sequence[HostState], spec: RequestSpec) -> str:
        """Why no host of ``hosts`` passed, for the NoValidHost message ("" when the count says it all)."""
        return ""

    def __repr__(self) -> str:
        return f"<{self.name}>"
