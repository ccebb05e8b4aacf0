"""Security-group drivers: ``nftables`` on a real host, ``fake`` for tests (chosen by name from configuration)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from kumo.network.dataplane.base import PortFirewall
from kumo.network.firewall.fake import FakeFirewall
from kumo.network.firewall.nftables import FirewallError, NftablesFirewall


class Firewall(Protocol):
    """What the agent needs of a firewall driver (synchronous, idempotent)."""

    def apply(self, ports: Sequence[PortFirewall], guarded_bridges: Sequence[str] = ()) -> None: ...

    def clear(self) -> None: ...

    def render(self, ports: Sequence[PortFirewall], guarded_bridges: Sequence[str] = ()) -> str: ...


FIREWALLS: dict[str, type[NftablesFirewall] | type[FakeFirewall]] = {"nftables": NftablesFirewall, "fake": FakeFirewall}


def create_firewall(name: str, **kwargs: Any) -> Firewall:
    """The driver registered as ``name`` (keyword arguments go to its constructor, e.g. ``table=``)."""
    try:
        factory = FIREWALLS[name]
    except KeyError:
        raise ValueError(f"unknown firewall driver {name!r} (known: {', '.join(sorted(FIREWALLS))})") from None
    return factory(**kwargs)


__all__ = ["FIREWALLS", "FakeFirewall", "Firewall", "FirewallError", "NftablesFirewall", "create_firewall"]
