"""The Linux bridge dataplane: bridges, VXLAN, persistent taps and veths into namespaces, over netlink.

Each public call opens one netlink socket, dumps the links it needs once,
compares them with the plan and sends only the changes, so a second call with
the same plan sends nothing but dumps. :meth:`LinuxBridgeDataplane.sync` does
the whole host with one link dump and one FDB dump however many ports there
are (plus a few requests per DHCP or router namespace).

Ownership is by name (see :mod:`kumo.network.dataplane.base`), checked
strictly before anything is deleted: ``tap<11>`` must be a tun or veth device,
``brq<11>`` a bridge, ``vxlan-<vni>`` a VXLAN device, and a ``br-<physnet>``
bridge is only ever deleted when Kumo created it (it carries
:data:`ALIAS_PREFIX` in its ``ifalias``), because Docker and operators name
their bridges ``br-...`` too. Addresses Kumo puts on a host bridge and routes
it adds in a router namespace carry the protocol :data:`KUMO_PROTO`, so only
those are ever removed. Nothing here changes the host's routes or sysctls:
forwarding is switched on inside router namespaces only, from a short-lived
thread that entered the namespace (see :func:`_in_namespace`).
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pyroute2 import IPRoute, NetlinkError, netns

from kumo.network.dataplane.base import (
    KUMO_NETNS_PREFIXES,
    DataplaneError,
    DhcpPlan,
    FixedIP,
    HostPlan,
    NetworkPlan,
    RouterInterface,
    RouterPlan,
    VifPlan,
    bridge_name,
    dhcp_namespace,
    router_namespace,
    tap_name,
    vxlan_name,
)
from kumo.network.dataplane.netns import (
    NETNS_DIR,
    enable_forwarding,
    ensure_namespace,
    in_namespace,
    namespace_exists,
    netns_path,
)

log = logging.getLogger("kumo.network.dataplane")

#: IFA_PROTO of the addresses and rtm_protocol of the routes Kumo adds ('K'); the kernel ignores values above 4.
KUMO_PROTO = 75
#: ``ifalias`` of the bridges Kumo created, followed by the network id: only a marked ``br-`` bridge is deleted.
ALIAS_PREFIX = "kumo network "
VXLAN_PORT = 4789
ZERO_MAC = "00:00:00:00:00:00"
MAIN_TABLE = 254
#: Route protocols of routes someone added by hand or Kumo added (boot, static, kumo); kernel/RA routes are kept.
MANAGED_ROUTE_PROTOS = frozenset({3, 4, KUMO_PROTO})
IFF_UP = 0x1
IFA_F_NODAD = 0x02
TUN_TYPE_TAP = 2

TAP_RE = re.compile(r"tap[0-9a-f-]{11}")
BRQ_RE = re.compile(r"brq[0-9a-f-]{11}")
VXLAN_RE = re.compile(r"vxlan-[0-9]{1,8}")
PHYS_BRIDGE_RE = re.compile(r"br-[A-Za-z0-9_.-]{1,12}")
NS_INTERFACE_RE = re.compile(r"(ns|qr|qg)-[0-9a-f-]{11}")
ROUTER_INTERFACE_PREFIXES = ("qr-", "qg-")



# --------------------------------------------------------------------------- names and ownership


def is_kumo_link(name: str, kind: str | None, alias: str | None = None) -> bool:
    """Whether Kumo may delete this host link: the name must match a Kumo pattern exactly *and* the kind fit it."""
    if TAP_RE.fullmatch(name):
        return kind in ("tun", "veth")
    if BRQ_RE.fullmatch(name):
        return kind == "bridge"
    if VXLAN_RE.fullmatch(name):
        return kind == "vxlan"
    if PHYS_BRIDGE_RE.fullmatch(name):
        return kind == "bridge" and (alias or "").startswith(ALIAS_PREFIX)
    return False


def is_kumo_namespace(name: str) -> bool:
    return name.startswith(KUMO_NETNS_PREFIXES) and "/" not in name and len(name) > len("qdhcp-")


def wanted_links(plan: HostPlan) -> set[str]:
    """Host link names the plan keeps: bridges, VXLAN devices, VM taps and the host ends of namespace veths."""
    names = {n.bridge for n in plan.networks}
    names |= {vxlan_name(n.segmentation_id) for n in plan.networks
              if n.network_type == "vxlan" and n.segmentation_id is not None}
    names |= {v.tap for v in plan.vifs}
    names |= {tap_name(d.port_id) for d in plan.dhcp}
    for router in plan.routers:
        names |= {i.tap for i in _router_legs(router)}
    return names


def wanted_namespaces(plan: HostPlan) -> set[str]:
    return {d.namespace for d in plan.dhcp} | {r.namespace for r in plan.routers}


def _router_legs(plan: RouterPlan) -> tuple[RouterInterface, ...]:
    return plan.interfaces + ((plan.gateway,) if plan.gateway is not None else ())


def require_name(pattern: re.Pattern[str], name: str, what: str) -> None:
    """Refuse a plan naming a non-Kumo object, so a bad plan can never reach the host's own links."""
    if not pattern.fullmatch(name):
        raise ValueError(f"{what} {name!r} is not a Kumo name ({pattern.pattern})")


