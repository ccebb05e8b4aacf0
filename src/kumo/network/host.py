"""Builds and wires one host's network agent (used by :class:`kumo.node.Node`).

A node with the ``network`` role gets the whole agent (bridges, DHCP,
routers, metadata proxies); a ``compute``-only node gets the Linux bridge
part for the ports bound to it. ``network.dataplane = "fake"`` swaps every
kernel-facing driver for its in-memory twin (tests, fleet simulation).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from kumo.core.bus import Bus, Consumer
from kumo.core.bus.base import Exposed
from kumo.core.config import Settings
from kumo.core.db import Database
from kumo.network.agent import (
    AGENT_METHODS,
    AGENTS_TOPIC,
    DhcpPortMaker,
    Drivers,
    NetworkAgent,
    agent_topic,
)
from kumo.network.agent_plan import HostRole
from kumo.network.service import Neutron

log = logging.getLogger("kumo.network.host")


def make_drivers(settings: Settings, secret: str) -> Drivers:
    """The kernel-facing drivers ``network.dataplane`` names (the fakes without root: networks then exist
    in the API only, which the log says)."""
    from kumo.network import dhcp, l3
    from kumo.network.dataplane import create_dataplane
    from kumo.network.firewall import create_firewall

    fake = settings.network.dataplane == "fake"
    if not fake and os.geteuid() != 0:
        log.warning("network dataplane %r needs root; running without one (networks exist in the API only)",
                    settings.network.dataplane)
        fake = True
    if fake:
        return Drivers(dataplane=create_dataplane("fake"), firewall=create_firewall("fake"), dhcp=dhcp.FakeDhcp(),
                       nat=l3.FakeRouterNat(), metadata=None)
    log_dir = Path(settings.network.dhcp_log_dir) if settings.network.dhcp_log_dir else None
    return Drivers(dataplane=create_dataplane(settings.network.dataplane), firewall=create_firewall("nftables"),
                   dhcp=dhcp.DnsmasqDhcp(settings.state_dir / "dhcp", user="root", log_dir=log_dir),
                   nat=l3.RouterNat(), metadata=l3.MetadataProxy(metadata_url(settings), secret))


def metadata_url(settings: Settings) -> str:
    if settings.network.metadata_url:
        return settings.network.metadata_url.rstrip("/")
    listen = settings.metadata.listen
    host = "127.0.0.1" if listen in ("0.0.0.0", "::", "") else listen
    return f"http://{host}:{settings.metadata.port}"


class NetworkHost:
    """The agent plus its bus endpoints; ``stop`` leaves the kernel state in place (guests keep their network)."""

    def __init__(self, agent: NetworkAgent, consumers: list[Consumer]) -> None:
        self.agent = agent
        self.consumers = consumers

    @classmethod
    async def start(cls, settings: Settings, db: Database, bus: Bus, roles: list[str], secret: str, *,
                    drivers: Drivers | None = None,
                    on_floating_change: Callable[[set[str]], Awaitable[None]] | None = None) -> NetworkHost:
        options = settings.network
        l2_only = "network" not in roles
        role = HostRole(host=settings.node.host, l2_only=l2_only, local_ip=options.local_ip or None,
                        external_gateway_on_host=options.external_gateway_on_host)
        ports = None if l2_only else DhcpPortMaker(db, Neutron.build(db, options).ports, settings.node.host)
        agent = NetworkAgent(db, role, drivers or make_drivers(settings, secret), ensure_dhcp_port=ports,
                             heartbeat_interval=settings.node.heartbeat_interval,
                             resync_interval=options.resync_interval, agent_down_time=options.agent_down_time,
                             on_floating_change=on_floating_change)
        await agent.start()
        consumers = [await bus.serve(agent_topic(agent.host), Exposed(agent, AGENT_METHODS)),
                     await bus.serve(AGENTS_TOPIC, Exposed(agent, {"changed"}), fanout=True)]
        return cls(agent, consumers)

    async def stop(self) -> None:
        for consumer in self.consumers:
            await consumer.stop()
        await self.agent.stop()


def plug_over_bus(bus: Bus, timeout: float) -> Callable[[str, list[str]], Awaitable[dict[str, dict[str, object]]]]:
    """What a compute agent calls to have its host's network agent make the taps of ports it bound."""

    async def plug(host: str, port_ids: list[str]) -> dict[str, dict[str, object]]:
        return dict(await bus.call(agent_topic(host), "plug_vifs", {"port_ids": port_ids}, timeout=timeout))

    return plug


def announce_changes(bus: Bus) -> Callable[[], Awaitable[None]]:
    """What the network API calls after each write: every agent hears ``changed``."""

    async def changed() -> None:
        await bus.fanout(AGENTS_TOPIC, "changed")

    return changed
