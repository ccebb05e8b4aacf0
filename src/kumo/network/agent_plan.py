"""From the network service's tables to one host's :class:`~kumo.network.dataplane.base.HostPlan`.

Level-triggered, like a Kubernetes controller rather than Neutron's
per-event RPCs: the agent reads the whole picture for its host and the
drivers make the kernel match it. A lost notification, an agent restart or a
half-applied change are all healed by the next read; the cost is one read of
the tables per sync, measured in ``bench/network_dataplane.py``.

Which parts a host gets depends on its roles: a compute host gets the
networks of the VM ports bound to it (bridges, taps, security groups); a
network host also gets every network with DHCP or a router leg, the DHCP
servers and the routers.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from kumo.core.db import Database
from kumo.network.dataplane.base import (
    DhcpHost,
    DhcpPlan,
    DhcpSubnet,
    FixedIP,
    FloatingMapping,
    HostPlan,
    MetadataClient,
    NetworkPlan,
    PortFirewall,
    RouterInterface,
    RouterPlan,
    SecurityGroupRule,
    VifPlan,
    bridge_name,
    dhcp_interface,
    dhcp_namespace,
    gateway_interface,
    physical_bridge_name,
    router_interface,
    router_namespace,
    tap_name,
)
from kumo.network.models import (
    FloatingIP,
    IPAllocation,
    Network,
    Port,
    PortSecurityGroup,
    Router,
    SecurityGroup,
    Subnet,
)
from kumo.network.models import (
    SecurityGroupRule as RuleRow,
)

DHCP_OWNER = "network:dhcp"
ROUTER_INTERFACE_OWNERS = ("network:router_interface", "network:router_interface_distributed")
ROUTER_GATEWAY_OWNER = "network:router_gateway"


def is_vm_port(port: Port) -> bool:
    return port.device_owner.startswith("compute:")


@dataclass
class Snapshot:
    """The rows a plan is made of, read in one transaction."""

    networks: dict[str, Network]
    subnets: dict[str, Subnet]
    ports: dict[str, Port]
    ips: dict[str, list[IPAllocation]]  # port id -> allocations, in the order given
    routers: dict[str, Router]
    floating: list[FloatingIP]
    groups: dict[str, SecurityGroup]
    rules: dict[str, list[RuleRow]]  # group id -> rules
    port_groups: dict[str, list[str]]  # port id -> group ids
    group_ports: dict[str, list[str]] = field(default_factory=dict)  # group id -> port ids
    fixed: dict[str, tuple[FixedIP, ...]] = field(default_factory=dict)  # port id -> addresses, filled on demand
    members: dict[tuple[str, int], tuple[str, ...]] = field(default_factory=dict)  # (group, version) -> addresses


async def read_snapshot(db: Database) -> Snapshot:
    async with db.session() as s:
        networks = {n.id: n for n in await s.scalars(select(Network))}
        subnets = {n.id: n for n in await s.scalars(select(Subnet))}
        ports = {p.id: p for p in await s.scalars(select(Port))}
        ips: dict[str, list[IPAllocation]] = defaultdict(list)
        for row in await s.scalars(select(IPAllocation).order_by(IPAllocation.position)):
            ips[row.port_id].append(row)
        routers = {r.id: r for r in await s.scalars(select(Router))}
        floating = list(await s.scalars(select(FloatingIP)))
        groups = {g.id: g for g in await s.scalars(select(SecurityGroup))}
        rules: dict[str, list[RuleRow]] = defaultdict(list)
        for rule in await s.scalars(select(RuleRow)):
            rules[rule.security_group_id].append(rule)
        port_groups: dict[str, list[str]] = defaultdict(list)
        group_ports: dict[str, list[str]] = defaultdict(list)
        for binding in await s.scalars(select(PortSecurityGroup)):
            port_groups[binding.port_id].append(binding.security_group_id)
            group_ports[binding.security_group_id].append(binding.port_id)
    return Snapshot(networks, subnets, ports, ips, routers, floating, groups, rules, port_groups, group_ports)


@dataclass(frozen=True)
class HostRole:
    """What this host's agent does, and what it knows about the other hosts."""

    host: str
    l2_only: bool = False  # a compute host without the network role: no DHCP, no routers
    local_ip: str | None = None
    peers: tuple[str, ...] = ()  # other hosts' tunnel addresses
    external_gateway_on_host: bool = True