def require_bridge(name: str) -> None:
    if not (BRQ_RE.fullmatch(name) or PHYS_BRIDGE_RE.fullmatch(name)):
        raise ValueError(f"bridge {name!r} is not a Kumo name (brq<11> or br-<physnet>)")


def require_namespace(name: str, prefix: str) -> None:
    if not name.startswith(prefix) or not is_kumo_namespace(name):
        raise ValueError(f"namespace {name!r} is not a Kumo name ({prefix}<id>)")


def tap_mac(mac: str) -> str:
    """The VM tap's own MAC: the guest's with ``fe`` first, as libvirt does.

    The bridge takes its address from the lowest port MAC, and a port's own
    MAC is local to the bridge: ``fe:`` keeps taps from ever being chosen and
    never equals the guest's MAC, whose frames must be forwarded, not eaten.
    """
    return "fe" + mac.lower()[2:]


def _cidr_key(address: str, prefixlen: int) -> tuple[str, int]:
    return ipaddress.ip_address(address).compressed, prefixlen


def _fixed_keys(ips: Iterable[FixedIP]) -> list[tuple[str, int]]:
    return [_cidr_key(ip.address, ip.prefixlen) for ip in ips]


def _is_gone(exc: NetlinkError) -> bool:
    return exc.code in (errno.ENODEV, errno.ENOENT, errno.ESRCH, errno.EADDRNOTAVAIL)


# --------------------------------------------------------------------------- link table


@dataclass(slots=True)
class Link:
    """What this driver needs to know of one link, read from an RTM_NEWLINK message."""

    index: int
    name: str
    kind: str | None
    master: int
    mtu: int
    up: bool
    mac: str | None
    alias: str | None
    peer: int  # IFLA_LINK: a veth's peer index (in the peer's namespace)
    data: dict[str, Any] = field(default_factory=dict)  # IFLA_INFO_DATA

    @classmethod
    def from_msg(cls, msg: Any) -> Link:
        info = msg.get("linkinfo")
        kind = info.get("kind") if info is not None else None
        data_nla = info.get("data") if info is not None else None
        data: dict[str, Any] = {}
        if data_nla is not None and not isinstance(data_nla, (str, bytes)):
            data = {key: value for key, value in data_nla.get("attrs", [])}
        return cls(index=msg["index"], name=msg.get("ifname"), kind=kind, master=msg.get("master") or 0,
                   mtu=msg.get("mtu") or 0, up=bool(msg["flags"] & IFF_UP), mac=msg.get("address"),
                   alias=msg.get("ifalias"), peer=msg.get("link") or 0, data=data)


