"""Host filters: one small class per module, as in Nova's ``scheduler/filters/``.

``FILTERS`` maps the names operators write in configuration (Nova's
``[filter_scheduler] enabled_filters``) to the classes. ``DEFAULT_FILTERS``
is the order they run in: a filter only sees the hosts that passed the ones
before it, so those that skip themselves when the request does not ask
(ignore_hosts, zone) and the cheap, selective ones come first, and those
that loop over extra specs or group members last.
"""

from __future__ import annotations

from kumo.compute.scheduler.filters.availability_zone_filter import (
    AvailabilityZoneFilter,
)
from kumo.compute.scheduler.filters.base import BaseHostFilter, HostPredicate
from kumo.compute.scheduler.filters.compute_capabilities_filter import (
    ComputeCapabilitiesFilter,
)
from kumo.compute.scheduler.filters.compute_filter import ComputeFilter
from kumo.compute.scheduler.filters.core_filter import CoreFilter
from kumo.compute.scheduler.filters.different_host_filter import DifferentHostFilter
from kumo.compute.scheduler.filters.disk_filter import DiskFilter
from kumo.compute.scheduler.filters.ignore_hosts_filter import IgnoreHostsFilter
from kumo.compute.scheduler.filters.image_props_filter import ImagePropertiesFilter
from kumo.compute.scheduler.filters.ram_filter import RamFilter
from kumo.compute.scheduler.filters.same_host_filter import SameHostFilter
from kumo.compute.scheduler.filters.server_group_affinity_filter import (
    ServerGroupAffinityFilter,
)
from kumo.compute.scheduler.filters.server_group_anti_affinity_filter import (
    ServerGroupAntiAffinityFilter,
)

FILTERS: dict[str, type[BaseHostFilter]] = {
    "IgnoreHostsFilter": IgnoreHostsFilter,
    "ComputeFilter": ComputeFilter,
    "AvailabilityZoneFilter": AvailabilityZoneFilter,
    "RamFilter": RamFilter,
    "CoreFilter": CoreFilter,
    "DiskFilter": DiskFilter,
    "ImagePropertiesFilter": ImagePropertiesFilter,
    "ComputeCapabilitiesFilter": ComputeCapabilitiesFilter,
    "SameHostFilter": SameHostFilter,
    "DifferentHostFilter": DifferentHostFilter,
    "ServerGroupAntiAffinityFilter": ServerGroupAntiAffinityFilter,
    "ServerGroupAffinityFilter": ServerGroupAffinityFilter,
}

DEFAULT_FILTERS: tuple[str, ...] = (
    "IgnoreHostsFilter",
    "ComputeFilter",
    "AvailabilityZoneFilter",
    "RamFilter",
    "CoreFilter",
    "DiskFilter",
    "ImagePropertiesFilter",
    "ComputeCapabilitiesFilter",
    "SameHostFilter",
    "DifferentHostFilter",
    "ServerGroupAntiAffinityFilter",
    "ServerGroupAffinityFilter",
)

__all__ = [
    "DEFAULT_FILTERS", "FILTERS", "AvailabilityZoneFilter", "BaseHostFilter", "ComputeCapabilitiesFilter",
    "ComputeFilter", "CoreFilter", "DifferentHostFilter", "DiskFilter", "HostPredicate", "IgnoreHostsFilter",
    "ImagePropertiesFilter", "RamFilter", "SameHostFilter", "ServerGroupAffinityFilter",
    "ServerGroupAntiAffinityFilter",
]
