"""What the network agent asks of the host: plain frozen plans in, kernel state out.

The agent (:mod:`kumo.network.agent`) reads the network service's tables and
turns them into the plans below for *its* host; the drivers make the kernel
match a plan. Only these values cross the boundary, so a driver never sees a
database row, and the same plans drive the fake drivers the tests use.

Every driver method is synchronous (netlink, nft and process calls block
briefly; the agent runs them in a worker thread) and idempotent: applying a
plan twice changes nothing the second time, and applying it after a crash
finishes whatever the crash interrupted. Kumo only ever touches objects whose
names it gave (the prefixes below), never the host's own links, routes or
other programs' firewall rules.

Names follow Neutron's Linux bridge agent, cut to the kernel's 15 characters:

================  =====================================================
``brq<net11>``    the bridge of a tenant network (VXLAN or local)
``br-<physnet>``  the bridge of a flat physical network (``br-public``)
``vxlan-<vni>``   a network's VXLAN device, a port of its bridge
``tap<port11>``   a port's host side: a VM's tap, or the bridge end of the
                  veth into a DHCP or router namespace
``ns-<port11>``   the DHCP port inside ``qdhcp-<network id>``
``qr-<port11>``   a router interface inside ``qrouter-<router id>``
``qg-<port11>``   a router's gateway inside ``qrouter-<router id>``
================  =====================================================
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

PREFIX = 11  # characters of a uuid in a device name (3-char prefix + 11 + NUL < IFNAMSIZ)
KUMO_LINK_PREFIXES = ("brq", "br-", "vxlan-", "tap")
KUMO_NETNS_PREFIXES = ("qdhcp-", "qrouter-")
#: The address guests reach the metadata service at, through their router.
METADATA_ADDRESS = "169.254.169.254"
#: Port the metadata proxy listens on inside a router namespace (Neutron's 9697); port 80 is redirected to it.
METADATA_PROXY_PORT = 9697


class DataplaneError(RuntimeError):
    """A plan could not be (fully) applied; the message names every part that failed."""


def bridge_name(network_id: str) -> str:
    return f"brq{network_id[:PREFIX]}"


def physical_bridge_name(physical_network: str) -> str:
    return f"br-{physical_network}"[:15]


def vxlan_name(vni: int) -> str:
    return f"vxlan-{vni}"


def tap_name(port_id: str) -> str:
    return f"tap{port_id[:PREFIX]}"


def dhcp_namespace(network_id: str) -> str:
    return f"qdhcp-{network_id}"


def router_namespace(router_id: str) -> str:
    return f"qrouter-{router_id}"


def dhcp_interface(port_id: str) -> str:
    return f"ns-{port_id[:PREFIX]}"


def router_interface(port_id: str) -> str:
    return f"qr-{port_id[:PREFIX]}"


def gateway_interface(port_id: str) -> str:
    return f"qg-{port_id[:PREFIX]}"


@dataclass(frozen=True, slots=True)
class FixedIP:
    """One address of a port, with what its subnet says about it."""

    address: str
    prefixlen: int
    subnet_id: str = ""
    gateway: str | None = None

    @property
    def version(self) -> int:
        return ipaddress.ip_address(self.address).version

    @property
    def cidr(self) -> str:
        """``address/prefixlen`` (what ``ip addr add`` takes)."""
        return f"{self.address}/{self.prefixlen}"


@dataclass(frozen=True, slots=True)
class NetworkPlan:
    """A network present on this host: its bridge, and how the bridge reaches other hosts.

    ``network_type`` ``vxlan``: the bridge gets ``vxlan-<segmentation_id>``
    with unicast flooding to ``vxlan_peers`` (the other hosts' tunnel
    addresses) over ``local_ip``. ``flat``: the bridge is
    ``br-<physical_network>``; ``host_addresses`` are put on the bridge itself
    (the all-in-one node's side of the external network, so floating IPs are
    reachable from the host). ``local``: the bridge alone.
    """

    network_id: str
    bridge: str
    mtu: int
    network_type: str
    segmentation_id: int | None = None
    physical_network: str | None = None
    local_ip: str | None = None
    vxlan_peers: tuple[str, ...] = ()
    host_addresses: tuple[FixedIP, ...] = ()


@dataclass(frozen=True, slots=True)
class VifPlan:
    """A VM port bound to this host: a persistent tap the guest's QEMU opens, on the network's bridge."""

    port_id: str
    network_id: str
    bridge: str
    tap: str
    mac_address: str
    mtu: int


@dataclass(frozen=True, slots=True)
class SecurityGroupRule:
    """A rule as the firewall applies it, remote groups already resolved to addresses.

    ``protocol`` is normalised: ``None`` (any), ``tcp``, ``udp``, ``icmp``,
    ``ipv6-icmp``, or a protocol number as a string. ``remote_ip_prefix`` is a
    canonical cidr or None; ``remote_addresses`` is set (maybe empty) when the
    rule named a remote group: the addresses of that group's ports.
    """

    direction: str  # ingress | egress
    ethertype: str  # IPv4 | IPv6
    protocol: str | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_addresses: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class PortFirewall:
    """Security for one VM port (its tap): anti-spoofing plus its groups' rules.

    Without ``port_security_enabled`` the port is left open (no rules at
    all). With it, frames from the VM must carry ``mac_address`` and one of
    ``addresses`` (fixed IPs, IPv6 link-local of the MAC, DHCP discovery from
    0.0.0.0) or an ``allowed_pairs`` (mac, cidr) entry; the VM may not act as
    a DHCP server or send router advertisements; traffic *to* the VM is
    dropped unless an ingress rule allows it; traffic *from* the VM is
    dropped unless an egress rule allows it. ``stateful``: replies of allowed
    connections pass both ways (conntrack).
    """

    tap: str
    port_id: str
    mac_address: str
    addresses: tuple[str, ...] = ()
    allowed_pairs: tuple[tuple[str, str], ...] = ()
    port_security_enabled: bool = True
    stateful: bool = True
    rules: tuple[SecurityGroupRule, ...] = ()
    bridge: str = ""  # its network's bridge: the port's connections are tracked in that bridge's conntrack zone


@dataclass(frozen=True, slots=True)
class DhcpHost:
    """A port dnsmasq answers for: its MAC gets exactly these addresses and this name."""

    mac_address: str
    addresses: tuple[str, ...]
    hostname: str


@dataclass(frozen=True, slots=True)
class DhcpSubnet:
    subnet_id: str
    cidr: str
    ip_version: int
    gateway: str | None
    dns_nameservers: tuple[str, ...] = ()
    host_routes: tuple[tuple[str, str], ...] = ()  # (destination cidr, nexthop)
    ipv6_ra_mode: str | None = None
    ipv6_address_mode: str | None = None


@dataclass(frozen=True, slots=True)
class DhcpPlan:
    """The DHCP server of one network: dnsmasq in ``namespace`` on ``interface`` (already up with ``addresses``).

    Only static host entries are served (no dynamic range): a MAC not in
    ``hosts`` gets no lease. IPv6 subnets: router advertisements when the
    subnet has no router doing them (``ipv6_ra_mode`` set and no router
    interface) and DHCPv6 for ``dhcpv6-stateful``/``dhcpv6-stateless``.
    """

    network_id: str
    namespace: str
    interface: str
    port_id: str
    mac_address: str
    addresses: tuple[FixedIP, ...]
    mtu: int
    subnets: tuple[DhcpSubnet, ...]
    hosts: tuple[DhcpHost, ...] = ()
    dns_domain: str = "openstacklocal"


@dataclass(frozen=True, slots=True)
class RouterInterface:
    """A router's leg on a network: ``qr-``/``qg-`` inside the namespace, ``tap`` on ``bridge``."""

    port_id: str
    name: str
    tap: str
    bridge: str
    mac_address: str
    addresses: tuple[FixedIP, ...]
    mtu: int