class Links:
    """One dump of a namespace's links, kept current as this driver changes them (no re-dump per object).

    ``lazy``: no dump until something iterates; ``get`` asks for one link by name (decoding a dump of 1,000
    links costs pyroute2 a second, too much for adding one tap).
    """

    def __init__(self, ipr: IPRoute, *, lazy: bool = False) -> None:
        self.ipr = ipr
        self.by_name: dict[str, Link] = {}
        self._complete = False
        if not lazy:
            self.reload()

    def reload(self) -> None:
        self.by_name = {link.name: link for link in map(Link.from_msg, self.ipr.get_links())}
        self._complete = True

    def __iter__(self) -> Iterator[Link]:
        if not self._complete:
            self.reload()
        return iter(list(self.by_name.values()))

    def get(self, name: str) -> Link | None:
        if name not in self.by_name and not self._complete:
            try:
                self.by_name[name] = Link.from_msg(self.ipr.link("get", ifname=name)[0])
            except NetlinkError as exc:
                if exc.code != errno.ENODEV:
                    raise
        return self.by_name.get(name)

    def refresh(self, name: str) -> Link:
        """Read one link again (one RTM_GETLINK), after creating it."""
        link = Link.from_msg(self.ipr.link("get", ifname=name)[0])
        self.by_name[name] = link
        return link

    def index(self, name: str) -> int:
        link = self.get(name)
        if link is None:
            raise DataplaneError(f"{name} does not exist (ensure_network before its ports)")
        return link.index

    def delete(self, name: str) -> None:
        """Delete a link; already gone (e.g. with its veth peer or namespace) is fine."""
        link = self.by_name.pop(name, None)
        if link is None:
            return
        try:
            self.ipr.link("del", index=link.index)
        except NetlinkError as exc:
            if not _is_gone(exc):
                raise

    def converge(self, link: Link, *, mtu: int | None = None, master: int | None = None,
                 mac: str | None = None, up: bool = True) -> None:
        """Bring one link to the wanted MTU/master/MAC/state with at most one RTM_SETLINK."""
        change: dict[str, Any] = {}
        if mtu is not None and link.mtu != mtu:
            change["mtu"] = mtu
        if master is not None and link.master != master:
            change["master"] = master
        if mac is not None and (link.mac or "").lower() != mac.lower():
            change["address"] = mac
        if up and not link.up:
            change["state"] = "up"
        if not change:
            return
        self.ipr.link("set", index=link.index, **change)
        link.mtu = change.get("mtu", link.mtu)
        link.master = change.get("master", link.master)
        link.mac = change.get("address", link.mac)
        link.up = link.up or up


class _Host:
    """The driver's view of its own namespace for one call: links dumped once, FDB floods dumped on demand."""

    def __init__(self, ipr: IPRoute, *, lazy: bool = False) -> None:
        self.ipr = ipr
        self.links = Links(ipr, lazy=lazy)
        self._floods: dict[int, set[str]] | None = None

    def floods(self) -> dict[int, set[str]]:
        """ifindex -> destinations of its all-zeros (flooding) FDB entries, from one dump of the whole FDB."""
        if self._floods is None:
            self._floods = {}
            vxlans = {link.index for link in self.links if link.kind == "vxlan"}
            for entry in self.ipr.fdb("dump"):
                dst = entry.get("dst")
                if entry["ifindex"] in vxlans and dst and (entry.get("lladdr") or "") == ZERO_MAC:
                    self._floods.setdefault(entry["ifindex"], set()).add(ipaddress.ip_address(dst).compressed)
        return self._floods


@contextmanager
def _host(*, lazy: bool = False) -> Iterator[_Host]:
    with IPRoute() as ipr:
        yield _Host(ipr, lazy=lazy)


@contextmanager
def _netns_links(namespace: str) -> Iterator[Links]:
    """Links of a named namespace through a netlink socket opened inside it (never creates the namespace)."""
    with IPRoute(netns=namespace, flags=0) as ipr:
        yield Links(ipr)


# --------------------------------------------------------------------------- namespaces


def _remove_namespace(name: str) -> None:
    """Delete the namespace's links first, then detach its mount.

    Deleting the veths removes their host ends from the bridges at once even
    if a process (a dnsmasq the DHCP driver failed to stop) keeps the
    namespace alive; the lazy unmount (MNT_DETACH) never waits for it.
    """
    path = netns_path(name)
    if namespace_exists(name):
        try:
            with _netns_links(name) as links:
                for link in links:
                    if link.name != "lo":
                        links.delete(link.name)
        except (OSError, NetlinkError) as exc:
            log.warning("could not empty namespace %s before removing it: %s", name, exc)
    if os.path.lexists(path):
        netns.remove(name)


def list_namespaces() -> list[str]:
    return sorted(n for n in netns.listnetns(NETNS_DIR) if is_kumo_namespace(n))


