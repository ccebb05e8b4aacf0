"""Host weighers (Nova's ``nova/weights.py`` and ``scheduler/weights/__init__.py``).

Each weigher gives every host that passed the filters a raw number (Nova's
``_weigh_object``); the numbers are normalised to ``[0, 1]`` per weigher
(min to 0, max to 1, all zero when every host is equal), multiplied by the
weigher's multiplier and summed. The highest total wins. A negative
multiplier turns "spread" into "stack". As with filters, ``scorer(spec)``
reads the request once and returns a function of the host, or ``None`` when
the weigher has nothing to say about this request (no server group).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from kumo.compute.scheduler.host_state import HostState
from kumo.compute.scheduler.request_spec import RequestSpec

HostScorer = Callable[[HostState], float]


class BaseHostWeigher:
    """``minval`` / ``maxval`` fix the normalisation range instead of taking it from the hosts (Nova's)."""

    name: ClassVar[str] = "BaseHostWeigher"
    default_multiplier: ClassVar[float] = 1.0
    minval: ClassVar[float | None] = None
    maxval: ClassVar[float | None] = None

    def __init__(self, multiplier: float | None = None) -> None:
        self.multiplier = self.default_multiplier if multiplier is None else multiplier

    def scorer(self, spec: RequestSpec) -> HostScorer | None:
        """The raw weight of a host for ``spec``, or ``None`` if this weigher does not apply."""
        raise NotImplementedError

    def weigh(self, host: HostState, spec: RequestSpec) -> float:
        """One host's raw (not normalised) weight; 0 when the weigher does not apply."""
        score = self.scorer(spec)
        return 0.0 if score is None else score(host)

    def __repr__(self) -> str:
        return f"<{self.name} x{self.multiplier:g}>"


def normalize(values: Sequence[float], minval: float | None = None, maxval: float | None = None) -> list[float]:
    """Scale ``values`` to ``[0, 1]`` (Nova's ``weights.normalize``); all zero when they are all equal."""
    if not values:
        return []
    lo = min(values) if minval is None else minval
    hi = max(values) if maxval is None else maxval
    span = hi - lo
    if span <= 0:
        return [0.0] * len(values)
    return [(v - lo) / span for v in values]


def total_weights(weighers: Sequence[BaseHostWeigher], hosts: Sequence[HostState],
                  spec: RequestSpec) -> list[float]:
    """Sum of multiplier x normalised weight per host, in the order of ``hosts``."""
    totals = [0.0] * len(hosts)
    for weigher in weighers:
        if not weigher.multiplier:
            continue
        score = weigher.scorer(spec)
        if score is None:
            continue
        raw = list(map(score, hosts))
        lo = min(raw) if weigher.minval is None else weigher.minval
        hi = max(raw) if weigher.maxval is None else weigher.maxval
        if hi <= lo:
            continue  # every host equal: normalises to all zeros
        scale = weigher.multiplier / (hi - lo)
        totals = [t + (r - lo) * scale for t, r in zip(totals, raw, strict=True)]
    return totals


def weigh_hosts(weighers: Sequence[BaseHostWeigher], hosts: Sequence[HostState],
                spec: RequestSpec) -> list[tuple[float, HostState]]:
    """``(weight, host)`` best first; equal weights keep the hosts' order (Python's sort is stable)."""
    totals = total_weights(weighers, hosts, spec)
    order = sorted(range(len(hosts)), key=totals.__getitem__, reverse=True)
    return [(totals[i], hosts[i]) for i in order]
