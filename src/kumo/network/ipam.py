"""Address management (Neutron's IPAM): pools, gateways, candidates, EUI-64 — the arithmetic, no database.

The database side (``ports.py``) inserts each chosen address as a row whose
primary key is (subnet, address), so the same address can never be handed
out twice, even by two API processes at once; when an INSERT loses that
race the next candidate is tried. Candidates are taken in address order from
the allocation pools (Neutron's default driver picks randomly among the
first free ones; in order is as correct and easier to read in a listing).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from kumo.network.errors import Conflict, Invalid, InvalidInput

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPV6_SLAAC_MODES = ("slaac", "dhcpv6-stateless")


@dataclass(frozen=True)
class Pool:
    start: IPAddress
    end: IPAddress

    def as_dict(self) -> dict[str, str]:
        return {"start": str(self.start), "end": str(self.end)}

    def __contains__(self, address: IPAddress) -> bool:
        return self.start <= address <= self.end


def parse_cidr(value: object, ip_version: int | None = None) -> IPNetwork:
    """A subnet cidr as Neutron's ``convert_to_cidr`` takes it: canonicalised (``10.0.0.1/24`` is 10.0.0.0/24)."""
    if not isinstance(value, str):
        raise InvalidInput(f"{value} is not in a CIDR format")
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise InvalidInput(f"{value} is not in a CIDR format") from None
    if ip_version is not None and net.version != ip_version:
        raise InvalidInput(f"cidr '{net}' does not match the ip_version '{ip_version}'")
    if net.prefixlen == 0:
        raise InvalidInput("0 is not allowed as CIDR prefix length")
    return net


def parse_ip(value: object) -> IPAddress:
    if not isinstance(value, str):
        raise InvalidInput(f"'{value}' is not a valid IP address")
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise InvalidInput(f"'{value}' is not a valid IP address") from None


def usable_range(net: IPNetwork) -> tuple[IPAddress, IPAddress]:
    """First and last address a port may get: IPv4 drops network and broadcast; IPv6 drops the subnet-router anycast."""
    if net.num_addresses <= 2 and net.version == 4:
        return net.network_address, net.broadcast_address  # /31, /32: every address (RFC 3021)
    if net.version == 4:
        return net.network_address + 1, net.broadcast_address - 1
    return net.network_address + 1, net.broadcast_address


def default_gateway(net: IPNetwork) -> IPAddress:
    """Neutron's default: the first host address (IPv4), the subnet-router anycast address (IPv6)."""
    return usable_range(net)[0] if net.version == 4 else net.network_address


def default_pools(net: IPNetwork, gateway: IPAddress | None) -> list[Pool]:
    """The whole usable range, split around the gateway when it is inside it (Neutron's default)."""
    first, last = usable_range(net)
    if gateway is None or not first <= gateway <= last:
        return [Pool(first, last)]
    pools = []
    if gateway > first:
        pools.append(Pool(first, gateway - 1))
    if gateway < last:
        pools.append(Pool(gateway + 1, last))
    return pools


def parse_pools(raw: object, net: IPNetwork, gateway: IPAddress | None) -> list[Pool]:
    """Validate ``allocation_pools`` as Neutron does: well-formed, inside the cidr, ordered, disjoint, no gateway."""
    if not isinstance(raw, list):
        raise InvalidInput(f"Invalid data format for IP pool: '{raw}'")
    pools: list[Pool] = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"start", "end"}:
            raise InvalidInput(f"Invalid data format for IP pool: '{item}'")
        start, end = parse_ip(item["start"]), parse_ip(item["end"])
        shown = f"{item['start']}-{item['end']}"
        if start.version != net.version or end.version != net.version or start > end:
            raise Invalid(f"The allocation pool {shown} is not valid.", "InvalidAllocationPool")
        if start not in net or end not in net:
            raise Invalid(f"The allocation pool {shown} spans beyond the subnet cidr {net}.",
                          "OutOfBoundsAllocationPool")
        pools.append(Pool(start, end))
    ordered = sorted(pools, key=lambda p: p.start)
    for left, right in zip(ordered, ordered[1:], strict=False):
        if right.start <= left.end:
            raise Conflict(f"Found overlapping allocation pools: {_show(left)} {_show(right)} for subnet {net}.",
                           "OverlappingAllocationPools")
    if gateway is not None:
        for pool in pools:
            if gateway in pool:
                raise gateway_conflict(gateway, pool)
    return pools


def pools_of(stored: Sequence[dict[str, str]]) -> list[Pool]:
    """A subnet's stored ``allocation_pools`` (validated when they were set) as pools."""
    return [Pool(ipaddress.ip_address(p["start"]), ipaddress.ip_address(p["end"])) for p in stored]


def _show(pool: Pool) -> str:
    return f"{pool.start}-{pool.end}"


def gateway_conflict(gateway: IPAddress, pool: Pool) -> Conflict:
    return Conflict(f"Gateway ip {gateway} conflicts with allocation pool {_show(pool)}.",
                    "GatewayConflictWithAllocationPools")


def candidates(pools: Sequence[Pool], taken: Iterable[str]) -> Iterator[IPAddress]:
    """Free addresses of the pools, in order, skipping ``taken`` (walked as integers: thousands a millisecond)."""
    used = {int(ipaddress.ip_address(t)) for t in taken}
    for pool in pools:
        make = ipaddress.IPv4Address if pool.start.version == 4 else ipaddress.IPv6Address
        for value in range(int(pool.start), int(pool.end) + 1):
            if value not in used:
                yield make(value)


def eui64(net: IPNetwork, mac: str) -> IPAddress:
    """The SLAAC address of ``mac`` in an IPv6 /64 (RFC 4291: the U/L bit flipped, ff:fe in the middle)."""
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    interface = octets[:3] + [0xFF, 0xFE] + octets[3:]
    suffix = int.from_bytes(bytes(interface), "big")
    return ipaddress.IPv6Address(int(net.network_address) | suffix)


def is_auto_address(ip_version: int, address_mode: str | None) -> bool:
    """IPv6 subnets whose addresses the guest makes itself from the MAC (SLAAC)."""
    return ip_version == 6 and address_mode in IPV6_SLAAC_MODES