# --------------------------------------------------------------------------- addresses and routes


def _address_key(msg: Any) -> tuple[str, int]:
    return _cidr_key(msg.get("local") or msg.get("address"), msg["prefixlen"])


def _reconcile_addresses(ipr: IPRoute, index: int, wanted: list[tuple[str, int]], current: list[Any],
                         removable: Callable[[Any], bool]) -> None:
    """Make ``index`` carry exactly ``wanted`` among the addresses ``removable`` says are ours.

    Stale ones go first, then the address list is read again: removing an
    IPv4 primary address also removes its secondaries, which may be wanted.
    """
    stale = [a for a in current if removable(a) and _address_key(a) not in wanted]
    for msg in stale:
        address, prefixlen = _address_key(msg)
        try:
            ipr.addr("del", index=index, address=address, prefixlen=prefixlen)
        except NetlinkError as exc:
            if not _is_gone(exc):
                raise
    if stale:
        current = list(ipr.get_addr(index=index))
    have = {_address_key(a) for a in current}
    for address, prefixlen in wanted:
        if (address, prefixlen) in have:
            continue
        extra = {"flags": IFA_F_NODAD} if ":" in address else {}  # Kumo's IPAM made it unique: no DAD delay
        ipr.addr("add", index=index, address=address, prefixlen=prefixlen, proto=KUMO_PROTO, **extra)
        have.add((address, prefixlen))


def _not_link_local(msg: Any) -> bool:
    """Every address inside a Kumo namespace is Kumo's, except the IPv6 link-local the kernel gives each link."""
    return not ipaddress.ip_address(msg.get("address")).is_link_local


def _is_kumo_address(msg: Any) -> bool:
    return msg.get("proto") == KUMO_PROTO


RouteKey = tuple[int, str, str | None]  # family, destination cidr, nexthop


def _route_key(msg: Any) -> RouteKey:
    family = msg["family"]
    dst = msg.get("dst") or ("0.0.0.0" if family == 2 else "::")
    gateway = msg.get("gateway")
    return (family, ipaddress.ip_network(f"{dst}/{msg['dst_len']}", strict=False).compressed,
            ipaddress.ip_address(gateway).compressed if gateway else None)


def _route_identity(msg: Any) -> dict[str, Any]:
    """What the kernel matches a route deletion on, copied from the dump (pyroute2's defaults differ: scope 0)."""
    spec: dict[str, Any] = {key: msg[key] for key in ("family", "dst_len", "proto", "scope", "type")}
    spec.update(table=MAIN_TABLE, dst=msg.get("dst") or ("0.0.0.0" if msg["family"] == 2 else "::"))
    for key in ("gateway", "oif", "priority"):
        if msg.get(key) is not None:
            spec[key] = msg.get(key)
    return spec


def wanted_routes(plan: RouterPlan) -> list[RouteKey]:
    """Default route per IP version via the gateway port's subnet gateway, then the router's static routes."""
    wanted: list[RouteKey] = []
    if plan.gateway is not None:
        seen: set[int] = set()
        for ip in plan.gateway.addresses:
            if ip.gateway and ip.version not in seen:
                seen.add(ip.version)
                family = 2 if ip.version == 4 else 10
                default = "0.0.0.0/0" if ip.version == 4 else "::/0"
                wanted.append((family, default, ipaddress.ip_address(ip.gateway).compressed))
    for destination, nexthop in plan.routes:
        net = ipaddress.ip_network(destination, strict=False)
        wanted.append((2 if net.version == 4 else 10, net.compressed, ipaddress.ip_address(nexthop).compressed))
    return wanted


