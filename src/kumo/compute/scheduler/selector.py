"""Pick hosts for a request: filter, weigh, choose, claim (Nova's ``FilterScheduler._schedule``).

Pure and in-memory: it gets ``HostState`` objects and mutates them (the
claim), and knows nothing of the database or the bus. The RPC endpoint
(``scheduler/manager.py``, later) and ``HostStateCache`` call it.

For each instance of the request, as Nova does:

1. ``force_hosts`` (admin ``az:host``) narrows the hosts and, as in Nova,
   skips every filter except ``IgnoreHostsFilter`` and the resource filters
   (Nova's Placement still checks resources for a forced host).
2. The filters run in order, each on the survivors of the one before; a
   filter marked ``run_filter_once_per_request`` runs for the first
   instance only. When one removes the last host, the rest do not run and
   ``NoValidHost`` says what each removed.
3. The weighers rank the survivors; the host is drawn at random among the
   best ``host_subset_size`` (default 1: the best, first on ties).
4. The chosen host ``consume``s the instance at once, and the group's
   ``member_hosts`` grows, so the next instance sees both.

A multi-instance request is all or nothing: if instance *k* finds no host,
the claims of the instances before it are released.
"""

from __future__ import annotations

import heapq
import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from kumo.compute.scheduler.errors import FilterReport, NoValidHost
from kumo.compute.scheduler.filters import DEFAULT_FILTERS, FILTERS
from kumo.compute.scheduler.host_state import HostState
from kumo.compute.scheduler.request_spec import RequestSpec
from kumo.compute.scheduler.weighers import DEFAULT_WEIGHERS, WEIGHERS
from kumo.compute.scheduler.weighers.base import total_weights

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class SchedulerOptions:
    """Nova's ``[filter_scheduler]`` options that matter here: filters, weigher multipliers, subset size."""

    enabled_filters: tuple[str, ...] = DEFAULT_FILTERS
    weighers: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHERS))
    host_subset_size: int = 1


@dataclass(frozen=True)
class Selection:
    """One instance placed on one host (Nova's ``objects.Selection``), with the spec it consumed."""

    host: HostState
    spec: RequestSpec

    def release(self) -> None:
        """Give the claim back (the build failed, or the claim could not be persisted)."""
        self.host.release(self.spec)


class HostSelector:
    """The filters and weighers built once from ``SchedulerOptions``; ``select`` runs a request through them."""

    def __init__(self, options: SchedulerOptions | None = None, *, rng: random.Random | None = None) -> None:
        options = options or SchedulerOptions()
        unknown = [n for n in options.enabled_filters if n not in FILTERS]
        unknown += [n for n in options.weighers if n not in WEIGHERS]
        if unknown:
            raise ValueError(f"unknown scheduler filters or weighers: {', '.join(unknown)}")
        self.filters = [FILTERS[name]() for name in options.enabled_filters]
        self.weighers = [WEIGHERS[name](multiplier) for name, multiplier in options.weighers.items()]
        self.host_subset_size = max(1, options.host_subset_size)
        self._rng = rng or random.Random()

    def filter_hosts(self, spec: RequestSpec, hosts: Sequence[HostState], *,
                     first: bool = True) -> tuple[list[HostState], FilterReport]:
        """The hosts that pass every filter, and what each filter removed."""
        report = FilterReport(hosts=len(hosts))
        candidates = list(hosts)
        filters = self.filters
        if spec.force_hosts:
            forced = frozenset(spec.force_hosts)
            kept = [h for h in candidates if h.host in forced]
            if len(kept) < len(candidates):
                report.removed.append(("force_hosts", len(candidates) - len(kept)))
            if not kept:
                report.detail = f"forced hosts {', '.join(spec.force_hosts)} are unknown"
                return [], report
            candidates = kept
            filters = [f for f in filters if f.runs_on_forced_hosts]
        for host_filter in filters:
            if not first and host_filter.run_filter_once_per_request:
                continue
            check = host_filter.predicate(spec)
            if check is None:
                continue
            passed = list(filter(check, candidates))
            if len(passed) < len(candidates):
                report.removed.append((host_filter.name, len(candidates) - len(passed)))
                if not passed:
                    report.detail = host_filter.explain(candidates, spec)
                    return [], report
                candidates = passed
        return candidates, report

    def best_hosts(self, spec: RequestSpec, hosts: Sequence[HostState], count: int) -> list[HostState]:
        """The ``count`` heaviest hosts, best first; ties keep the order of ``hosts`` (as Nova's sort)."""
        totals = total_weights(self.weighers, hosts, spec)
        best = heapq.nlargest(count, range(len(hosts)), key=totals.__getitem__)
        return [hosts[i] for i in best]

    def select(self, spec: RequestSpec, hosts: Iterable[HostState], num: int | None = None, *,
               instance_uuids: Sequence[str] = ()) -> list[Selection]:
        """Place ``num`` (default ``spec.num_instances``) instances and claim them; all or nothing.

        ``instance_uuids`` names the instances (the conductor always passes
        them, as Nova's does); without them the first is ``spec.instance_uuid``
        and the others are claimed without a UUID.
        """
        num = spec.num_instances if num is None else num
        if num < 1:
            raise ValueError("num must be at least 1")
        if instance_uuids and len(instance_uuids) != num:
            raise ValueError(f"{len(instance_uuids)} instance UUIDs for {num} instances")
        uuids = list(instance_uuids) or [spec.instance_uuid] + [""] * (num - 1)
        all_hosts = candidates = list(hosts)
        group = spec.server_group
        selections: list[Selection] = []
        try:
            for index, uuid in enumerate(uuids):
                one = spec if (uuid == spec.instance_uuid and group is spec.server_group) \
                    else replace(spec, instance_uuid=uuid, server_group=group)
                candidates, report = self.filter_hosts(one, candidates, first=index == 0)
                if not candidates:
                    if index:  # report against every host, not the survivors of the first instance
                        report = self.filter_hosts(one, all_hosts)[1]
                    raise NoValidHost(report, instance_index=index, num_instances=num)
                if LOG.isEnabledFor(logging.DEBUG):
                    LOG.debug("instance %s: %d of %d hosts passed the filters; removed %s",
                              uuid or index, len(candidates), report.hosts, report.removed)
                best = self.best_hosts(one, candidates, self.host_subset_size)
                host = best[0] if len(best) == 1 else self._rng.choice(best)
                host.consume(one)
                selections.append(Selection(host, one))
                if group is not None:
                    group = group.with_member_on(host.host)
        except BaseException as exc:
            for selection in reversed(selections):
                selection.release()
            if isinstance(exc, NoValidHost):
                LOG.info("%s (request for instance %s)", exc.message, spec.instance_uuid or "-")
            raise
        return selections


_DEFAULT_SELECTOR = HostSelector()


def select_destinations(spec: RequestSpec, hosts: Iterable[HostState], num: int | None = None, *,
                        instance_uuids: Sequence[str] = (),
                        selector: HostSelector | None = None) -> list[HostState]:
    """The host for each instance of ``spec``, claimed in ``hosts``; raises ``NoValidHost``.

    With the default options unless a ``selector`` is given. One entry per
    instance, so a host appears more than once when it takes several.
    """
    selections = (selector or _DEFAULT_SELECTOR).select(spec, hosts, num, instance_uuids=instance_uuids)
    return [s.host for s in selections]
