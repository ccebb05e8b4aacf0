"""The attribute maps of the network resources (neutron-lib's ``api/definitions``), as Kumo serves them."""

from __future__ import annotations

from typing import Any

from kumo.network.api.resource import Attr, Resource, list_of, nullable, one_of, string, to_bool, to_int, uuid_like
from kumo.network.errors import InvalidInput

NAME = Attr(post=True, put=True, default="", convert=string(255))
DESCRIPTION = Attr(post=True, put=True, default="", convert=string(255))
PROJECT = Attr(post=True, convert=string(255))
READ_ONLY = Attr()
STANDARD = {"id": READ_ONLY, "tenant_id": PROJECT, "project_id": PROJECT, "description": DESCRIPTION,
            "tags": Attr(filterable=False), "created_at": READ_ONLY, "updated_at": READ_ONLY,
            "revision_number": Attr(filter=to_int)}
BOOL = dict(convert=to_bool, filter=to_bool)


def ip_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ValueError(f"'{value}' is not a list")
    return value


def fixed_ips(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise ValueError(f"Invalid data format for fixed IP: '{value}'")
    out = []
    seen: set[str] = set()
    for item in value:
        if not isinstance(item, dict) or not set(item) <= {"subnet_id", "ip_address"}:
            raise ValueError(f"Invalid data format for fixed IP: '{item}'")
        if "ip_address" in item:
            if item["ip_address"] in seen:
                raise ValueError(f"Duplicate IP address '{item['ip_address']}'")
            seen.add(item["ip_address"])
        out.append(dict(item))
    return out


def fixed_ip_filter(value: str) -> dict[str, str]:
    """``?fixed_ips=ip_address=10.0.0.5`` (or ``subnet_id=...``), as the CLI's ``port list --fixed-ip`` sends."""
    key, sep, wanted = value.partition("=")
    if not sep or key not in ("ip_address", "subnet_id"):
        raise ValueError(f"'{value}' is not a valid fixed IP filter")
    return {key: wanted}


def address_pairs(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise ValueError(f"'{value}' is not a list")
    import ipaddress

    out = []
    for item in value:
        if not isinstance(item, dict) or "ip_address" not in item or not set(item) <= {"ip_address", "mac_address"}:
            raise ValueError(f"Allowed address pairs must be a list of dictionaries with ip_address, got {item}")
        try:
            ipaddress.ip_network(item["ip_address"], strict=False)
        except ValueError:
            raise ValueError(f"'{item['ip_address']}' is not a valid IP address") from None
        out.append(dict(item))
    return out


def mac(value: Any) -> str:
    import re

    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}", value) \
            or int(value.split(":")[0], 16) & 1:
        raise ValueError(f"'{value}' is not a valid MAC address")
    return value.lower()


def ip_version(value: Any) -> int:
    version = to_int(value)
    if version not in (4, 6):
        raise InvalidInput(f"{version} is not in [4, 6]")
    return version


NETWORK = Resource("network", "networks", "Network", {
    **STANDARD, "name": NAME,
    "admin_state_up": Attr(post=True, put=True, default=True, **BOOL),
    "status": READ_ONLY, "subnets": Attr(filterable=False),
    "shared": Attr(post=True, put=True, default=False, policy=True, **BOOL),
    "router:external": Attr(post=True, put=True, default=False, policy=True, **BOOL),
    "mtu": Attr(post=True, put=True, convert=to_int, filter=to_int),
    "port_security_enabled": Attr(post=True, put=True, **BOOL),
    "provider:network_type": Attr(post=True, put=True, policy=True, convert=one_of("vxlan", "flat", "local")),
    "provider:physical_network": Attr(post=True, put=True, policy=True, convert=string(64)),
    "provider:segmentation_id": Attr(post=True, put=True, policy=True, convert=to_int, filter=to_int),
    "availability_zone_hints": Attr(post=True, convert=list_of(string(255)), filterable=False),
    "availability_zones": Attr(filterable=False), "ipv4_address_scope": READ_ONLY, "ipv6_address_scope": READ_ONLY,
    "l2_adjacency": READ_ONLY, "dns_domain": Attr(post=True, put=True, convert=string(255)),
    "qos_policy_id": READ_ONLY, "is_default": Attr(filter=to_bool),
})

SUBNET = Resource("subnet", "subnets", "Subnet", {
    **STANDARD, "name": NAME,
    "network_id": Attr(post=True, required=True, convert=uuid_like),
    "ip_version": Attr(post=True, required=True, convert=ip_version, filter=to_int),
    "cidr": Attr(post=True, convert=string(64)),  # or carved from subnetpool_id
    "gateway_ip": Attr(post=True, put=True, convert=nullable(string(64))),
    "allocation_pools": Attr(post=True, put=True, filterable=False),
    "dns_nameservers": Attr(post=True, put=True, convert=ip_list, filterable=False),
    "host_routes": Attr(post=True, put=True, convert=ip_list, filterable=False),
    "enable_dhcp": Attr(post=True, put=True, default=True, **BOOL),
    "ipv6_ra_mode": Attr(post=True, convert=one_of(None, "slaac", "dhcpv6-stateful", "dhcpv6-stateless")),
    "ipv6_address_mode": Attr(post=True, convert=one_of(None, "slaac", "dhcpv6-stateful", "dhcpv6-stateless")),
    "service_types": Attr(post=True, put=True, policy=True, convert=list_of(string(255)), filterable=False),
    "subnetpool_id": Attr(post=True, convert=nullable(uuid_like)),
    "prefixlen": Attr(post=True, convert=to_int, filterable=False),  # the size to carve; not shown
    "use_default_subnetpool": Attr(post=True, default=False, convert=to_bool, filterable=False),
    "segment_id": READ_ONLY, "dns_publish_fixed_ip": READ_ONLY,
})

SUBNETPOOL = Resource("subnetpool", "subnetpools", "SubnetPool", {
    **STANDARD, "name": NAME,
    "prefixes": Attr(post=True, put=True, required=True, convert=list_of(string(64)), filterable=False),
    "default_prefixlen": Attr(post=True, put=True, convert=to_int, filter=to_int),
    "min_prefixlen": Attr(post=True, put=True, convert=to_int, filter=to_int),
    "max_prefixlen": Attr(post=True, put=True, convert=to_int, filter=to_int),
    "default_quota": Attr(post=True, put=True, convert=nullable(to_int), filter=to_int),
    "address_scope_id": Attr(post=True, put=True, convert=nullable(uuid_like)),
    "shared": Attr(post=True, default=False, policy=True, **BOOL),
    "is_default": Attr(post=True, put=True, default=False, policy=True, **BOOL),
    "ip_version": Attr(filter=to_int),
})

PORT = Resource("port", "ports", "Port", {
    **STANDARD, "name": NAME,
    "network_id": Attr(post=True, required=True, convert=uuid_like),
    "admin_state_up": Attr(post=True, put=True, default=True, **BOOL),
    "mac_address": Attr(post=True, put=True, convert=mac),
    "fixed_ips": Attr(post=True, put=True, convert=fixed_ips, filter=fixed_ip_filter),
    "device_id": Attr(post=True, put=True, convert=string(255)),
    "device_owner": Attr(post=True, put=True, convert=string(255)),
    "status": READ_ONLY,
    "security_groups": Attr(post=True, put=True, convert=list_of(uuid_like)),
    "port_security_enabled": Attr(post=True, put=True, **BOOL),
    "allowed_address_pairs": Attr(post=True, put=True, convert=address_pairs, filterable=False),
    "extra_dhcp_opts": Attr(post=True, put=True, filterable=False),
    "binding:host_id": Attr(post=True, put=True, convert=string(255)),
    "binding:profile": Attr(post=True, put=True, filterable=False),
    "binding:vnic_type": Attr(post=True, put=True, convert=one_of("normal", "direct", "macvtap", "baremetal")),
    "binding:vif_type": READ_ONLY, "binding:vif_details": Attr(filterable=False),
    "dns_name": Attr(post=True, put=True, convert=string(255)), "dns_assignment": Attr(filterable=False),
    "ip_allocation": READ_ONLY, "propagate_uplink_status": READ_ONLY, "qos_policy_id": READ_ONLY,
    "qos_network_policy_id": READ_ONLY, "resource_request": Attr(filterable=False),
})

SECURITY_GROUP = Resource("security_group", "security_groups", "SecurityGroup", {
    **STANDARD, "name": NAME, "stateful": Attr(post=True, put=True, default=True, **BOOL),
    "shared": READ_ONLY, "security_group_rules": Attr(filterable=False),
})

SECURITY_GROUP_RULE = Resource("security_group_rule", "security_group_rules", "SecurityGroupRule", {
    **STANDARD,
    "security_group_id": Attr(post=True, required=True, convert=uuid_like),
    "direction": Attr(post=True, required=True, convert=one_of("ingress", "egress")),
    "ethertype": Attr(post=True, default="IPv4"),
    "protocol": Attr(post=True, default=None),
    "port_range_min": Attr(post=True, default=None, convert=to_int, filter=to_int),
    "port_range_max": Attr(post=True, default=None, convert=to_int, filter=to_int),
    "remote_ip_prefix": Attr(post=True, default=None),
    "remote_group_id": Attr(post=True, default=None, convert=uuid_like),
    "remote_address_group_id": Attr(post=True, default=None), "normalized_cidr": READ_ONLY,
    "belongs_to_default_sg": Attr(filter=to_bool),
})

ROUTER = Resource("router", "routers", "Router", {
    **STANDARD, "name": NAME,
    "admin_state_up": Attr(post=True, put=True, default=True, **BOOL),
    "status": READ_ONLY,
    "external_gateway_info": Attr(post=True, put=True, filterable=False),
    "routes": Attr(post=True, put=True, filterable=False),
    "availability_zone_hints": Attr(post=True, convert=list_of(string(255)), filterable=False),
    "availability_zones": Attr(filterable=False), "flavor_id": READ_ONLY,
    "distributed": READ_ONLY, "ha": READ_ONLY,
})

FLOATINGIP = Resource("floatingip", "floatingips", "FloatingIP", {
    **STANDARD,
    "floating_network_id": Attr(post=True, required=True, convert=uuid_like),
    "floating_ip_address": Attr(post=True, policy=True, convert=string(64)),
    "subnet_id": Attr(post=True, convert=nullable(uuid_like)),
    "port_id": Attr(post=True, put=True, convert=nullable(uuid_like)),
    "fixed_ip_address": Attr(post=True, put=True, convert=nullable(string(64))),
    "router_id": READ_ONLY, "status": READ_ONLY, "port_details": Attr(filterable=False),
    "port_forwardings": Attr(filterable=False), "dns_name": READ_ONLY, "dns_domain": READ_ONLY,
    "qos_policy_id": READ_ONLY,
})
