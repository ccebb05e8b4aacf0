"""Neutron-style security groups for VM taps on Linux bridges, in nftables.

The whole Kumo ruleset is rendered as text and loaded with one ``nft -f -``:
nft parses the file and sends it to the kernel as a single netlink batch, which
the kernel commits atomically. Each load starts with ``add table X; delete
table X`` for every Kumo table and then defines them again, so the kernel swaps
the old ruleset for the new one in one step: a removed rule stops matching the
moment :meth:`NftablesFirewall.apply` returns, and no packet ever sees a
half-built or empty ruleset. Only Kumo's own tables (``kumo*``) are named; the
host's ruleset and other programs' tables are never flushed or read.

Tables (``T`` is the table name, ``kumo`` by default; ``G`` ``kumo-guard``):

``bridge T``
    The filter. ``prerouting`` checks who a VM claims to be (source MAC, ARP
    sender, IPv4/IPv6 source) before the bridge learns the MAC, so a spoofing
    VM can neither poison the forwarding database nor create conntrack
    entries. ``forward``/``input`` jump to ``egress`` for frames from a
    filtered tap (to another bridge port or to the host); ``forward``/
    ``output`` jump to ``ingress`` for frames to one. The shared chains pass
    what Neutron always passes (ARP, neighbour discovery, DHCP) and then
    dispatch with an ``iifname``/``oifname`` verdict map to the port's own
    chain, so a packet walks only its port's rules however many ports there
    are. Addresses live in named sets keyed by tap (concatenations), remote
    groups in shared named sets.

``inet T``
    Connection state hand-off. This kernel (like many distribution kernels)
    has no ``nf_conntrack_bridge``, so a ``ct`` expression in the bridge
    family is refused. Bridged IP packets are still tracked by the ip/ip6
    conntrack when br_netfilter hands them to the inet hooks (per bridge:
    ``nf_call_iptables``/``nf_call_ip6tables``, which :func:`enable_bridge_conntrack`
    turns on without touching the host-wide ``bridge-nf-call-*`` sysctls).
    The bridge table tags the frames of stateful ports in two bits of the
    packet mark; this table's prerouting/output chains (after conntrack)
    write the connection state into those bits; the bridge chains read them
    and a later bridge chain clears them, so the bits never leave Kumo's
    path. Without br_netfilter on a bridge, stateful ports fail closed
    (replies are treated as new connections and need a rule). Before
    conntrack (raw priority), ``zones-in``/``zones-out`` put each bridge's
    packets in the bridge's own conntrack zone (:func:`assign_zones`), so
    networks that use the same addresses never share connection state.

``inet G``
    Network safety: a ``forward`` chain that drops anything the host would
    route into or out of a guarded bridge. With br_netfilter, bridged
    traffic also passes the inet forward hook with the bridge as both input
    and output device; that pair is let through, so the guard never cuts
    bridging itself. Input and output (host to and from the bridge's own
    addresses) are not affected.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
import socket
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from kumo.network import conntrack
from kumo.network.dataplane.base import PortFirewall, SecurityGroupRule

log = logging.getLogger(__name__)

#: Packet-mark bits (28-29) carrying the conntrack state from the inet table to the bridge table.
DEFAULT_STATE_SHIFT = 28
#: Values of the 2-bit state field (shifted by ``state_shift``): 0 = never looked up (treated as new).
TAGGED, ESTABLISHED, INVALID = 1, 2, 3
#: The chain that puts each bridge's packets in its conntrack zone (read back after an agent restart).
ZONES_IN = "zones-in"
MAX_ZONE = 65535

#: ICMPv6 types Neutron always lets a VM send: MLD query/report/done, router solicitation, NS, NA, MLDv2 report.
ICMPV6_EGRESS = (130, 131, 132, 133, 135, 136, 143)
#: ICMPv6 types Neutron always lets reach a VM: MLD query, router advertisement, NS, NA.
ICMPV6_INGRESS = (130, 134, 135, 136)
#: ICMPv6 a VM may send from ``::`` (duplicate address detection and its MLD reports).
ICMPV6_UNSPECIFIED = (131, 135, 143)

#: Protocols whose rules can carry a destination port range, by number.
PORT_PROTOCOLS = {6: "tcp", 17: "udp", 33: "dccp", 132: "sctp", 136: "udplite"}
PROTOCOL_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1, "ipv6-icmp": 58, "icmpv6": 58, "sctp": 132, "dccp": 33,
                    "udplite": 136, "gre": 47, "esp": 50, "ah": 51, "igmp": 2, "ipip": 4, "vrrp": 112}

_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_TABLE = re.compile(r"^kumo[A-Za-z0-9_-]{0,27}$")


class FirewallError(RuntimeError):
    """nft refused the ruleset (its message says why); the previous ruleset is still in force."""


# --- values ----------------------------------------------------------------------------------------------------


def _ifname(name: str) -> str:
    """A device name as an nft string, refusing anything that could break out of the quotes."""
    if not _IFNAME.match(name):
        raise ValueError(f"not a device name: {name!r}")
    return f'"{name}"'


def _mac(mac: str) -> str:
    parts = mac.lower().split(":")
    if len(parts) != 6 or not all(re.fullmatch(r"[0-9a-f]{2}", p) for p in parts):
        raise ValueError(f"not a MAC address: {mac!r}")
    return ":".join(parts)


def _table(name: str) -> str:
    if not _TABLE.match(name):
        raise ValueError(f"Kumo's tables are named kumo*: {name!r}")
    return name


def link_local(mac: str) -> str:
    """The EUI-64 IPv6 link-local address a guest derives from its MAC (what it sends NS/RS from)."""
    b = bytes(int(p, 16) for p in _mac(mac).split(":"))
    iid = bytes([b[0] ^ 0x02, b[1], b[2], 0xFF, 0xFE, b[3], b[4], b[5]])
    return str(ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + iid))


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text, strict=False)


def _element(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """A network as nft writes it: a bare address for a single host."""
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def _elements(items: Iterable[str]) -> str:
    return ", ".join(items)


# --- what a port may claim to be --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Identity:
    """The (MAC, source address) pairs a port's VM may send from."""

    macs: tuple[str, ...]
    v4: tuple[tuple[str, str], ...]
    v6: tuple[tuple[str, str], ...]


