"""The compute scheduler (Nova's filter scheduler, in small): pick a host for each new instance.

Pure and in-memory: ``HostState`` (a compute node's capacity and usage),
``RequestSpec`` (what to place), ``filters/`` and ``weighers/`` (one small
class per module), ``selector.select_destinations`` (filter, weigh, choose,
claim) and ``HostStateCache`` (one process' hosts, with serialised claims).
The RPC endpoint and the database come with the conductor.
"""

from __future__ import annotations

from kumo.compute.scheduler.cache import HostStateCache
from kumo.compute.scheduler.errors import FilterReport, NoValidHost
from kumo.compute.scheduler.host_state import HostState
from kumo.compute.scheduler.request_spec import FlavorSpec, RequestSpec, ServerGroupSpec
from kumo.compute.scheduler.selector import (
    HostSelector,
    SchedulerOptions,
    Selection,
    select_destinations,
)

__all__ = [
    "FilterReport", "FlavorSpec", "HostSelector", "HostState", "HostStateCache", "NoValidHost", "RequestSpec",
    "SchedulerOptions", "Selection", "ServerGroupSpec", "select_destinations",
]
