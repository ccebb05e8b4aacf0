"""The network agent of one host: Neutron's Linux bridge, DHCP, L3 and metadata agents in one loop.

One coroutine owns the host's kernel state. Whatever happens — a port bound
by a compute agent (:meth:`NetworkAgent.plug_vifs`, a bus call that returns
once the taps exist), a change announced by the network API (a fanout
``changed``), the periodic resync, an agent restart — it does the same
thing: read the tables (:mod:`kumo.network.agent_plan`), and make the
drivers match the plan. Requests that arrive during a sync are folded into
the next one, so a burst of 1,000 port creations costs a handful of syncs,
not 1,000.

Order within a sync: DHCP ports first (the only rows the agent writes, as
Neutron's DHCP agent asks its server for its port); then dnsmasq and
metadata proxies of vanished networks/routers stop (before their namespaces
go); the firewall (so a new tap is filtered from the moment it joins a
bridge); the links and namespaces; the DHCP servers; router NAT and
metadata proxies; last, port and floating IP statuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select, update

from kumo.core.db import Database, utcnow
from kumo.core.periodic import every
from kumo.network.agent_plan import (
    DHCP_OWNER,
    HostRole,
    Snapshot,
    build_plan,
    fixed_ips,
    is_vm_port,
    read_snapshot,
    summary,
)
from kumo.network.common import Caller
from kumo.network.dataplane.base import DhcpPlan, HostPlan, RouterPlan, VifPlan
from kumo.network.firewall import Firewall
from kumo.network.models import Agent, FloatingIP, Port

log = logging.getLogger("kumo.network.agent")
AGENTS_TOPIC = "network-agents"  # fanout: every agent hears "changed"
AGENT_METHODS = frozenset({"plug_vifs", "changed"})
#: (agent_type, binary, topic) of the rows this agent reports, by what it does.
L2_AGENT = ("Linux bridge agent", "neutron-linuxbridge-agent", "N/A")
NETWORK_HOST_AGENTS = (("DHCP agent", "neutron-dhcp-agent", "dhcp_agent"),
                       ("L3 agent", "neutron-l3-agent", "l3_agent"),
                       ("Metadata agent", "neutron-metadata-agent", "N/A"))


#: Up to this many taps to add or remove are done one by one; more (or any other change) is one full sync.
SMALL_CHANGE = 8


def _links_of(plan: HostPlan) -> tuple[Any, ...]:
    """What of a plan the link driver acts on, apart from the VIFs (DHCP hosts are dnsmasq's business)."""
    dhcp_ports = tuple((d.network_id, d.namespace, d.interface, d.port_id, d.mac_address, d.addresses, d.mtu)
                       for d in plan.dhcp)
    return plan.networks, dhcp_ports, plan.routers


def agent_topic(host: str) -> str:
    return f"network.{host}"


class Dataplane(Protocol):
    def sync(self, plan: HostPlan) -> None: ...
    def ensure_vif(self, plan: VifPlan) -> None: ...
    def delete_vif(self, port_id: str) -> None: ...


class Dhcp(Protocol):
    def ensure(self, plan: DhcpPlan) -> None: ...
    def remove(self, network_id: str) -> None: ...
    def networks(self) -> set[str]: ...


class RouterNat(Protocol):
    def apply(self, plan: RouterPlan) -> None: ...


class MetadataProxies(Protocol):
    async def start(self, router_id: str, namespace: str, clients: Any) -> None: ...
    async def stop(self, router_id: str) -> None: ...
    def running(self) -> set[str]: ...


@dataclass
class Drivers:
    """The kernel-facing parts; the fake set makes the agent testable without root."""

    dataplane: Dataplane
    firewall: Firewall
    dhcp: Dhcp
    nat: RouterNat
    metadata: MetadataProxies | None = None


class SyncFailed(Exception):
    """The host could not be brought to the plan (the reason is the driver's)."""


class NetworkAgent:
    def __init__(self, db: Database, role: HostRole, drivers: Drivers, *, ensure_dhcp_port: DhcpPortMaker | None,
                 heartbeat_interval: float = 10.0, resync_interval: float = 30.0, agent_down_time: float = 75.0,
                 on_floating_change: Callable[[set[str]], Awaitable[None]] | None = None) -> None:
        self.db = db
        self.role = role
        self.drivers = drivers
        self.ensure_dhcp_port = ensure_dhcp_port
        self.heartbeat_interval = heartbeat_interval
        self.resync_interval = resync_interval
        self.agent_down_time = agent_down_time
        self.on_floating_change = on_floating_change
        self.plan: HostPlan | None = None
        self.last_sync_seconds = 0.0
        self.syncs = 0
        self._requested = 0
        self._done = 0
        self._failed: dict[int, str] = {}
        self._wake = asyncio.Event()
        self._synced = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []
        self._floating_seen: dict[str, tuple[str, ...]] | None = None
        self._applied: HostPlan | None = None  # the last plan applied in full; parts equal to it are skipped
        self._full = True  # the next sync re-applies every part
        self._started = utcnow()

    @property
    def host(self) -> str:
        return self.role.host

    # -- life

    async def start(self) -> None:
        """Report in, bring the host to the plan once (restart safety), then follow changes."""
        await self.report()
        ticket = self.request_sync()
        self._tasks = [asyncio.create_task(self._loop(), name=f"network-agent-{self.host}"),
                       asyncio.create_task(every(self.heartbeat_interval, self.report), name="agent-report"),
                       asyncio.create_task(every(self.resync_interval, self._periodic), name="agent-resync")]
        await self.wait_synced(ticket, timeout=120.0, raise_on_failure=False)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    async def _periodic(self) -> None:
        """Re-apply everything, even what looks unchanged: heals kernel state someone else changed."""
        self._full = True
        self.request_sync()

    # -- RPC

    async def changed(self) -> None:
        """The network API changed something (fanout): sync soon."""
        self.request_sync()

    async def plug_vifs(self, port_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Make the taps of ports just bound to this host; answer each port's tap and MTU once it is on its bridge."""
        await self.wait_synced(self.request_sync(), timeout=60.0)
        assert self.plan is not None
        vifs = {v.port_id: v for v in self.plan.vifs}
        missing = [p for p in port_ids if p not in vifs]
        if missing:
            raise SyncFailed(f"ports {', '.join(missing)} are not bound to host {self.host}")
        return {p: {"tap": vifs[p].tap, "mtu": vifs[p].mtu, "bridge": vifs[p].bridge} for p in port_ids}

    # -- the loop

    def request_sync(self) -> int:
        self._requested += 1
        self._wake.set()
        return self._requested

    async def wait_synced(self, ticket: int, *, timeout: float, raise_on_failure: bool = True) -> None:
        async with self._synced:
            await asyncio.wait_for(self._synced.wait_for(lambda: self._done >= ticket), timeout)
        failures = [reason for t, reason in self._failed.items() if t >= ticket]
        if failures and raise_on_failure:
            raise SyncFailed(failures[-1])

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            target = self._requested
            started = time.perf_counter()
            try:
                await self.sync_once()
                self._failed = {t: r for t, r in self._failed.items() if t > target}
            except Exception as exc:  # noqa: BLE001 - the loop must survive; callers get the reason
                log.exception("network agent sync failed")
                self._failed[target] = f"network agent on {self.host} failed: {exc}"
                await asyncio.sleep(1.0)
            self.last_sync_seconds = time.perf_counter() - started
            self.syncs += 1
            async with self._synced:
                self._done = target
                self._synced.notify_all()

    async def sync_once(self) -> HostPlan:
        snap = await read_snapshot(self.db)
        if not self.role.l2_only and self.ensure_dhcp_port is not None:
            if await self.ensure_dhcp_port.reconcile(snap):
                snap = await read_snapshot(self.db)  # the DHCP ports it just made or changed
        role = self.role
        peers = await self._peers()
        if peers != role.peers:
            role = self.role = dataclasses.replace(role, peers=peers)
        plan = build_plan(snap, role)
        await self._apply(plan)
        self.plan = plan
        await self._record_status(snap, plan)
        return plan

    async def _apply(self, plan: HostPlan) -> None:
        """Bring the host to ``plan``; parts equal to the last applied plan are skipped (a rule change on a
        host with 1,000 ports reloads the firewall only, not 1,000 links)."""
        d = self.drivers
        last = None if self._full else self._applied
        self._full, self._applied = False, None  # a failure below means the next sync redoes everything
        wanted_dhcp = {p.network_id for p in plan.dhcp}
        for network_id in await asyncio.to_thread(d.dhcp.networks):
            if network_id not in wanted_dhcp:
                await asyncio.to_thread(d.dhcp.remove, network_id)
        wanted_routers = {r.router_id: r for r in plan.routers}
        if d.metadata is not None:
            for router_id in d.metadata.running() - set(wanted_routers):
                await d.metadata.stop(router_id)
        if last is None or (last.firewall, last.guarded_bridges) != (plan.firewall, plan.guarded_bridges):
            await asyncio.to_thread(d.firewall.apply, plan.firewall, plan.guarded_bridges)
        await self._apply_links(last, plan)
        before = {p.network_id: p for p in last.dhcp} if last is not None else {}
        for dhcp in plan.dhcp:
            if before.get(dhcp.network_id) != dhcp:
                await asyncio.to_thread(d.dhcp.ensure, dhcp)
        routers_before = {r.router_id: r for r in last.routers} if last is not None else {}
        for router in plan.routers:
            if routers_before.get(router.router_id) == router:
                continue
            await asyncio.to_thread(d.nat.apply, router)
            if d.metadata is not None and router.interfaces:
                await d.metadata.start(router.router_id, router.namespace, router.metadata)
            elif d.metadata is not None and router.router_id in d.metadata.running():
                await d.metadata.stop(router.router_id)
        self._applied = plan

    async def _apply_links(self, last: HostPlan | None, plan: HostPlan) -> None:
        """Links and namespaces: a few VIFs come or go -> just those taps; anything else -> a full sync."""
        d = self.drivers
        if last is not None and _links_of(last) == _links_of(plan):
            before = {v.port_id: v for v in last.vifs}
            after = {v.port_id: v for v in plan.vifs}
            added = [v for v in plan.vifs if before.get(v.port_id) != v]
            gone = [p for p in before if p not in after]
            if len(added) + len(gone) <= SMALL_CHANGE:
                for vif in added:
                    await asyncio.to_thread(d.dataplane.ensure_vif, vif)
                for port_id in gone:
                    await asyncio.to_thread(d.dataplane.delete_vif, port_id)
                return
        await asyncio.to_thread(d.dataplane.sync, plan)

    # -- what the agent writes back

    async def _record_status(self, snap: Snapshot, plan: HostPlan) -> None:
        """Ports the host serves become ACTIVE (bound VIFs get ``binding:vif_type`` bridge); floating IPs follow."""
        vif_ports = {v.port_id: v for v in plan.vifs}
        served = set(vif_ports)
        served |= {p.port_id for p in plan.dhcp}
        for router in plan.routers:
            served |= {i.port_id for i in router.interfaces}
            if router.gateway is not None:
                served.add(router.gateway.port_id)
        mapped = {(r.router_id, f.floating_ip) for r in plan.routers for f in r.floating}
        async with self.db.session() as s:
            for port_id in served:
                port = snap.ports.get(port_id)
                if port is None:
                    continue
                values: dict[str, Any] = {}
                if port.status != "ACTIVE":
                    values["status"] = "ACTIVE"
                vif = vif_ports.get(port_id)
                if vif is not None and (port.binding_vif_type != "bridge"
                                        or (port.binding_vif_details or {}).get("devname") != vif.tap):
                    values["binding_vif_type"] = "bridge"
                    values["binding_vif_details"] = {"devname": vif.tap, "port_filter": True,
                                                     "connectivity": "l2", "bridge_name": vif.bridge}
                if values:
                    values["updated_at"] = utcnow()
                    await s.execute(update(Port).where(Port.id == port_id).values(**values))
            if not self.role.l2_only:
                for fip in snap.floating:
                    status = "ACTIVE" if (fip.router_id, fip.floating_ip_address) in mapped else "DOWN"
                    if fip.status != status:
                        await s.execute(update(FloatingIP).where(FloatingIP.id == fip.id).values(status=status))
        if not self.role.l2_only:
            await self._announce_floating(snap)

    async def _announce_floating(self, snap: Snapshot) -> None:
        """Tell compute which instances' floating IPs changed (Neutron's ``network-changed`` event to Nova)."""
        seen: dict[str, tuple[str, ...]] = {}
        for fip in snap.floating:
            port = snap.ports.get(fip.fixed_port_id or "")
            if port is not None and is_vm_port(port):
                seen[port.device_id] = tuple(sorted((*seen.get(port.device_id, ()), fip.floating_ip_address)))
        previous, self._floating_seen = self._floating_seen, seen
        if previous is None or self.on_floating_change is None:
            return
        changed = {i for i in set(seen) | set(previous) if seen.get(i) != previous.get(i)}
        if changed:
            try:
                await self.on_floating_change(changed)
            except Exception:  # noqa: BLE001 - compute's cache catches up at its next refresh
                log.warning("could not tell compute about floating IP changes", exc_info=True)

    # -- agents table

    def _agent_types(self) -> list[tuple[str, str, str]]:
        return [L2_AGENT] if self.role.l2_only else [L2_AGENT, *NETWORK_HOST_AGENTS]

    async def report(self) -> None:
        """Neutron's ``report_state``: one row per role, with what the role holds."""
        now = utcnow()
        counts = summary(self.plan) if self.plan is not None else {}
        configs = {
            "Linux bridge agent": {"tunneling_ip": self.role.local_ip or "", "tunnel_types": ["vxlan"],
                                   "devices": counts.get("devices", 0), "interface_mappings": {}},
            "DHCP agent": {"dhcp_driver": "dnsmasq", "networks": counts.get("dhcp_networks", 0)},
            "L3 agent": {"agent_mode": "legacy", "routers": counts.get("routers", 0),
                         "floating_ips": counts.get("floating_ips", 0)},
            "Metadata agent": {"metadata_proxy_socket": "in-process", "routers": counts.get("routers", 0)},
        }
        async with self.db.session() as s:
            for agent_type, binary, topic in self._agent_types():
                row = await s.scalar(select(Agent).where(Agent.agent_type == agent_type, Agent.host == self.host))
                if row is None:
                    zone = "nova" if agent_type in ("DHCP agent", "L3 agent") else None
                    s.add(Agent(id=str(uuid.uuid4()), agent_type=agent_type, binary=binary, topic=topic,
                                host=self.host, configurations=configs[agent_type], created_at=now,
                                availability_zone=zone,
                                started_at=self._started, heartbeat_timestamp=now))
                else:
                    row.configurations = configs[agent_type]
                    row.heartbeat_timestamp = now
                    if row.started_at < self._started:
                        row.started_at = self._started

    async def _peers(self) -> tuple[str, ...]:
        """Tunnel addresses of the other hosts' live agents (VXLAN flooding goes to each)."""
        async with self.db.session() as s:
            rows = await s.scalars(select(Agent).where(Agent.agent_type == L2_AGENT[0], Agent.host != self.host))
            now = utcnow()
            addresses = {str((r.configurations or {}).get("tunneling_ip") or "") for r in rows
                         if (now - r.heartbeat_timestamp).total_seconds() < self.agent_down_time}
        addresses.discard("")
        addresses.discard(self.role.local_ip or "")
        return tuple(sorted(addresses))


class DhcpPortMaker:
    """Keeps one ``network:dhcp`` port per network with a DHCP subnet, with an address on each such subnet.

    Neutron's DHCP agent asks its server for this port; the agent here uses
    the port service directly (same IPAM, same quotas-exempt admin caller).
    """

    def __init__(self, db: Database, ports: Any, host: str) -> None:
        self.db = db
        self.ports = ports
        self.host = host
        self.caller = Caller(project_id="", is_admin=True)

    def device_id(self, network_id: str) -> str:
        return f"dhcp{uuid.uuid5(uuid.NAMESPACE_DNS, self.host)}-{network_id}"

    async def reconcile(self, snap: Snapshot) -> bool:
        """Make ``snap`` have the DHCP ports it should; True when something was written."""
        changed = False
        dhcp_ports = {p.network_id: p for p in snap.ports.values() if p.device_owner == DHCP_OWNER}
        wanted: dict[str, set[str]] = {}
        for subnet in snap.subnets.values():
            if subnet.enable_dhcp and not (subnet.ip_version == 6 and subnet.ipv6_address_mode == "slaac"
                                           and not subnet.ipv6_ra_mode):
                wanted.setdefault(subnet.network_id, set()).add(subnet.id)
        for network_id, port in dhcp_ports.items():
            if network_id not in wanted:
                changed |= await self._quietly(self.ports.delete(self.caller, port.id))
        for network_id, subnet_ids in wanted.items():
            network = snap.networks.get(network_id)
            if network is None:
                continue
            port = dhcp_ports.get(network_id)
            if port is None:
                changed |= await self._quietly(self.ports.create(self.caller, {
                    "network_id": network_id, "project_id": network.project_id, "device_owner": DHCP_OWNER,
                    "device_id": self.device_id(network_id), "binding:host_id": self.host, "name": "",
                    "fixed_ips": [{"subnet_id": s} for s in sorted(subnet_ids)]}))
                continue
            have = {ip.subnet_id for ip in fixed_ips(snap, port.id)}
            if have != subnet_ids:
                keep = [{"subnet_id": ip.subnet_id, "ip_address": ip.address} for ip in fixed_ips(snap, port.id)
                        if ip.subnet_id in subnet_ids]
                add = [{"subnet_id": s} for s in sorted(subnet_ids - have)]
                changed |= await self._quietly(self.ports.update(self.caller, port.id, {"fixed_ips": keep + add}))
        return changed

    @staticmethod
    async def _quietly(work: Awaitable[Any]) -> bool:
        """A DHCP port that cannot be made now (subnet full, a racing delete) is retried at the next sync."""
        try:
            await work
        except Exception as exc:  # noqa: BLE001
            log.warning("DHCP port: %s", getattr(exc, "message", None) or exc)
            return False
        return True