def _identity(port: PortFirewall) -> _Identity:
    own = _mac(port.mac_address)
    macs = [own]
    v4: list[tuple[str, str]] = []
    v6: list[tuple[str, str]] = [(own, link_local(own))]
    for address in port.addresses:
        net = _network(address)
        (v4 if net.version == 4 else v6).append((own, _element(net)))
    for pair_mac, cidr in port.allowed_pairs:
        mac = _mac(pair_mac) if pair_mac else own
        net = _network(cidr)
        (v4 if net.version == 4 else v6).append((mac, _element(net)))
        if mac not in macs:
            macs.append(mac)
            v6.append((mac, link_local(mac)))
    return _Identity(tuple(macs), tuple(dict.fromkeys(v4)), tuple(dict.fromkeys(v6)))


# --- security group rules ---------------------------------------------------------------------------------------


@dataclass
class _RemoteSets:
    """Remote-group address sets, shared by every rule naming the same addresses (one set per group, not per rule)."""

    sets: dict[str, tuple[int, tuple[str, ...]]] = field(default_factory=dict)
    names: dict[tuple[int, tuple[str, ...]], str | None] = field(default_factory=dict)

    def name_for(self, version: int, addresses: Sequence[str]) -> str | None:
        """The set holding ``addresses`` of IP ``version``; None when there are none (the rule matches nothing).

        Memoised on the address tuple: every port of a group names the same
        (large) tuple, and parsing it once per port would dominate rendering.
        """
        key = (version, tuple(addresses))
        if key not in self.names:
            self.names[key] = self._make(version, addresses)
        return self.names[key]

    def _make(self, version: int, addresses: Sequence[str]) -> str | None:
        nets = [n for n in (_network(a) for a in addresses) if n.version == version]
        if not nets:
            return None
        collapsed = tuple(_element(n) for n in ipaddress.collapse_addresses(nets))  # type: ignore[type-var]
        digest = hashlib.sha1("\n".join(collapsed).encode()).hexdigest()[:12]
        name = f"remote{version}-{digest}"
        self.sets[name] = (version, collapsed)
        return name

    def render(self) -> list[str]:
        lines = []
        for name, (version, elements) in sorted(self.sets.items()):
            kind = "ipv4_addr" if version == 4 else "ipv6_addr"
            lines.append(f"  set {name} {{ type {kind}; flags interval; elements = {{ {_elements(elements)} }} }}")
        return lines


