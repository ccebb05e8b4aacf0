"""The fake dataplane: the Linux bridge driver's contract kept in dicts, for tests of the network agent.

It applies the same plans with the same rules as
:class:`~kumo.network.dataplane.linuxbridge.LinuxBridgeDataplane` (name checks,
ownership, what ``sync`` deletes, ``listing`` shape) without a kernel, and
adds what tests need: ``changes`` (a log of every mutation, so a test can
assert a second sync changed nothing), ``add_foreign_link`` (a host link Kumo
must leave alone) and ``fail_next`` (fault injection per method).
"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass, field
from typing import Any

from kumo.network.dataplane.base import (
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
from kumo.network.dataplane.linuxbridge import (
    ALIAS_PREFIX,
    NS_INTERFACE_RE,
    PHYS_BRIDGE_RE,
    ROUTER_INTERFACE_PREFIXES,
    TAP_RE,
    DataplaneError,
    is_kumo_link,
    is_kumo_namespace,
    require_bridge,
    require_name,
    require_namespace,
    tap_mac,
    wanted_links,
    wanted_namespaces,
    wanted_routes,
)


@dataclass(slots=True)
class FakeLink:
    """A link as the fake records it; ``peer`` is (namespace or "" for the host, name) of a veth's other end."""

    name: str
    kind: str
    index: int
    mtu: int = 1500
    master: str | None = None
    mac: str | None = None
    alias: str | None = None
    vni: int | None = None
    local_ip: str | None = None
    floods: set[str] = field(default_factory=set)
    addresses: list[str] = field(default_factory=list)
    peer: tuple[str, str] | None = None


@dataclass(slots=True)
class FakeNamespace:
    name: str
    links: dict[str, FakeLink] = field(default_factory=dict)
    forwarding: bool = False
    routes: list[tuple[int, str, str | None]] = field(default_factory=list)  # (family, destination, nexthop)