def _reconcile_routes(links: Links, plan: RouterPlan) -> None:
    ipr = links.ipr
    wanted = wanted_routes(plan)
    current = [r for r in ipr.route("dump") if r.get("table") == MAIN_TABLE
               and r["proto"] in MANAGED_ROUTE_PROTOS]
    have: set[RouteKey] = set()
    for msg in current:
        key = _route_key(msg)
        if key in wanted and key not in have:
            have.add(key)
            continue
        try:
            ipr.route("del", **_route_identity(msg))
        except NetlinkError as exc:
            if not _is_gone(exc):
                raise
    gateway_index = links.index(plan.gateway.name) if plan.gateway is not None else None
    for family, dst, nexthop in wanted:
        if (family, dst, nexthop) in have:
            continue
        extra: dict[str, Any] = {}
        if nexthop and ipaddress.ip_address(nexthop).is_link_local and gateway_index is not None:
            extra["oif"] = gateway_index  # an IPv6 link-local nexthop is only meaningful with its link
        try:
            ipr.route("add", family=family, dst=dst, gateway=nexthop, table=MAIN_TABLE, proto=KUMO_PROTO, **extra)
        except NetlinkError as exc:
            if exc.code not in (errno.ENETUNREACH, errno.EHOSTUNREACH):
                raise
            # a nexthop outside the router's subnets (a leg not plugged yet): the next sync adds it
            log.warning("router %s: route %s via %s unreachable, skipped", plan.router_id, dst, nexthop)


# --------------------------------------------------------------------------- the driver