def _protocol_number(protocol: str) -> int:
    if protocol.isdigit():
        return int(protocol)
    if protocol in PROTOCOL_NUMBERS:
        return PROTOCOL_NUMBERS[protocol]
    try:
        return socket.getprotobyname(protocol)
    except OSError:
        raise ValueError(f"unknown protocol {protocol!r}") from None


def _protocol_match(rule: SecurityGroupRule, version: int) -> str:
    """``meta l4proto`` plus ports (tcp/udp/sctp/...) or ICMP type/code; empty for any protocol."""
    if rule.protocol is None:
        return ""
    number = _protocol_number(rule.protocol.lower())
    if version == 6 and number == 1:
        number = 58  # Neutron reads "icmp" in an IPv6 rule as ICMPv6
    if number in (1, 58) and ((version == 4) == (number == 1)):
        icmp = "icmp" if number == 1 else "icmpv6"
        parts = [f"meta l4proto {icmp}"]
        if rule.port_range_min is not None:
            parts.append(f"{icmp} type {int(rule.port_range_min)}")
            if rule.port_range_max is not None:
                parts.append(f"{icmp} code {int(rule.port_range_max)}")
        return " ".join(parts)
    parts = [f"meta l4proto {PORT_PROTOCOLS.get(number, number)}"]
    if number in PORT_PROTOCOLS and rule.port_range_min is not None:
        low = int(rule.port_range_min)
        high = int(rule.port_range_max) if rule.port_range_max is not None else low
        parts.append(f"th dport {low}" if low == high else f"th dport {low}-{high}")
    return " ".join(parts)


def _rule_match(rule: SecurityGroupRule, remotes: _RemoteSets) -> str | None:
    """The match part of one rule, or None when it can match nothing (e.g. an empty remote group)."""
    version = 6 if rule.ethertype == "IPv6" else 4
    family = "ip" if version == 4 else "ip6"
    peer = "saddr" if rule.direction == "ingress" else "daddr"
    parts = [f"ether type {family}"]
    if rule.remote_ip_prefix is not None:
        net = _network(rule.remote_ip_prefix)
        if net.version != version:
            return None
        if net.prefixlen:
            parts.append(f"{family} {peer} {_element(net)}")
    if rule.remote_addresses is not None:
        name = remotes.name_for(version, rule.remote_addresses)
        if name is None:
            return None
        parts.append(f"{family} {peer} @{name}")
    protocol = _protocol_match(rule, version)
    if protocol:
        parts.append(protocol)
    return " ".join(parts)


def _state_field(state: int, shift: int) -> str:
    return f"meta mark & {3 << shift:#010x} == {state << shift:#010x}"


def _port_chain(port: PortFirewall, direction: str, remotes: _RemoteSets, shift: int) -> list[str]:
    """The port's own chain for one direction: conntrack state, its rules, then drop.

    Egress chains *return* on a match (the receiving port's ingress is checked
    next); ingress chains accept.
    """
    allow = "accept" if direction == "ingress" else "return"
    body: list[str] = []
    if port.stateful:
        body += [f"{_state_field(INVALID, shift)} drop", f"{_state_field(ESTABLISHED, shift)} {allow}"]
    for rule in port.rules:
        if rule.direction != direction:
            continue
        match = _rule_match(rule, remotes)
        if match is not None:
            body.append(f"{match} {allow}")
    body.append("drop")
    lines = [f"  chain {direction}-{port.tap} {{"]
    lines += [f"    {line}" for line in dict.fromkeys(body)]
    lines.append("  }")
    return lines


# --- tables -----------------------------------------------------------------------------------------------------


def _set(name: str, kind: str, elements: Sequence[str], interval: bool = False) -> str:
    flags = " flags interval;" if interval else ""
    items = f" elements = {{ {_elements(elements)} }}" if elements else ""
    return f"  set {name} {{ type {kind};{flags}{items} }}"


def _map(name: str, elements: Sequence[str]) -> str:
    items = f" elements = {{ {_elements(elements)} }}" if elements else ""
    return f"  map {name} {{ type ifname : verdict;{items} }}"


def _chain(name: str, rules: Sequence[str], hook: str | None = None, priority: int = -200) -> list[str]:
    lines = [f"  chain {name} {{"]
    if hook:
        lines.append(f"    type filter hook {hook} priority {priority}; policy accept;")
    lines += [f"    {rule}" for rule in rules]
    lines.append("  }")
    return lines


