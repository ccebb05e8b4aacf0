"""Dataplane drivers: what the network agent uses to make the host match its plan (Neutron's L2/L3 agents).

The registry is a literal dict, chosen by name in config. ``linuxbridge`` is
the real one (bridges, VXLAN, taps and namespaces over netlink, root only);
``fake`` keeps the same contract in memory for the agent's tests.
"""

from __future__ import annotations

from kumo.network.dataplane.fake import FakeDataplane
from kumo.network.dataplane.linuxbridge import DataplaneError, LinuxBridgeDataplane

Dataplane = LinuxBridgeDataplane | FakeDataplane

DATAPLANES: dict[str, type[LinuxBridgeDataplane] | type[FakeDataplane]] = {
    "linuxbridge": LinuxBridgeDataplane,
    "fake": FakeDataplane,
}


def create_dataplane(name: str) -> Dataplane:
    """The dataplane driver registered as ``name``."""
    try:
        cls = DATAPLANES[name]
    except KeyError:
        raise ValueError(f"unknown dataplane {name!r}; choose from {', '.join(DATAPLANES)}") from None
    return cls()


__all__ = ["DATAPLANES", "Dataplane", "DataplaneError", "FakeDataplane", "LinuxBridgeDataplane", "create_dataplane"]
