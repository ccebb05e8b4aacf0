"""A firewall that only remembers what it was asked to apply (for agent tests without root or nftables)."""

from __future__ import annotations

from collections.abc import Sequence

from kumo.network.dataplane.base import PortFirewall


class FakeFirewall:
    """Records the last plan; ``applies`` counts calls so tests can see that an unchanged plan was re-applied."""

    def __init__(self, table: str = "kumo", guard_table: str = "kumo-guard") -> None:
        self.table = table
        self.guard_table = guard_table
        self.ports: tuple[PortFirewall, ...] = ()
        self.guarded_bridges: tuple[str, ...] = ()
        self.applies = 0
        self.cleared = False

    def apply(self, ports: Sequence[PortFirewall], guarded_bridges: Sequence[str] = ()) -> None:
        self.ports = tuple(ports)
        self.guarded_bridges = tuple(guarded_bridges)
        self.applies += 1
        self.cleared = False

    def clear(self) -> None:
        self.ports = ()
        self.guarded_bridges = ()
        self.cleared = True

    def render(self, ports: Sequence[PortFirewall], guarded_bridges: Sequence[str] = ()) -> str:
        """A readable summary instead of nft text (the fake has no ruleset)."""
        taps = " ".join(p.tap for p in ports)
        return f"# fake firewall: ports {taps or '-'}; guarded {' '.join(guarded_bridges) or '-'}\n"

    def by_tap(self, tap: str) -> PortFirewall | None:
        """The last applied plan of one tap (None when it is not filtered)."""
        return next((p for p in self.ports if p.tap == tap), None)