def _shared_chains(shift: int) -> list[str]:
    """Chains every filtered port goes through: hooks, anti-spoofing, Neutron's always-allowed traffic."""
    mask = 3 << shift
    keep = 0xFFFFFFFF ^ mask
    tag = f"meta mark set meta mark & {keep:#010x} | {TAGGED << shift:#010x}"
    untag = [f"meta mark & {mask:#010x} != 0 meta mark set meta mark & {keep:#010x}"]
    egress_icmp = _elements(str(t) for t in ICMPV6_EGRESS)
    ingress_icmp = _elements(str(t) for t in ICMPV6_INGRESS)
    unspecified_icmp = _elements(str(t) for t in ICMPV6_UNSPECIFIED)
    arp_sane = "arp htype 1 arp ptype ip arp hlen 6 arp plen 4"
    lines: list[str] = []
    lines += _chain("prerouting", [
        "iifname @ports jump spoof",
        f"iifname @stateful-ports {tag}",
        f"ether daddr @stateful-macs {tag}",
    ], hook="prerouting")
    lines += _chain("spoof", [
        "iifname . ether saddr != @macs drop",
        "ether type arp goto spoof-arp",
        "ether type ip goto spoof-ip",
        "ether type ip6 goto spoof-ip6",
        "drop",
    ])
    lines += _chain("spoof-arp", [
        f"{arp_sane} iifname . arp saddr ether . arp saddr ip @sources-v4 return",
        f"{arp_sane} arp saddr ip 0.0.0.0 iifname . arp saddr ether @macs return",
        "drop",
    ])
    lines += _chain("spoof-ip", [
        "iifname . ether saddr . ip saddr @sources-v4 return",
        "ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 return",
        "drop",
    ])
    lines += _chain("spoof-ip6", [
        "iifname . ether saddr . ip6 saddr @sources-v6 return",
        f"ip6 saddr :: ip6 daddr ff02::/16 icmpv6 type {{ {unspecified_icmp} }} return",
        "drop",
    ])
    lines += _chain("forward", ["iifname @ports jump egress", "oifname @ports jump ingress"], hook="forward")
    lines += _chain("input", ["iifname @ports jump egress"], hook="input")
    lines += _chain("output", ["oifname @ports jump ingress"], hook="output")
    lines += _chain("egress", [
        "ether type arp return",
        "icmpv6 type nd-router-advert drop",
        "udp sport 67 udp dport 68 drop",
        "udp sport 547 udp dport 546 drop",
        f"icmpv6 type {{ {egress_icmp} }} return",
        "udp sport 68 udp dport 67 return",
        "udp sport 546 udp dport 547 return",
        "iifname vmap @egress-ports",
        "drop",
    ])
    lines += _chain("ingress", [
        "ether type arp accept",
        f"icmpv6 type {{ {ingress_icmp} }} accept",
        "udp sport 67 udp dport 68 accept",
        "udp sport 547 udp dport 546 accept",
        "oifname vmap @ingress-ports",
        "drop",
    ])
    for hook in ("forward", "input", "output"):
        lines += _chain(f"{hook}-untag", untag, hook=hook, priority=-199)
    return lines


def _bridge_table(table: str, ports: Sequence[PortFirewall], shift: int) -> list[str]:
    filtered = [p for p in ports if p.port_security_enabled]
    stateful = [p for p in filtered if p.stateful]
    macs: list[str] = []
    v4: list[str] = []
    v6: list[str] = []
    stateful_macs: list[str] = []
    for port in filtered:
        tap = _ifname(port.tap)
        ident = _identity(port)
        macs += [f"{tap} . {mac}" for mac in ident.macs]
        v4 += [f"{tap} . {mac} . {net}" for mac, net in ident.v4]
        v6 += [f"{tap} . {mac} . {net}" for mac, net in ident.v6]
        if port.stateful:
            stateful_macs += ident.macs
    taps = [_ifname(p.tap) for p in filtered]
    remotes = _RemoteSets()
    chains: list[str] = []
    for port in filtered:
        chains += _port_chain(port, "ingress", remotes, shift)
        chains += _port_chain(port, "egress", remotes, shift)
    lines = [f"table bridge {table} {{"]
    lines += [
        _set("ports", "ifname", taps),
        _set("stateful-ports", "ifname", [_ifname(p.tap) for p in stateful]),
        _set("stateful-macs", "ether_addr", list(dict.fromkeys(stateful_macs))),
        _set("macs", "ifname . ether_addr", macs),
        _set("sources-v4", "ifname . ether_addr . ipv4_addr", v4, interval=True),
        _set("sources-v6", "ifname . ether_addr . ipv6_addr", v6, interval=True),
        _map("egress-ports", [f"{_ifname(p.tap)} : goto egress-{p.tap}" for p in filtered]),
        _map("ingress-ports", [f"{_ifname(p.tap)} : goto ingress-{p.tap}" for p in filtered]),
    ]
    lines += remotes.render()
    lines += _shared_chains(shift)
    lines += chains
    lines.append("}")
    return lines


