"""The scheduler's one error: no host can take the request (Nova's ``exception.NoValidHost``).

It is a ``KumoError`` with status 400. A boot never shows it as an HTTP
error: the API has already answered 202 and the conductor records the
message as the instance fault (status ``ERROR``), as Nova does. Move
operations (resize, cold and live migration, evacuate with a target) that
schedule while the API waits answer 400 with it, which is what Nova's API
does there.

The message says, in order, how many hosts each filter removed, and for the
filter that removed the last ones, why:
``No valid host was found. 1000 hosts: ComputeFilter removed 3, RamFilter
removed 997 (need 4096 MB RAM; best host has 2048 MB free)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from kumo.core.errors import KumoError


@dataclass
class FilterReport:
    """What the filters did to one instance's candidate hosts."""

    hosts: int
    removed: list[tuple[str, int]] = field(default_factory=list)
    detail: str = ""

    def describe(self) -> str:
        noun = "host" if self.hosts == 1 else "hosts"
        if not self.hosts:
            return "0 hosts: no compute host is known"
        steps = ", ".join(f"{name} removed {count}" for name, count in self.removed)
        if self.detail:
            steps += f" ({self.detail})"
        return f"{self.hosts} {noun}: {steps}"


class NoValidHost(KumoError):
    status = 400
    title = "Bad Request"

    def __init__(self, report: FilterReport, *, instance_index: int = 0, num_instances: int = 1) -> None:
        self.report = report
        self.instance_index = instance_index
        self.num_instances = num_instances
        reason = report.describe()
        if num_instances > 1:
            reason = (f"There are not enough hosts available for instance {instance_index + 1} "
                      f"of {num_instances}: {reason}")
        super().__init__(f"No valid host was found. {reason}")

    @property
    def removed_by(self) -> Sequence[tuple[str, int]]:
        """``(filter name, hosts removed)`` in the order the filters ran."""
        return self.report.removed