@dataclass(frozen=True, slots=True)
class FloatingMapping:
    floating_ip: str
    fixed_ip: str


@dataclass(frozen=True, slots=True)
class MetadataClient:
    """Who a source address in one of the router's subnets is, for the metadata proxy."""

    address: str
    instance_id: str
    project_id: str


@dataclass(frozen=True, slots=True)
class RouterPlan:
    """A router on this host: namespace ``qrouter-<id>`` with forwarding on.

    ``gateway`` (None without an external gateway): its addresses, and the
    default route via ``gateway.addresses[*].gateway``. ``enable_snat``:
    traffic from the interfaces' subnets leaving through the gateway is
    masqueraded to the gateway's address. ``floating``: each floating IP is
    an extra address of the gateway interface, DNATed to its fixed IP, and
    the fixed IP's outgoing traffic is SNATed to it. ``routes``: the
    router's static routes (destination cidr, nexthop). ``metadata``: the
    proxy on :data:`METADATA_PROXY_PORT` answers for these clients.
    """

    router_id: str
    namespace: str
    interfaces: tuple[RouterInterface, ...] = ()
    gateway: RouterInterface | None = None
    enable_snat: bool = True
    floating: tuple[FloatingMapping, ...] = ()
    routes: tuple[tuple[str, str], ...] = ()
    metadata: tuple[MetadataClient, ...] = ()


@dataclass(frozen=True, slots=True)
class HostPlan:
    """Everything the agent wants on its host; what is not in here and bears a Kumo name is removed."""

    networks: tuple[NetworkPlan, ...] = ()
    vifs: tuple[VifPlan, ...] = ()
    firewall: tuple[PortFirewall, ...] = ()
    dhcp: tuple[DhcpPlan, ...] = ()
    routers: tuple[RouterPlan, ...] = ()
    guarded_bridges: tuple[str, ...] = field(default=())