def _state_table(table: str, ports: Sequence[PortFirewall], shift: int, zones: Mapping[str, int]) -> list[str]:
    """The inet half of the conntrack hand-off: write each tagged packet's ct state into the mark bits; before
    conntrack looks a packet up (raw priority), put it in its bridge's zone."""
    mask = 3 << shift
    keep = 0xFFFFFFFF ^ mask
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    for port in ports:
        if not (port.port_security_enabled and port.stateful):
            continue
        for address in [*port.addresses, *(cidr for _, cidr in port.allowed_pairs)]:
            net = _network(address)
            if isinstance(net, ipaddress.IPv4Network):
                v4.append(net)
            else:
                v6.append(net)
    lines = [f"table inet {table} {{"]
    lines += [
        _set("stateful-v4", "ipv4_addr", [_element(n) for n in ipaddress.collapse_addresses(v4)], interval=True),
        _set("stateful-v6", "ipv6_addr", [_element(n) for n in ipaddress.collapse_addresses(v6)], interval=True),
    ]
    if zones:
        pairs = ", ".join(f"{_ifname(bridge)} : {zone}" for bridge, zone in sorted(zones.items()))
        lines += _chain(ZONES_IN, [f"ct zone set iifname map {{ {pairs} }}"], hook="prerouting", priority=-300)
        lines += _chain("zones-out", [f"ct zone set oifname map {{ {pairs} }}"], hook="output", priority=-300)
    lines += _chain("prerouting", [f"{_state_field(TAGGED, shift)} goto ct-state"], hook="prerouting", priority=-150)
    lines += _chain("output", ["ip daddr @stateful-v4 goto ct-state", "ip6 daddr @stateful-v6 goto ct-state"],
                    hook="output", priority=-150)
    lines += _chain("ct-state", [
        f"ct state established,related meta mark set meta mark & {keep:#010x} | {ESTABLISHED << shift:#010x}",
        f"ct state invalid meta mark set meta mark | {INVALID << shift:#010x}",
    ])
    lines.append("}")
    return lines


def assign_zones(bridges: Iterable[str], current: Mapping[str, int]) -> dict[str, int]:
    """A conntrack zone per bridge: each keeps the one it has, a new bridge takes the lowest free (from 1).

    Bridged traffic of every network meets in the host's one conntrack
    table; two projects using the same addresses on two networks would see
    each other's connections (one project's "established" letting the
    other's packets past a default-deny port). A zone per bridge keeps them
    apart, as Neutron's zone per network does. Numbers must not change under
    a live connection (it would become a new one), hence "keep".
    """
    wanted = sorted(set(bridges))
    kept = {bridge: zone for bridge, zone in current.items() if bridge in wanted}
    taken = set(kept.values())
    candidates = (z for z in range(1, MAX_ZONE + 1) if z not in taken)
    for bridge in wanted:
        if bridge not in kept:
            zone = next(candidates, None)
            if zone is None:
                raise FirewallError(f"more than {MAX_ZONE} bridges: no conntrack zone left")
            kept[bridge] = zone
    return kept


def parse_zones(chain_text: str) -> dict[str, int]:
    """The bridge -> zone pairs of a loaded ``zones-in`` chain (``nft list chain`` output)."""
    return {name: int(zone) for name, zone in re.findall(r'"([^"]+)"\s*:\s*(\d+)', chain_text)}