class FakeDataplane:
    """In-memory host: ``links`` (host namespace) and ``namespaces``; every mutation is appended to ``changes``."""

    name = "fake"

    def __init__(self) -> None:
        self.links: dict[str, FakeLink] = {}
        self.namespaces: dict[str, FakeNamespace] = {}
        self.changes: list[str] = []
        self._indexes = itertools.count(100)
        self._failures: dict[str, Exception] = {}

    # ---------------------------------------------------------------- test hooks

    def fail_next(self, method: str, error: Exception | None = None) -> None:
        """The next call of ``method`` (e.g. ``"ensure_vif"``) raises ``error`` (a DataplaneError by default)."""
        self._failures[method] = error or DataplaneError(f"injected failure of {method}")

    def add_foreign_link(self, name: str, kind: str = "dummy") -> None:
        """A link Kumo did not create (the uplink, a Docker ``br-`` bridge); sync and cleanup must keep it."""
        self.links[name] = FakeLink(name, kind, next(self._indexes))

    def _check_failure(self, method: str) -> None:
        error = self._failures.pop(method, None)
        if error is not None:
            raise error

    # ---------------------------------------------------------------- the contract

    def ensure_network(self, plan: NetworkPlan) -> None:
        self._check_failure("ensure_network")
        require_bridge(plan.bridge)
        if plan.network_type not in ("vxlan", "flat", "local"):
            raise DataplaneError(f"network {plan.network_id}: unsupported network type {plan.network_type!r}")
        bridge = self.links.get(plan.bridge)
        if bridge is not None and bridge.kind != "bridge":
            raise DataplaneError(f"{plan.bridge} exists and is a {bridge.kind}, not a bridge")
        if bridge is None:
            bridge = self._add(self.links, FakeLink(plan.bridge, "bridge", 0, alias=ALIAS_PREFIX + plan.network_id))
        self._set(bridge, "mtu", plan.mtu)
        if plan.network_type == "vxlan":
            self._ensure_vxlan(plan)
        elif plan.network_type == "flat":
            self._set(bridge, "addresses", [ip.cidr for ip in plan.host_addresses])

    def ensure_vif(self, plan: VifPlan) -> None:
        self._check_failure("ensure_vif")
        require_name(TAP_RE, plan.tap, "tap")
        require_bridge(plan.bridge)
        self._bridge(plan.bridge)
        tap = self.links.get(plan.tap)
        if tap is not None and tap.kind != "tun":
            self._remove_link("", plan.tap)
            tap = None
        if tap is None:
            tap = self._add(self.links, FakeLink(plan.tap, "tun", 0))
        self._set(tap, "mtu", plan.mtu)
        self._set(tap, "master", plan.bridge)
        self._set(tap, "mac", tap_mac(plan.mac_address))

    def ensure_dhcp_port(self, plan: DhcpPlan, bridge: str) -> None:
        self._check_failure("ensure_dhcp_port")
        require_namespace(plan.namespace, "qdhcp-")
        require_name(NS_INTERFACE_RE, plan.interface, "interface")
        require_bridge(bridge)
        self._bridge(bridge)
        ns = self._namespace(plan.namespace)
        for name in list(ns.links):
            if name != plan.interface:
                self._remove_link(ns.name, name)
        inner = self._veth(ns, tap_name(plan.port_id), plan.interface, bridge, plan.mtu)
        self._set(inner, "mac", plan.mac_address)
        self._set(inner, "addresses", [ip.cidr for ip in _canonical(plan.addresses)])

    def ensure_router(self, plan: RouterPlan) -> None:
        self._check_failure("ensure_router")
        require_namespace(plan.namespace, "qrouter-")
        legs = plan.interfaces + ((plan.gateway,) if plan.gateway is not None else ())
        for leg in legs:
            require_name(TAP_RE, leg.tap, "tap")
            require_name(NS_INTERFACE_RE, leg.name, "interface")
            require_bridge(leg.bridge)
        ns = self._namespace(plan.namespace)
        if not ns.forwarding:
            ns.forwarding = True
            self.changes.append(f"forwarding on in {ns.name}")
        wanted = {leg.name for leg in legs}
        for name in list(ns.links):
            if name.startswith(ROUTER_INTERFACE_PREFIXES) and name not in wanted:
                self._remove_link(ns.name, name)
        for leg in legs:
            self._ensure_leg(ns, plan, leg)
        routes = [r for r in wanted_routes(plan) if self._reachable(ns, r[2])]
        self._set(ns, "routes", routes)

    def delete_network(self, network_id: str) -> None:
        self._check_failure("delete_network")
        for link in list(self.links.values()):
            if (link.kind == "bridge" and is_kumo_link(link.name, link.kind, link.alias)
                    and (link.name == bridge_name(network_id) or link.alias == ALIAS_PREFIX + network_id)):
                for port in list(self.links.values()):
                    if port.master == link.name and port.kind == "vxlan":
                        self._remove_link("", port.name)
                self._remove_link("", link.name)

    def delete_vif(self, port_id: str) -> None:
        self._check_failure("delete_vif")
        link = self.links.get(tap_name(port_id))
        if link is not None and is_kumo_link(link.name, link.kind):
            self._remove_link("", link.name)

    def delete_dhcp_port(self, network_id: str, port_id: str) -> None:
        self._check_failure("delete_dhcp_port")
        link = self.links.get(tap_name(port_id))
        if link is not None and link.kind == "veth":
            self._remove_link("", link.name)
        self.delete_namespace(dhcp_namespace(network_id))

    def delete_router(self, router_id: str) -> None:
        self._check_failure("delete_router")
        self.delete_namespace(router_namespace(router_id))

    def delete_namespace(self, name: str) -> None:
        if not is_kumo_namespace(name):
            raise ValueError(f"namespace {name!r} is not a Kumo name")
        ns = self.namespaces.get(name)
        if ns is None:
            return
        for link in list(ns.links):
            self._remove_link(name, link)
        del self.namespaces[name]
        self.changes.append(f"delete namespace {name}")

    def sync(self, plan: HostPlan) -> None:
        self._check_failure("sync")
        failures: list[str] = []
        bridges = {n.network_id: n.bridge for n in plan.networks}
        steps: list[tuple[str, Any, tuple[Any, ...]]] = []
        steps += [(f"network {n.network_id}", self.ensure_network, (n,)) for n in plan.networks]
        steps += [(f"vif {v.port_id}", self.ensure_vif, (v,)) for v in plan.vifs]
        for dhcp in plan.dhcp:
            if dhcp.network_id not in bridges:
                failures.append(f"dhcp {dhcp.network_id}: no network plan for its bridge")
            else:
                steps.append((f"dhcp {dhcp.network_id}", self.ensure_dhcp_port, (dhcp, bridges[dhcp.network_id])))
        steps += [(f"router {r.router_id}", self.ensure_router, (r,)) for r in plan.routers]
        for what, func, args in steps:
            try:
                func(*args)
            except Exception as exc:  # reported together, as the real driver does
                failures.append(f"{what}: {exc}")
        self._remove_unwanted(plan)
        if failures:
            raise DataplaneError("; ".join(failures))

    def cleanup(self) -> None:
        self._remove_unwanted(HostPlan())

    def listing(self) -> dict[str, Any]:
        ours = [link for link in self.links.values() if is_kumo_link(link.name, link.kind, link.alias)]
        return {
            "bridges": sorted(link.name for link in ours if link.kind == "bridge"),
            "taps": sorted(link.name for link in ours if link.name.startswith("tap")),
            "vxlans": sorted(link.name for link in ours if link.kind == "vxlan"),
            "namespaces": sorted(self.namespaces),
            "ifindex": {link.name: link.index for link in ours},
        }

    # ---------------------------------------------------------------- helpers

    def _ensure_vxlan(self, plan: NetworkPlan) -> None:
        if plan.segmentation_id is None:
            raise DataplaneError(f"network {plan.network_id}: vxlan without a segmentation id")
        name = vxlan_name(plan.segmentation_id)
        link = self.links.get(name)
        local = ipaddress.ip_address(plan.local_ip).compressed if plan.local_ip else None
        if link is not None and (link.kind != "vxlan" or link.vni != plan.segmentation_id or link.local_ip != local):
            self._remove_link("", name)
            link = None
        if link is None:
            link = self._add(self.links, FakeLink(name, "vxlan", 0, vni=plan.segmentation_id, local_ip=local))
        self._set(link, "mtu", plan.mtu)
        self._set(link, "master", plan.bridge)
        self._set(link, "floods", {ipaddress.ip_address(p).compressed for p in plan.vxlan_peers})

    def _ensure_leg(self, ns: FakeNamespace, plan: RouterPlan, leg: RouterInterface) -> None:
        self._bridge(leg.bridge)
        inner = self._veth(ns, leg.tap, leg.name, leg.bridge, leg.mtu)
        self._set(inner, "mac", leg.mac_address)
        addresses = [ip.cidr for ip in _canonical(leg.addresses)]
        if leg is plan.gateway:
            addresses += [f"{f.floating_ip}/{32 if ':' not in f.floating_ip else 128}" for f in plan.floating]
        self._set(inner, "addresses", addresses)

    def _veth(self, ns: FakeNamespace, outer_name: str, inner_name: str, bridge: str, mtu: int) -> FakeLink:
        outer = self.links.get(outer_name)
        inner = ns.links.get(inner_name)
        if not (outer is not None and inner is not None and outer.peer == (ns.name, inner_name)):
            if outer is not None:
                self._remove_link("", outer_name)
            if inner_name in ns.links:
                self._remove_link(ns.name, inner_name)
            outer = self._add(self.links, FakeLink(outer_name, "veth", 0, peer=(ns.name, inner_name)))
            inner = self._add(ns.links, FakeLink(inner_name, "veth", 0, peer=("", outer_name)))
        assert inner is not None
        self._set(outer, "mtu", mtu)
        self._set(outer, "master", bridge)
        self._set(inner, "mtu", mtu)
        return inner

    def _reachable(self, ns: FakeNamespace, nexthop: str | None) -> bool:
        """Like the kernel: a route's nexthop must be on one of the namespace's subnets (or link-local)."""
        if nexthop is None or ipaddress.ip_address(nexthop).is_link_local:
            return True
        address = ipaddress.ip_address(nexthop)
        return any(address in ipaddress.ip_interface(cidr).network
                   for link in ns.links.values() for cidr in link.addresses)

    def _bridge(self, name: str) -> FakeLink:
        link = self.links.get(name)
        if link is None or link.kind != "bridge":
            raise DataplaneError(f"{name} does not exist (ensure_network before its ports)")
        return link

    def _namespace(self, name: str) -> FakeNamespace:
        ns = self.namespaces.get(name)
        if ns is None:
            ns = self.namespaces[name] = FakeNamespace(name)
            self.changes.append(f"add namespace {name}")
        return ns

    def _add(self, where: dict[str, FakeLink], link: FakeLink) -> FakeLink:
        link.index = next(self._indexes)
        where[link.name] = link
        self.changes.append(f"add {link.kind} {link.name}")
        return link

    def _set(self, obj: FakeLink | FakeNamespace, attribute: str, value: Any) -> None:
        if getattr(obj, attribute) != value:
            setattr(obj, attribute, value)
            self.changes.append(f"set {obj.name} {attribute}={value!r}")

    def _remove_link(self, namespace: str, name: str) -> None:
        """Delete a link; a veth takes its peer with it, and a bridge releases its ports, as in the kernel."""
        where = self.namespaces[namespace].links if namespace else self.links
        link = where.pop(name, None)
        if link is None:
            return
        self.changes.append(f"delete {link.kind} {name}" + (f" in {namespace}" if namespace else ""))
        if link.peer is not None:
            peer_ns, peer_name = link.peer
            if not peer_ns:
                self.links.pop(peer_name, None)
            elif peer_ns in self.namespaces:
                self.namespaces[peer_ns].links.pop(peer_name, None)
        if link.kind == "bridge":
            for port in self.links.values():
                if port.master == name:
                    port.master = None

    def _remove_unwanted(self, plan: HostPlan) -> None:
        keep_ns = wanted_namespaces(plan)
        for name in sorted(self.namespaces):
            if name not in keep_ns:
                self.delete_namespace(name)
        keep = wanted_links(plan)
        for link in list(self.links.values()):
            if link.name in self.links and link.name not in keep and is_kumo_link(link.name, link.kind, link.alias):
                self._remove_link("", link.name)
        for link in self.links.values():
            if link.name not in keep and link.kind == "bridge" and PHYS_BRIDGE_RE.fullmatch(link.name):
                self._set(link, "addresses", [])  # Kumo's addresses leave a br- bridge it did not create


def _canonical(ips: tuple[FixedIP, ...]) -> list[FixedIP]:
    return [FixedIP(ipaddress.ip_address(ip.address).compressed, ip.prefixlen) for ip in ips]

