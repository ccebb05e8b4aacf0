"""What the scheduler is asked to place: Nova's ``RequestSpec``, reduced to what filters read.

Nova's ``objects/request_spec.py`` carries the flavor, the image, the
availability zone, the scheduler hints, the server group and the hosts to
ignore or force. These frozen dataclasses carry the same, as plain values,
so the scheduler can run without a database; the conductor builds them from
its rows (flavor, image metadata, the server group's members) before asking.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: Server group policies (Nova's ``InstanceGroup.policy``, microversion 2.64 wire values).
AFFINITY = "affinity"
ANTI_AFFINITY = "anti-affinity"
SOFT_AFFINITY = "soft-affinity"
SOFT_ANTI_AFFINITY = "soft-anti-affinity"
GROUP_POLICIES = (AFFINITY, ANTI_AFFINITY, SOFT_AFFINITY, SOFT_ANTI_AFFINITY)


@dataclass(frozen=True, slots=True)
class FlavorSpec:
    """The flavor's sizes (Nova ``Flavor``): ``swap`` is in MB, disks in GB."""

    vcpus: int
    memory_mb: int
    root_gb: int = 0
    ephemeral_gb: int = 0
    swap: int = 0
    extra_specs: Mapping[str, str] = field(default_factory=dict)

    @property
    def disk_gb(self) -> float:
        """Local disk the instance needs: root + ephemeral + swap, as Nova's DiskFilter adds them."""
        return self.root_gb + self.ephemeral_gb + self.swap / 1024


@dataclass(frozen=True, slots=True)
class ServerGroupSpec:
    """A server group as the scheduler sees it (Nova ``InstanceGroup``).

    ``member_hosts`` has one entry per member instance already placed, so a
    host carrying two members appears twice; that is what anti-affinity's
    ``max_server_per_host`` rule counts and what the soft weighers weigh.
    """

    policy: str
    member_hosts: tuple[str, ...] = ()
    rules: Mapping[str, int] = field(default_factory=dict)
    uuid: str = ""

    def __post_init__(self) -> None:
        if self.policy not in GROUP_POLICIES:
            raise ValueError(f"unknown server group policy {self.policy!r}; expected one of {GROUP_POLICIES}")

    def with_member_on(self, host: str) -> ServerGroupSpec:
        """The group after one more member landed on ``host`` (Nova appends to ``instance_group.hosts``)."""
        return ServerGroupSpec(self.policy, (*self.member_hosts, host), self.rules, self.uuid)


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestSpec:
    """One boot (or move) request.

    ``image_properties`` uses Glance's property names (``hw_architecture``,
    ``img_hv_type``, ``hw_vm_mode`` and their legacy spellings).
    ``scheduler_hints`` holds ``same_host`` / ``different_host`` (a list of
    instance UUIDs, or one UUID) and ``group``. ``ignore_hosts`` are the hosts
    already tried (a reschedule adds the failed host); ``force_hosts`` is the
    admin's ``az:host`` pin. Fields are keyword-only.
    """

    instance_uuid: str = ""
    project_id: str = ""
    flavor: FlavorSpec
    image_properties: Mapping[str, str] = field(default_factory=dict)
    availability_zone: str | None = None
    num_instances: int = 1
    scheduler_hints: Mapping[str, str | list[str]] = field(default_factory=dict)
    server_group: ServerGroupSpec | None = None
    ignore_hosts: tuple[str, ...] = ()
    force_hosts: tuple[str, ...] = ()

    def hint_list(self, name: str) -> tuple[str, ...]:
        """A scheduler hint as a tuple: Nova accepts one string or a list for ``same_host`` and friends."""
        value = self.scheduler_hints.get(name)
        if not value:
            return ()
        return (value,) if isinstance(value, str) else tuple(value)