def _guard_table(table: str, bridges: Sequence[str]) -> list[str]:
    names = [_ifname(b) for b in dict.fromkeys(bridges)]
    lines = [f"table inet {table} {{"]
    lines += [
        _set("bridges", "ifname", names),
        _set("bridged", "ifname . ifname", [f"{n} . {n}" for n in names]),
    ]
    lines += _chain("forward", [
        "iifname . oifname @bridged accept",
        "iifname @bridges drop",
        "oifname @bridges drop",
    ], hook="forward", priority=0)
    lines.append("}")
    return lines


def _replace(family: str, table: str) -> list[str]:
    """Create-then-delete: deletes the table whether or not it exists, inside the same transaction."""
    return [f"add table {family} {table}", f"delete table {family} {table}"]


def render_ruleset(ports: Sequence[PortFirewall], guarded_bridges: Sequence[str] = (), *, table: str = "kumo",
                   guard_table: str = "kumo-guard", state_shift: int = DEFAULT_STATE_SHIFT,
                   zones: Mapping[str, int] | None = None) -> str:
    """The complete ``nft -f`` transaction replacing Kumo's tables (pure: no kernel access).

    ``zones`` (bridge -> conntrack zone, see :func:`assign_zones`) defaults to numbering the ports' bridges."""
    if zones is None:
        zones = assign_zones((p.bridge for p in ports if p.bridge), {})
    table, guard_table = _table(table), _table(guard_table)
    taps = [p.tap for p in ports]
    if len(set(taps)) != len(taps):
        raise ValueError("a tap appears twice in the firewall plan")
    if not 0 <= state_shift <= 30:
        raise ValueError(f"state_shift out of range: {state_shift}")
    lines = [*_replace("bridge", table), *_replace("inet", table), *_replace("inet", guard_table)]
    lines += _bridge_table(table, ports, state_shift)
    lines += _state_table(table, ports, state_shift, zones)
    lines += _guard_table(guard_table, guarded_bridges)
    return "\n".join(lines) + "\n"


# --- the kernel -------------------------------------------------------------------------------------------------


def enable_bridge_conntrack(bridge: str) -> bool:
    """Have br_netfilter pass this bridge's IP traffic through conntrack (per bridge, not the host-wide sysctl).

    Returns whether it is on. The bridge family has no conntrack of its own
    without ``nf_conntrack_bridge``; stateful rules rely on this.
    """
    _ifname(bridge)
    ok = True
    for option in ("nf_call_iptables", "nf_call_ip6tables"):
        path = Path("/sys/class/net", bridge, "bridge", option)
        try:
            if path.read_text().strip() != "1":
                path.write_text("1")
        except OSError as exc:
            log.warning("cannot set %s on bridge %s: %s", option, bridge, exc)
            ok = False
    return ok


def _bridges_of(taps: Iterable[str]) -> set[str]:
    """The bridges the existing taps are enslaved to (taps of VMs not started yet are skipped)."""
    bridges = set()
    for tap in taps:
        try:
            bridges.add(os.path.basename(os.readlink(f"/sys/class/net/{tap}/master")))
        except OSError:
            continue
    return bridges


def _host_addresses(port: PortFirewall) -> set[str]:
    """The single addresses a port's connections are tracked under (fixed IPs and host-sized pairs)."""
    nets = [_network(a) for a in (*port.addresses, *(cidr for _, cidr in port.allowed_pairs))]
    return {str(n.network_address) for n in nets if n.prefixlen == n.max_prefixlen}


def _changed_addresses(before: dict[str, PortFirewall], ports: Sequence[PortFirewall]) -> set[str]:
    """Addresses of ports whose filtering got narrower since the last apply (their open connections get re-judged).

    A port that only gained rules or remote-group members keeps its connections: they were allowed before
    and still are (Neutron flushes on removals too). Skipping those keeps a rule added to a group of 1,000
    ports from costing a conntrack dump.
    """
    changed: set[str] = set()
    for port in ports:
        old = before.get(port.tap)
        if old is not None and old != port and _narrowed(old, port):
            changed |= _host_addresses(old) | _host_addresses(port)
    return changed


def _narrowed(old: PortFirewall, new: PortFirewall) -> bool:
    """Whether ``new`` may refuse something ``old`` allowed."""
    if (old.mac_address, old.addresses, old.allowed_pairs, old.stateful) != \
            (new.mac_address, new.addresses, new.allowed_pairs, new.stateful):
        return True
    if old.port_security_enabled != new.port_security_enabled:
        return new.port_security_enabled
    kept = set(new.rules)
    widened = {_without_remotes(r): set(r.remote_addresses or ()) for r in new.rules
               if r.remote_addresses is not None}
    for rule in old.rules:
        if rule in kept:
            continue
        if rule.remote_addresses is None or not set(rule.remote_addresses) <= widened.get(_without_remotes(rule),
                                                                                          set()):
            return True
    return False


