"""Host weighers, as in Nova's ``scheduler/weights/``.

``WEIGHERS`` maps configuration names to classes; ``DEFAULT_WEIGHERS`` is
the enabled set with each weigher's multiplier (Nova's
``[filter_scheduler] *_weight_multiplier`` options).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from kumo.compute.scheduler.weighers.base import (
    BaseHostWeigher,
    HostScorer,
    normalize,
    weigh_hosts,
)
from kumo.compute.scheduler.weighers.cpu import CPUWeigher
from kumo.compute.scheduler.weighers.ram import RAMWeigher
from kumo.compute.scheduler.weighers.server_group_soft import (
    ServerGroupSoftAffinityWeigher,
    ServerGroupSoftAntiAffinityWeigher,
)

WEIGHERS: dict[str, type[BaseHostWeigher]] = {
    "RAMWeigher": RAMWeigher,
    "CPUWeigher": CPUWeigher,
    "ServerGroupSoftAffinityWeigher": ServerGroupSoftAffinityWeigher,
    "ServerGroupSoftAntiAffinityWeigher": ServerGroupSoftAntiAffinityWeigher,
}

DEFAULT_WEIGHERS: Mapping[str, float] = MappingProxyType(
    {name: cls.default_multiplier for name, cls in WEIGHERS.items()})

__all__ = [
    "DEFAULT_WEIGHERS", "WEIGHERS", "BaseHostWeigher", "CPUWeigher", "HostScorer", "RAMWeigher",
    "ServerGroupSoftAffinityWeigher", "ServerGroupSoftAntiAffinityWeigher", "normalize", "weigh_hosts",
]
