"""The scheduler's in-memory view of one compute node (Nova's ``scheduler/host_manager.HostState``).

Free capacity follows the pre-placement Nova filters, which is what the
scheduler decides on here (there is no Placement service in Kumo):

* RAM (``RamFilter``): ``total * ram_allocation_ratio - reserved - used``;
* vCPUs (``CoreFilter``): ``total * cpu_allocation_ratio - used``;
* disk (``DiskFilter``): ``total * disk_allocation_ratio - used``.

``consume`` is Nova's ``consume_from_request``: once a host is chosen its
usage grows at once, so the next instance of a multi-instance request, and
the next request in this process, sees the claim before the compute node
reports it. It also stamps ``updated_at``, so a compute-node report older
than the claim does not overwrite it (``HostState.update`` in Nova).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from kumo.compute.scheduler.request_spec import RequestSpec


@dataclass(slots=True, eq=False)
class HostState:
    """One compute node: identity, health, capacity, usage and what it can run.

    ``up`` is whether the service heartbeat is fresh (the caller decides, as
    Nova's servicegroup API does). ``capabilities`` is free-form and is what
    ``ComputeCapabilitiesFilter`` matches flavor extra specs against, next to
    the named attributes. ``hypervisor_version`` is Nova's integer form
    (``major * 1_000_000 + minor * 1_000 + micro``, 8.2.0 -> 8002000).
    """

    host: str
    nodename: str = ""
    availability_zone: str = "nova"
    enabled: bool = True
    up: bool = True
    total_vcpus: int = 0
    total_memory_mb: int = 0
    total_disk_gb: int = 0
    used_vcpus: int = 0
    used_memory_mb: int = 0
    used_disk_gb: float = 0
    cpu_allocation_ratio: float = 16.0
    ram_allocation_ratio: float = 1.5
    disk_allocation_ratio: float = 1.0
    reserved_host_memory_mb: int = 512
    hypervisor_type: str = "QEMU"
    hypervisor_version: int = 0
    cpu_arch: str = "x86_64"
    capabilities: dict[str, str] = field(default_factory=dict)
    instance_uuids: set[str] = field(default_factory=set)
    num_instances: int = 0
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if not self.nodename:
            self.nodename = self.host

    @property
    def free_ram_mb(self) -> float:
        """RAM still claimable, with overcommit and the host's reservation (Nova's RamFilter)."""
        return self.total_memory_mb * self.ram_allocation_ratio - self.reserved_host_memory_mb - self.used_memory_mb

    @property
    def free_vcpus(self) -> float:
        """vCPUs still claimable with overcommit (Nova's CoreFilter)."""
        return self.total_vcpus * self.cpu_allocation_ratio - self.used_vcpus

    @property
    def free_disk_gb(self) -> float:
        """Local disk still claimable with overcommit (Nova's DiskFilter)."""
        return self.total_disk_gb * self.disk_allocation_ratio - self.used_disk_gb

    def consume(self, request: RequestSpec) -> None:
        """Claim one instance of ``request`` here (Nova's ``consume_from_request``)."""
        flavor = request.flavor
        self.used_vcpus += flavor.vcpus
        self.used_memory_mb += flavor.memory_mb
        self.used_disk_gb += flavor.disk_gb
        self.num_instances += 1
        if request.instance_uuid:
            self.instance_uuids.add(request.instance_uuid)
        self.updated_at = datetime.now(UTC)

    def release(self, request: RequestSpec) -> None:
        """Undo ``consume`` (a failed multi-instance request, a failed persist, a build that never started)."""
        flavor = request.flavor
        self.used_vcpus -= flavor.vcpus
        self.used_memory_mb -= flavor.memory_mb
        self.used_disk_gb -= flavor.disk_gb
        self.num_instances -= 1
        self.instance_uuids.discard(request.instance_uuid)
        self.updated_at = datetime.now(UTC)

    def __repr__(self) -> str:
        return (f"HostState({self.host!r}, ram {self.free_ram_mb:.0f} MB free, vcpus {self.free_vcpus:g} free, "
                f"disk {self.free_disk_gb:g} GB free, {self.num_instances} instances)")