def build_plan(snap: Snapshot, role: HostRole) -> HostPlan:
    """The host's wanted state; pure, so the tests and the benchmark call it without a kernel."""
    vifs = [p for p in snap.ports.values() if is_vm_port(p) and p.binding_host_id == role.host]
    wanted_networks = {p.network_id for p in vifs}
    dhcp: list[DhcpPlan] = []
    routers: list[RouterPlan] = []
    if not role.l2_only:
        for port in snap.ports.values():
            if port.device_owner == DHCP_OWNER or port.device_owner in ROUTER_INTERFACE_OWNERS \
                    or port.device_owner == ROUTER_GATEWAY_OWNER:
                wanted_networks.add(port.network_id)
        by_network: dict[str, list[Port]] = defaultdict(list)
        for port in snap.ports.values():
            by_network[port.network_id].append(port)
        routed = {ip.subnet_id for p in snap.ports.values() if p.device_owner in ROUTER_INTERFACE_OWNERS
                  for ip in fixed_ips(snap, p.id)}
        dhcp = [plan for port in snap.ports.values() if port.device_owner == DHCP_OWNER
                and (plan := _dhcp(snap, port, by_network[port.network_id], routed)) is not None]
        routers = [_router(snap, r) for r in snap.routers.values() if r.admin_state_up]
    networks = [_network(snap, snap.networks[n], role) for n in sorted(wanted_networks) if n in snap.networks]
    guarded = tuple(n.bridge for n in networks if n.network_type == "flat")
    return HostPlan(
        networks=tuple(networks),
        vifs=tuple(VifPlan(port_id=p.id, network_id=p.network_id, bridge=_bridge(snap.networks[p.network_id]),
                           tap=tap_name(p.id), mac_address=p.mac_address, mtu=snap.networks[p.network_id].mtu)
                   for p in sorted(vifs, key=lambda p: p.id) if p.network_id in snap.networks),
        firewall=tuple(_firewall(snap, p) for p in sorted(vifs, key=lambda p: p.id)),
        dhcp=tuple(dhcp), routers=tuple(routers), guarded_bridges=guarded)


def _bridge(network: Network) -> str:
    if network.network_type == "flat" and network.physical_network:
        return physical_bridge_name(network.physical_network)
    return bridge_name(network.id)


def _network(snap: Snapshot, network: Network, role: HostRole) -> NetworkPlan:
    host_addresses: tuple[FixedIP, ...] = ()
    if network.network_type == "flat" and network.external and role.external_gateway_on_host and not role.l2_only:
        host_addresses = tuple(
            FixedIP(s.gateway_ip, ipaddress.ip_network(s.cidr).prefixlen, s.id)
            for s in sorted(snap.subnets.values(), key=lambda s: s.created_at)
            if s.network_id == network.id and s.gateway_ip)
    return NetworkPlan(network_id=network.id, bridge=_bridge(network), mtu=network.mtu,
                       network_type=network.network_type, segmentation_id=network.segmentation_id,
                       physical_network=network.physical_network, local_ip=role.local_ip,
                       vxlan_peers=role.peers if network.network_type == "vxlan" else (),
                       host_addresses=host_addresses)


def fixed_ips(snap: Snapshot, port_id: str) -> tuple[FixedIP, ...]:
    if port_id in snap.fixed:
        return snap.fixed[port_id]
    out = []
    for row in snap.ips.get(port_id, ()):
        subnet = snap.subnets.get(row.subnet_id)
        if subnet is None:
            continue
        out.append(FixedIP(row.ip_address, ipaddress.ip_network(subnet.cidr).prefixlen, subnet.id,
                           subnet.gateway_ip))
    snap.fixed[port_id] = tuple(out)
    return snap.fixed[port_id]


# -- security groups


def _firewall(snap: Snapshot, port: Port) -> PortFirewall:
    group_ids = snap.port_groups.get(port.id, [])
    rules = tuple(rule for g in group_ids for row in snap.rules.get(g, ()) if (rule := _rule(snap, row)) is not None)
    pairs = tuple((pair.get("mac_address") or port.mac_address, str(pair["ip_address"]))
                  for pair in port.allowed_address_pairs or () if pair.get("ip_address"))
    stateful = all(snap.groups[g].stateful for g in group_ids if g in snap.groups)
    return PortFirewall(tap=tap_name(port.id), port_id=port.id, mac_address=port.mac_address,
                        addresses=tuple(ip.address for ip in fixed_ips(snap, port.id)), allowed_pairs=pairs,
                        port_security_enabled=port.port_security_enabled, stateful=stateful, rules=rules,
                        bridge=_bridge(snap.networks[port.network_id]) if port.network_id in snap.networks else "")


def _rule(snap: Snapshot, row: RuleRow) -> SecurityGroupRule | None:
    remote: tuple[str, ...] | None = None
    if row.remote_group_id:
        remote = _members(snap, row.remote_group_id, 4 if row.ethertype == "IPv4" else 6)
    protocol = row.protocol
    if protocol in ("icmpv6", "ipv6-icmp", "58") or (protocol == "icmp" and row.ethertype == "IPv6"):
        protocol = "ipv6-icmp"
    elif protocol in ("6",):
        protocol = "tcp"
    elif protocol in ("17",):
        protocol = "udp"
    elif protocol in ("1",):
        protocol = "icmp"
    return SecurityGroupRule(direction=row.direction, ethertype=row.ethertype, protocol=protocol,
                             port_range_min=row.port_range_min, port_range_max=row.port_range_max,
                             remote_ip_prefix=row.remote_ip_prefix, remote_addresses=remote)


