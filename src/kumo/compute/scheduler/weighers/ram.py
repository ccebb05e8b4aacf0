"""Prefer hosts with more free RAM (Nova's ``RAMWeigher``).

Multiplier 1.0 (Nova's ``ram_weight_multiplier``) spreads instances over
hosts; a negative multiplier stacks them, filling one host before the next.
"""

from __future__ import annotations

from operator import attrgetter

from kumo.compute.scheduler.request_spec import RequestSpec
from kumo.compute.scheduler.weighers.base import BaseHostWeigher, HostScorer

_free_ram = attrgetter("free_ram_mb")


class RAMWeigher(BaseHostWeigher):
    name = "RAMWeigher"

    def scorer(self, spec: RequestSpec) -> HostScorer | None:
        return _free_ram
