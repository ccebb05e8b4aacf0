"""Soft server group policies as weights (Nova's ``ServerGroupSoftAffinityWeigher`` and ``...AntiAffinityWeigher``).

A host's raw weight is the number of the group's members on it: positive for
``soft-affinity`` (gather), negative for ``soft-anti-affinity`` (scatter).
Unlike the hard filters they never remove a host, so the request still
lands when the policy cannot be met.

The default multiplier is 10.0, not Nova's 1.0: with 1.0 the RAM and CPU
spread weighers (1.0 each, on the same ``[0, 1]`` scale) can outvote the
group, so a soft-affinity group would scatter whenever other hosts have more
free capacity than the members' host. At 10.0 the policy wins whenever it
can be met and the spread weighers only break ties.
"""

from __future__ import annotations

from collections import Counter
from typing import ClassVar

from kumo.compute.scheduler.host_state import HostState
from kumo.compute.scheduler.request_spec import (
    SOFT_AFFINITY,
    SOFT_ANTI_AFFINITY,
    RequestSpec,
)
from kumo.compute.scheduler.weighers.base import BaseHostWeigher, HostScorer


class _SoftGroupWeigher(BaseHostWeigher):
    policy: ClassVar[str]
    sign: ClassVar[float]
    default_multiplier = 10.0

    def scorer(self, spec: RequestSpec) -> HostScorer | None:
        group = spec.server_group
        if group is None or group.policy != self.policy or not group.member_hosts:
            return None
        members_on = {host: self.sign * count for host, count in Counter(group.member_hosts).items()}

        def members(host: HostState) -> float:
            return members_on.get(host.host, 0.0)

        return members


class ServerGroupSoftAffinityWeigher(_SoftGroupWeigher):
    name = "ServerGroupSoftAffinityWeigher"
    policy = SOFT_AFFINITY
    sign = 1.0


class ServerGroupSoftAntiAffinityWeigher(_SoftGroupWeigher):
    name = "ServerGroupSoftAntiAffinityWeigher"
    policy = SOFT_ANTI_AFFINITY
    sign = -1.0