def _members(snap: Snapshot, group_id: str, version: int) -> tuple[str, ...]:
    """The addresses of a group's ports, once per snapshot (every port of a default group asks for them)."""
    key = (group_id, version)
    if key not in snap.members:
        snap.members[key] = tuple(sorted({ip.address for p in snap.group_ports.get(group_id, ())
                                          for ip in fixed_ips(snap, p) if ip.version == version}))
    return snap.members[key]


# -- DHCP


def _dhcp(snap: Snapshot, dhcp_port: Port, network_ports: list[Port], routed: set[str]) -> DhcpPlan | None:
    network = snap.networks.get(dhcp_port.network_id)
    if network is None:
        return None
    subnets = [s for s in snap.subnets.values() if s.network_id == network.id and s.enable_dhcp]
    if not subnets:
        return None
    hosts = []
    for port in network_ports:
        if port.id == dhcp_port.id or port.device_owner == DHCP_OWNER:
            continue
        addresses = tuple(ip.address for ip in fixed_ips(snap, port.id))
        if addresses:
            hostname = port.dns_name or f"host-{addresses[0].replace('.', '-').replace(':', '-')}"
            hosts.append(DhcpHost(port.mac_address, addresses, hostname))
    return DhcpPlan(
        network_id=network.id, namespace=dhcp_namespace(network.id), interface=dhcp_interface(dhcp_port.id),
        port_id=dhcp_port.id, mac_address=dhcp_port.mac_address, addresses=fixed_ips(snap, dhcp_port.id),
        mtu=network.mtu,
        subnets=tuple(DhcpSubnet(
            subnet_id=s.id, cidr=s.cidr, ip_version=s.ip_version, gateway=s.gateway_ip,
            dns_nameservers=tuple(s.dns_nameservers or ()),
            host_routes=tuple((r["destination"], r["nexthop"]) for r in s.host_routes or ()),
            # Router advertisements come from dnsmasq, also for subnets on a router (Kumo's routers send none).
            ipv6_ra_mode=s.ipv6_ra_mode if s.ip_version == 6 and (s.ipv6_ra_mode or s.id in routed) else None,
            ipv6_address_mode=s.ipv6_address_mode) for s in sorted(subnets, key=lambda s: s.created_at)),
        hosts=tuple(sorted(hosts, key=lambda h: h.mac_address)), dns_domain=network.dns_domain or "openstacklocal")


# -- routers


def _leg(snap: Snapshot, port: Port, name: str) -> RouterInterface:
    network = snap.networks[port.network_id]
    return RouterInterface(port_id=port.id, name=name, tap=tap_name(port.id), bridge=_bridge(network),
                           mac_address=port.mac_address, addresses=fixed_ips(snap, port.id), mtu=network.mtu)


def _router(snap: Snapshot, router: Router) -> RouterPlan:
    legs = [p for p in snap.ports.values() if p.device_id == router.id and p.device_owner in ROUTER_INTERFACE_OWNERS
            and p.network_id in snap.networks]
    gw_port = snap.ports.get(router.gw_port_id) if router.gw_port_id else None
    gateway = _leg(snap, gw_port, gateway_interface(gw_port.id)) if gw_port is not None \
        and gw_port.network_id in snap.networks else None
    floating = tuple(FloatingMapping(f.floating_ip_address, f.fixed_ip_address)
                     for f in sorted(snap.floating, key=lambda f: f.floating_ip_address)
                     if f.router_id == router.id and f.fixed_ip_address and gateway is not None)
    served = {p.network_id for p in legs}
    clients = tuple(MetadataClient(ip.address, p.device_id, p.project_id)
                    for p in sorted(snap.ports.values(), key=lambda p: p.id)
                    if p.network_id in served and is_vm_port(p) for ip in fixed_ips(snap, p.id))
    return RouterPlan(router_id=router.id, namespace=router_namespace(router.id),
                      interfaces=tuple(_leg(snap, p, router_interface(p.id)) for p in sorted(legs, key=lambda p: p.id)),
                      gateway=gateway, enable_snat=router.enable_snat, floating=floating,
                      routes=tuple((r["destination"], r["nexthop"]) for r in router.routes or ()), metadata=clients)


def summary(plan: HostPlan) -> dict[str, Any]:
    """Counts for logs and ``/v2.0/agents`` configurations."""
    return {"networks": len(plan.networks), "devices": len(plan.vifs), "dhcp_networks": len(plan.dhcp),
            "routers": len(plan.routers), "floating_ips": sum(len(r.floating) for r in plan.routers)}