class LinuxBridgeDataplane:
    """Linux bridges, VXLAN, persistent taps and veth-connected namespaces for Kumo's network agent."""

    name = "linuxbridge"

    # ---------------------------------------------------------------- public API, one object at a time

    def ensure_network(self, plan: NetworkPlan) -> None:
        with _host() as host:
            self._ensure_network(host, plan)

    def ensure_vif(self, plan: VifPlan) -> None:
        with _host(lazy=True) as host:
            self._ensure_vif(host, plan)

    def ensure_dhcp_port(self, plan: DhcpPlan, bridge: str) -> None:
        with _host() as host:
            self._ensure_dhcp_port(host, plan, bridge)

    def ensure_router(self, plan: RouterPlan) -> None:
        with _host() as host:
            self._ensure_router(host, plan)

    def delete_network(self, network_id: str) -> None:
        """The network's bridge (``brq`` or a ``br-`` bridge Kumo created for it) and its VXLAN ports.

        Taps still on the bridge are left to :meth:`delete_vif` (they belong to ports).
        """
        with _host() as host:
            alias = ALIAS_PREFIX + network_id
            bridges = [link for link in host.links if is_kumo_link(link.name, link.kind, link.alias)
                       and link.kind == "bridge" and (link.name == bridge_name(network_id) or link.alias == alias)]
            for bridge in bridges:
                for port in host.links:
                    if port.master == bridge.index and port.kind == "vxlan" and is_kumo_link(port.name, port.kind):
                        host.links.delete(port.name)
                host.links.delete(bridge.name)

    def delete_vif(self, port_id: str) -> None:
        with _host(lazy=True) as host:
            link = host.links.get(tap_name(port_id))
            if link is not None and is_kumo_link(link.name, link.kind):
                host.links.delete(link.name)

    def delete_dhcp_port(self, network_id: str, port_id: str) -> None:
        """The DHCP port's veth and its namespace (stop dnsmasq first; a survivor does not block this)."""
        with _host() as host:
            link = host.links.get(tap_name(port_id))
            if link is not None and link.kind == "veth" and is_kumo_link(link.name, link.kind):
                host.links.delete(link.name)
        self.delete_namespace(dhcp_namespace(network_id))

    def delete_router(self, router_id: str) -> None:
        """The router namespace; its veths go with it, and so do their host ends on the bridges."""
        self.delete_namespace(router_namespace(router_id))

    def delete_namespace(self, name: str) -> None:
        """Remove a Kumo namespace without waiting for processes still in it (they keep an empty namespace)."""
        if not is_kumo_namespace(name):
            raise ValueError(f"namespace {name!r} is not a Kumo name")
        _remove_namespace(name)

    def sync(self, plan: HostPlan) -> None:
        """Make the host match ``plan``, then delete every Kumo-named object the plan does not want.

        Every part is attempted even when one fails (a level-triggered agent
        retries later); the failures are raised together at the end.
        """
        failures: list[str] = []
        bridges = {n.network_id: n.bridge for n in plan.networks}
        with _host() as host:
            for network in plan.networks:
                _attempt(failures, f"network {network.network_id}", self._ensure_network, host, network)
            for vif in plan.vifs:
                _attempt(failures, f"vif {vif.port_id}", self._ensure_vif, host, vif)
            for dhcp in plan.dhcp:
                if dhcp.network_id not in bridges:
                    failures.append(f"dhcp {dhcp.network_id}: no network plan for its bridge")
                    continue
                _attempt(failures, f"dhcp {dhcp.network_id}", self._ensure_dhcp_port, host, dhcp,
                         bridges[dhcp.network_id])
            for router in plan.routers:
                _attempt(failures, f"router {router.router_id}", self._ensure_router, host, router)
            _attempt(failures, "removal of stale objects", self._remove_unwanted, host, plan)
        if failures:
            raise DataplaneError("; ".join(failures))

    def cleanup(self) -> None:
        """Remove every Kumo-named object on this host (what ``sync`` of an empty plan does)."""
        with _host() as host:
            self._remove_unwanted(host, HostPlan())

    def listing(self) -> dict[str, Any]:
        """The Kumo-named objects present: sorted names per sort, and ``ifindex`` of every such link."""
        with _host() as host:
            ours = [link for link in host.links if is_kumo_link(link.name, link.kind, link.alias)]
        return {
            "bridges": sorted(link.name for link in ours if link.kind == "bridge"),
            "taps": sorted(link.name for link in ours if link.name.startswith("tap")),
            "vxlans": sorted(link.name for link in ours if link.kind == "vxlan"),
            "namespaces": list_namespaces(),
            "ifindex": {link.name: link.index for link in ours},
        }

    # ---------------------------------------------------------------- networks

    def _ensure_network(self, host: _Host, plan: NetworkPlan) -> None:
        require_bridge(plan.bridge)
        bridge = self._ensure_bridge(host, plan)
        if plan.network_type == "vxlan":
            self._ensure_vxlan(host, plan, bridge)
        elif plan.network_type == "flat":
            current = list(host.ipr.get_addr(index=bridge.index))
            _reconcile_addresses(host.ipr, bridge.index, _fixed_keys(plan.host_addresses), current,
                                 _is_kumo_address)
        elif plan.network_type != "local":
            raise DataplaneError(f"network {plan.network_id}: unsupported network type {plan.network_type!r}")

    def _ensure_bridge(self, host: _Host, plan: NetworkPlan) -> Link:
        link = host.links.get(plan.bridge)
        if link is not None and link.kind != "bridge":
            raise DataplaneError(f"{plan.bridge} exists and is a {link.kind}, not a bridge")
        if link is None:
            host.ipr.link("add", ifname=plan.bridge, kind="bridge", br_stp_state=0, br_forward_delay=0,
                          br_nf_call_iptables=1, br_nf_call_ip6tables=1, mtu=plan.mtu)
            link = host.links.refresh(plan.bridge)
            # the mark that makes a br- bridge Kumo's to delete (the kernel ignores ifalias on creation)
            link.alias = ALIAS_PREFIX + plan.network_id
            host.ipr.link("set", index=link.index, ifalias=link.alias)
        elif link.data.get("IFLA_BR_STP_STATE") != 0 or link.data.get("IFLA_BR_FORWARD_DELAY") != 0 \
                or link.data.get("IFLA_BR_NF_CALL_IPTABLES") != 1 or link.data.get("IFLA_BR_NF_CALL_IP6TABLES") != 1:
            # Stateful security groups need the bridge's IP traffic to pass conntrack (per bridge, not host-wide).
            host.ipr.link("set", index=link.index, kind="bridge", br_stp_state=0, br_forward_delay=0,
                          br_nf_call_iptables=1, br_nf_call_ip6tables=1)
            link.data.update(IFLA_BR_STP_STATE=0, IFLA_BR_FORWARD_DELAY=0, IFLA_BR_NF_CALL_IPTABLES=1,
                             IFLA_BR_NF_CALL_IP6TABLES=1)
        host.links.converge(link, mtu=plan.mtu)
        return link

    def _ensure_vxlan(self, host: _Host, plan: NetworkPlan, bridge: Link) -> None:
        if plan.segmentation_id is None:
            raise DataplaneError(f"network {plan.network_id}: vxlan without a segmentation id")
        name = vxlan_name(plan.segmentation_id)
        link = host.links.get(name)
        if link is not None and not _vxlan_matches(link, plan):
            host.links.delete(name)  # VNI, port or local address cannot be changed in place
            link = None
        if link is None:
            spec: dict[str, Any] = {"vxlan_id": plan.segmentation_id, "vxlan_port": VXLAN_PORT, "vxlan_learning": 1}
            if plan.local_ip:
                local = ipaddress.ip_address(plan.local_ip)
                spec["vxlan_local" if local.version == 4 else "vxlan_local6"] = local.compressed
            host.ipr.link("add", ifname=name, kind="vxlan", mtu=plan.mtu, **spec)
            link = host.links.refresh(name)
        host.links.converge(link, mtu=plan.mtu, master=bridge.index)
        self._ensure_floods(host, link, plan.vxlan_peers)

    def _ensure_floods(self, host: _Host, link: Link, peers: Iterable[str]) -> None:
        """Head-end replication: one all-zeros FDB entry per peer, exactly the listed peers."""
        wanted = {ipaddress.ip_address(p).compressed for p in peers}
        have = host.floods().setdefault(link.index, set())
        for peer in sorted(have - wanted):
            try:
                host.ipr.fdb("del", ifindex=link.index, lladdr=ZERO_MAC, dst=peer)
            except NetlinkError as exc:
                if not _is_gone(exc):
                    raise
            have.discard(peer)
        for peer in sorted(wanted - have):
            host.ipr.fdb("append", ifindex=link.index, lladdr=ZERO_MAC, dst=peer)
            have.add(peer)

    # ---------------------------------------------------------------- VM taps

    def _ensure_vif(self, host: _Host, plan: VifPlan) -> None:
        require_name(TAP_RE, plan.tap, "tap")
        require_bridge(plan.bridge)
        bridge = host.links.index(plan.bridge)
        link = host.links.get(plan.tap)
        if link is not None and not (link.kind == "tun" and link.data.get("IFLA_TUN_TYPE") == TUN_TYPE_TAP):
            host.links.delete(plan.tap)  # e.g. a veth left by a port that changed owner
            link = None
        if link is None:
            # the TUNSETIFF/TUNSETPERSIST ioctls (pyroute2 does them for kind "tuntap"): no netlink call makes a
            # tap that QEMU can later attach to with ifname=, script=no
            host.ipr.link("add", ifname=plan.tap, kind="tuntap", mode="tap", ifr={"no_pi": True})
            link = host.links.refresh(plan.tap)
        host.links.converge(link, mtu=plan.mtu, master=bridge, mac=tap_mac(plan.mac_address))

    # ---------------------------------------------------------------- namespaces with veths

    def _ensure_dhcp_port(self, host: _Host, plan: DhcpPlan, bridge: str) -> None:
        require_namespace(plan.namespace, "qdhcp-")
        require_name(NS_INTERFACE_RE, plan.interface, "interface")
        require_bridge(bridge)
        bridge_index = host.links.index(bridge)
        ensure_namespace(plan.namespace)
        with _netns_links(plan.namespace) as links:
            _lo_up(links)
            for link in links:
                if link.name not in ("lo", plan.interface):
                    links.delete(link.name)  # a DHCP namespace holds its one port and nothing else
            inner = _ensure_veth(host, links, plan.namespace, tap_name(plan.port_id), plan.interface)
            host.links.converge(host.links.by_name[tap_name(plan.port_id)], mtu=plan.mtu, master=bridge_index)
            links.converge(inner, mtu=plan.mtu, mac=plan.mac_address)
            _reconcile_addresses(links.ipr, inner.index, _fixed_keys(plan.addresses),
                                 list(links.ipr.get_addr(index=inner.index)), _not_link_local)

    def _ensure_router(self, host: _Host, plan: RouterPlan) -> None:
        require_namespace(plan.namespace, "qrouter-")
        legs = _router_legs(plan)
        for leg in legs:
            require_name(TAP_RE, leg.tap, "tap")
            require_name(NS_INTERFACE_RE, leg.name, "interface")
            require_bridge(leg.bridge)
        ensure_namespace(plan.namespace)
        in_namespace(plan.namespace, enable_forwarding)
        with _netns_links(plan.namespace) as links:
            _lo_up(links)
            wanted = {leg.name for leg in legs}
            for link in links:
                if link.name.startswith(ROUTER_INTERFACE_PREFIXES) and link.name not in wanted:
                    links.delete(link.name)
            addresses = _addresses_by_index(links.ipr)
            for leg in legs:
                inner = _ensure_veth(host, links, plan.namespace, leg.tap, leg.name)
                host.links.converge(host.links.by_name[leg.tap], mtu=leg.mtu, master=host.links.index(leg.bridge))
                links.converge(inner, mtu=leg.mtu, mac=leg.mac_address)
                want = _fixed_keys(leg.addresses)
                if leg is plan.gateway:
                    want += [_cidr_key(f.floating_ip, 32 if ":" not in f.floating_ip else 128) for f in plan.floating]
                _reconcile_addresses(links.ipr, inner.index, want, addresses.get(inner.index, []), _not_link_local)
            _reconcile_routes(links, plan)

    # ---------------------------------------------------------------- removal

    def _remove_unwanted(self, host: _Host, plan: HostPlan) -> None:
        """Namespaces first (their veths leave the bridges with them), then host links, then stray addresses."""
        keep_ns = wanted_namespaces(plan)
        for name in list_namespaces():
            if name not in keep_ns:
                _remove_namespace(name)
        keep = wanted_links(plan)
        for link in host.links:
            if link.name not in keep and is_kumo_link(link.name, link.kind, link.alias):
                host.links.delete(link.name)
        for link in host.links:
            # a br- bridge Kumo did not create is never deleted, but the addresses Kumo put on it are
            if link.name not in keep and link.kind == "bridge" and PHYS_BRIDGE_RE.fullmatch(link.name):
                _reconcile_addresses(host.ipr, link.index, [], list(host.ipr.get_addr(index=link.index)),
                                     _is_kumo_address)


