"""Prefer hosts with more free vCPUs, overcommit included (Nova's ``CPUWeigher``).

Multiplier 1.0 as Nova's ``cpu_weight_multiplier``; negative stacks.
"""

from __future__ import annotations

from operator import attrgetter

from kumo.compute.scheduler.request_spec import RequestSpec
from kumo.compute.scheduler.weighers.base import BaseHostWeigher, HostScorer

_free_vcpus = attrgetter("free_vcpus")


class CPUWeigher(BaseHostWeigher):
    name = "CPUWeigher"

    def scorer(self, spec: RequestSpec) -> HostScorer | None:
        return _free_vcpus