def _without_remotes(rule: SecurityGroupRule) -> SecurityGroupRule:
    return replace(rule, remote_addresses=())


def flush_conntrack(addresses: set[str]) -> int:
    """Forget tracked connections from or to ``addresses``; returns how many.

    Without this an established connection would outlive the rule that let
    it in (its packets match "established", not the rules). Neutron deletes
    such entries too. A flushed connection that is still allowed is simply
    tracked again from its next packet (``nf_conntrack_tcp_loose``).
    """
    if not addresses:
        return 0
    return conntrack.forget(lambda e: e.tuple_orig.saddr in addresses or e.tuple_orig.daddr in addresses)


class NftablesFirewall:
    """The security-group driver of a host: replaces Kumo's nftables tables as a whole on every apply."""

    def __init__(self, table: str = "kumo", guard_table: str = "kumo-guard", *, nft: str = "nft",
                 state_shift: int = DEFAULT_STATE_SHIFT, timeout: float = 60.0) -> None:
        self.table = _table(table)
        self.guard_table = _table(guard_table)
        self.nft = nft
        self.state_shift = state_shift
        self.timeout = timeout
        self._applied: dict[str, PortFirewall] = {}
        self._zones: dict[str, int] | None = None  # bridge -> conntrack zone; None: not read back from the kernel yet

    def render(self, ports: Sequence[PortFirewall], guarded_bridges: Sequence[str] = ()) -> str:
        """The nft text :meth:`apply` loads (pure; for tests and ``nft -c``)."""
        return self._render(ports, guarded_bridges, self._zones_for(ports))

    def _zones_for(self, ports: Sequence[PortFirewall]) -> dict[str, int]:
        return assign_zones((p.bridge for p in ports if p.bridge), self._zones or {})

    def _render(self, ports: Sequence[PortFirewall], guarded_bridges: Sequence[str], zones: dict[str, int]) -> str:
        return render_ruleset(ports, guarded_bridges, table=self.table, guard_table=self.guard_table,
                              state_shift=self.state_shift, zones=zones)

    def apply(self, ports: Sequence[PortFirewall], guarded_bridges: Sequence[str] = ()) -> None:
        """Make Kumo's ruleset exactly this plan, in one atomic transaction (enforced when this returns).

        Connections of ports whose plan changed since this object's last
        apply are dropped from conntrack after the load, so a removed rule
        also stops connections it had let in.
        """
        if self._zones is None:  # a restarted agent keeps the zones the loaded ruleset gives live connections
            self._zones = self._loaded_zones()
        zones = self._zones_for(ports)
        text = self._render(ports, guarded_bridges, zones)
        stateful = [p.tap for p in ports if p.port_security_enabled and p.stateful]
        for bridge in _bridges_of(stateful):
            enable_bridge_conntrack(bridge)
        self._load(text)
        self._zones = zones
        changed = _changed_addresses(self._applied, ports)
        self._applied = {p.tap: p for p in ports}
        if changed:
            try:
                flush_conntrack(changed)
            except Exception:  # noqa: BLE001 - the rules are in force; stale entries only age out slower
                log.exception("could not flush conntrack entries of changed ports")

    def _loaded_zones(self) -> dict[str, int]:
        done = subprocess.run([self.nft, "list", "chain", "inet", self.table, ZONES_IN], capture_output=True,
                              text=True, timeout=self.timeout)
        return parse_zones(done.stdout) if done.returncode == 0 else {}

    def clear(self) -> None:
        """Remove Kumo's tables (missing ones are fine)."""
        self._applied = {}
        self._zones = {}
        lines = [*_replace("bridge", self.table), *_replace("inet", self.table), *_replace("inet", self.guard_table)]
        self._load("\n".join(lines) + "\n")

    def _load(self, text: str) -> None:
        done = subprocess.run([self.nft, "-f", "-"], input=text, capture_output=True, text=True,
                              timeout=self.timeout)
        if done.returncode != 0:
            raise FirewallError(f"nft -f failed ({done.returncode}): {done.stderr.strip()[:4000]}")