def _attempt(failures: list[str], what: str, func: Callable[..., None], *args: Any) -> None:
    try:
        func(*args)
    except Exception as exc:  # reported together by sync()
        log.exception("dataplane: %s failed", what)
        failures.append(f"{what}: {exc}")


def _lo_up(links: Links) -> None:
    lo = links.get("lo")
    if lo is not None:
        links.converge(lo)


def _addresses_by_index(ipr: IPRoute) -> dict[int, list[Any]]:
    """All addresses of a namespace in one dump, by link."""
    found: dict[int, list[Any]] = {}
    for msg in ipr.get_addr():
        found.setdefault(msg["index"], []).append(msg)
    return found


def _vxlan_matches(link: Link, plan: NetworkPlan) -> bool:
    data = link.data
    local = data.get("IFLA_VXLAN_LOCAL") or data.get("IFLA_VXLAN_LOCAL6")
    wanted_local = ipaddress.ip_address(plan.local_ip).compressed if plan.local_ip else None
    have_local = ipaddress.ip_address(local).compressed if local else None
    return (link.kind == "vxlan" and data.get("IFLA_VXLAN_ID") == plan.segmentation_id
            and data.get("IFLA_VXLAN_PORT") == VXLAN_PORT and bool(data.get("IFLA_VXLAN_LEARNING"))
            and have_local == wanted_local)


def _ensure_veth(host: _Host, links: Links, namespace: str, outer_name: str, inner_name: str) -> Link:
    """A veth pair ``outer_name`` (host) <-> ``inner_name`` (in ``namespace``); returns the inner end.

    The pair is created with its peer directly in the namespace, in one
    request: made in the host and moved later, a crash in between would leave
    an ``ns-``/``qr-`` link in the host that no Kumo pattern covers. Ends that
    are not each other's peers (one lost in a crash, a stale name) are
    replaced.
    """
    outer = host.links.get(outer_name)
    inner = links.get(inner_name)
    if (outer is not None and inner is not None and outer.kind == "veth" and inner.kind == "veth"
            and inner.peer == outer.index):
        return inner
    if outer is not None:
        host.links.delete(outer_name)
    if inner is not None:
        links.delete(inner_name)
    host.ipr.link("add", ifname=outer_name, kind="veth", peer={"ifname": inner_name, "net_ns_fd": namespace})
    host.links.refresh(outer_name)
    return links.refresh(inner_name)
