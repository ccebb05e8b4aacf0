"""Nova's security group proxy (``nova/network/security_group_api.py`` with Neutron), against Kumo's network API.

Nova stopped keeping security groups when nova-network went; its
``os-security-groups`` APIs (below 2.36) and the ``addSecurityGroup`` /
``removeSecurityGroup`` actions forward to Neutron *with the caller's token*,
so the network service alone decides what the caller may see and change.
This module does the same through :class:`kumo.core.clients.NetworkClient`:

* groups and rules come back in Nova's internal shape (``project_id``,
  ``parent_group_id``, ``protocol``, ``from_port``/``to_port``, ``cidr``,
  ``group_id``), only the *ingress* rules (Nova's API knows no egress);
* the rule arguments are checked as Nova's ``_new_ingress_rule`` does, with
  its messages ("Invalid IP protocol udpx.", "Invalid port range 5:1. ...");
* Neutron's errors keep Neutron's message, with the status Nova maps them to
  (a quota or duplicate 409 is Nova's 403 ``SecurityGroupLimitExceeded``, an
  in-use group on delete Nova's 400 ``Invalid``).
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import unquote

from kumo.compute.context import RequestContext
from kumo.compute.host_services import is_uuid_like
from kumo.compute.models import Instance
from kumo.core import errors
from kumo.core.clients import NetworkClient
from kumo.core.db import Database

NovaGroup = dict[str, Any]
NovaRule = dict[str, Any]
ANY_CIDR = "0.0.0.0/0"
RULE_KEYS = ("group_id", "cidr", "from_port", "to_port", "protocol")


# ----------------------------------------------------------------------------- pure checks (Nova's helpers)

def validate_id(value: str) -> str:
    """Nova checks the id before asking Neutron (the same message for groups and rules)."""
    if not is_uuid_like(value):
        raise errors.BadRequest("Security group id should be uuid")
    return value


def _interface(text: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface | None:
    """oslo's ``is_valid_cidr``: an address with a non-empty ``/prefix`` (host bits may be set)."""
    parts = text.split("/")
    if len(parts) <= 1 or parts[1] == "":
        return None
    try:
        return ipaddress.ip_interface(text)
    except ValueError:
        return None


def parse_cidr(cidr: Any) -> str:
    """Nova's ``parse_cidr``: no cidr means everything; a bad one is "X is not a valid IP network." (400)."""
    if not cidr:
        return ANY_CIDR
    text = unquote(cidr) if isinstance(cidr, str) else None
    if text is None or _interface(text) is None:
        raise errors.BadRequest(f"{text if text is not None else cidr} is not a valid IP network.")
    return text


def check_prefix(cidr: str) -> None:
    """A ``/0`` is only accepted on ``0.0.0.0`` or ``::`` (Nova's "Bad prefix for network in cidr")."""
    iface = _interface(cidr)
    if iface is not None and str(iface.ip) not in ("0.0.0.0", "::") and iface.network.prefixlen == 0:
        raise errors.BadRequest(f"Bad prefix for network in cidr {cidr}")


def _ports(protocol: str, from_port: Any, to_port: Any) -> tuple[int, int]:
    """The ports as integers, in the range the protocol allows (Nova's checks, in Nova's order)."""
    upper = protocol.upper()
    try:
        low, high = int(from_port), int(to_port)
    except (TypeError, ValueError):
        if upper == "ICMP":
            raise errors.BadRequest("Invalid input received: Type and Code must be integers for ICMP "
                                    "protocol type") from None
        raise errors.BadRequest("Invalid input received: To and From ports must be integers") from None
    if upper not in ("TCP", "UDP", "ICMP"):
        raise errors.BadRequest(f"Invalid IP protocol {protocol}.")
    reason = None
    if upper in ("TCP", "UDP") and low > high:
        reason = "Former value cannot be greater than the later"
    elif upper in ("TCP", "UDP") and (low < 1 or high > 65535):
        reason = f"Valid {upper} ports should be between 1-65535"
    elif upper == "ICMP" and not (-1 <= low <= 255 and -1 <= high <= 255):
        reason = "For ICMP, the type:code must be valid"
    if reason:
        raise errors.BadRequest(f"Invalid port range {low}:{high}. {reason}")
    return low, high


def new_ingress_rule(protocol: Any, from_port: Any, to_port: Any, *, group_id: str | None = None,
                     cidr: str | None = None) -> NovaRule | None:
    """Nova's ``_new_ingress_rule``: the rule to make, or None when a cidr rule lacks protocol and ports.

    A rule from a source group with no ports opens the protocol's whole
    range (ICMP -1:-1, TCP/UDP 1:65535), as Nova does.
    """
    values: NovaRule = {}
    if group_id:
        values["group_id"] = group_id
        upper = str(protocol).upper() if protocol else ""
        if from_port is None and to_port is None:
            if upper == "ICMP":
                from_port, to_port = -1, -1
            elif upper in ("TCP", "UDP"):
                from_port, to_port = 1, 65535
    elif cidr:
        values["cidr"] = cidr
    if protocol and from_port is not None and to_port is not None:
        protocol = str(protocol)
        low, high = _ports(protocol, from_port, to_port)
        values.update(protocol=protocol, from_port=low, to_port=high)
    elif cidr:
        return None
    return values


def rule_exists(group: NovaGroup, new_rule: NovaRule) -> bool:
    """Nova refuses (400) a rule the group already has, before Neutron is asked."""
    return any(all(rule.get(k) == new_rule.get(k) for k in RULE_KEYS) for rule in group["rules"])


# ----------------------------------------------------------------------------- Neutron <-> Nova shapes

def nova_rule(rule: dict[str, Any]) -> NovaRule:
    """Nova's ``_convert_to_nova_security_group_rule_format``: no ports means the protocol's whole range."""
    protocol = rule.get("protocol")
    low, high = rule.get("port_range_min"), rule.get("port_range_max")
    if protocol and low is None and high is None:
        low, high = (1, 65535) if str(protocol).upper() in ("TCP", "UDP") else (-1, -1)
    return {"id": rule["id"], "parent_group_id": rule["security_group_id"], "protocol": protocol,
            "from_port": low, "to_port": high, "group_id": rule.get("remote_group_id"),
            "cidr": parse_cidr(rule.get("remote_ip_prefix"))}


def nova_group(group: dict[str, Any]) -> NovaGroup:
    """Nova's ``_convert_to_nova_security_group_format``: only ingress rules exist for Nova."""
    return {"id": group["id"], "description": group.get("description"), "name": group.get("name"),
            "project_id": group.get("tenant_id", group.get("project_id")),
            "rules": [nova_rule(r) for r in group.get("security_group_rules") or () if r["direction"] == "ingress"]}


def neutron_rule(rule: NovaRule) -> dict[str, Any]:
    """Nova's ``_make_neutron_security_group_rules_list`` for one rule; a -1 port is no port.

    Rules from a source group are IPv4 only, as in Nova.
    """
    body: dict[str, Any] = {"direction": "ingress", "security_group_id": rule["parent_group_id"]}
    cidr = rule.get("cidr")
    iface = _interface(cidr) if cidr else None
    body["ethertype"] = "IPv6" if iface is not None and iface.version == 6 else "IPv4"
    optional = {"protocol": rule.get("protocol"), "remote_ip_prefix": cidr, "remote_group_id": rule.get("group_id")}
    body.update({k: v for k, v in optional.items() if v is not None})
    if rule.get("from_port") not in (None, -1):
        body["port_range_min"] = rule["from_port"]
    if rule.get("to_port") not in (None, -1):
        body["port_range_max"] = rule["to_port"]
    return body


def _needs_groups(port: dict[str, Any]) -> bool:
    """Nova's ``_has_security_group_requirements``: port security on, and an address (or a deferred one)."""
    if port.get("fixed_ips") or port.get("ip_allocation") == "deferred":
        return bool(port.get("port_security_enabled", True))
    return False


# ----------------------------------------------------------------------------- the proxy

class SecurityGroupAPI:
    """Nova's ``security_group_api`` functions, each a call to the network API with the caller's token."""

    def __init__(self, client: NetworkClient, ctx: RequestContext) -> None:
        self.client = client
        self.ctx = ctx
        self.token = ctx.auth_token

    # -- groups

    async def get(self, group_id: str) -> NovaGroup:
        """The group (404 with Neutron's message when the caller cannot see it)."""
        return nova_group(await self.client.get_security_group(self.token, group_id))

    async def list(self, all_tenants: bool = False) -> list[NovaGroup]:
        """The caller's project's groups; every project's for an admin asking ``all_tenants``."""
        filters = {} if all_tenants and self.ctx.is_admin else {"tenant_id": self.ctx.project_id}
        return [nova_group(g) for g in await self.client.list_security_groups(self.token, **filters)]

    async def create(self, name: str, description: str) -> NovaGroup:
        """Neutron's quota (or "default" name) conflict is Nova's 403 ``SecurityGroupLimitExceeded``."""
        try:
            group = await self.client.create_security_group(self.token, {"name": name, "description": description})
        except (errors.Conflict, errors.OverQuota) as exc:
            raise errors.Forbidden(exc.message) from None
        return nova_group(group)

    async def update(self, group_id: str, name: str, description: str) -> NovaGroup:
        body = {"name": name, "description": description}
        return nova_group(await self.client.update_security_group(self.token, group_id, body))

    async def destroy(self, group_id: str) -> None:
        """A group in use (or the default one) is Nova's 400 ``Invalid`` with Neutron's message."""
        try:
            await self.client.delete_security_group(self.token, group_id)
        except errors.Conflict as exc:
            raise errors.BadRequest(exc.message) from None

    # -- rules

    async def get_rule(self, rule_id: str) -> NovaRule:
        return nova_rule(await self.client.get_security_group_rule(self.token, rule_id))

    async def add_rule(self, group: NovaGroup, new_rule: NovaRule) -> NovaRule:
        """Nova's ``create_security_group_rule``: a duplicate is 400, Neutron's 409 (quota) a 403."""
        if rule_exists(group, new_rule):
            raise errors.BadRequest(f"This rule already exists in group {new_rule['parent_group_id']}")
        try:
            rule = await self.client.create_security_group_rule(self.token, neutron_rule(new_rule))
        except (errors.Conflict, errors.OverQuota) as exc:
            raise errors.Forbidden(exc.message) from None
        return nova_rule(rule)

    async def remove_rule(self, rule_id: str) -> None:
        await self.client.delete_security_group_rule(self.token, rule_id)

    # -- instances

    async def instance_groups(self, instance_uuid: str) -> list[NovaGroup]:
        """Each port's groups, in port order (a group on two ports is listed twice, as Nova does).

        Groups the caller cannot see are left out (Nova's note: a port may
        carry a group of another project).
        """
        ports = await self.client.list_ports(self.token, device_id=instance_uuid)
        ids = list(dict.fromkeys(g for p in ports for g in p.get("security_groups") or ()))
        groups: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 150):  # Nova's MAX_SEARCH_IDS: the URL has a length limit
            for group in await self.client.list_security_groups(self.token, id=ids[start:start + 150]):
                groups[group["id"]] = group
        return [nova_group(groups[g]) for p in ports for g in p.get("security_groups") or () if g in groups]

    async def find_id(self, name: str) -> str:
        """neutronclient's ``find_resourceid_by_name_or_id``: the id first, then the name in the project."""
        try:
            found = await self.client.list_security_groups(self.token, id=name)
        except errors.BadRequest:
            found = []
        if found:
            return str(found[0]["id"])
        named = await self.client.list_security_groups(self.token, name=name, tenant_id=self.ctx.project_id)
        if len(named) > 1:
            raise errors.Conflict(f"Multiple security_group matches found for name '{name}', "
                                  f"use an ID to be more specific.")
        if not named:
            raise errors.NotFound(f"Security group {name} is not found for project {self.ctx.project_id}")
        return str(named[0]["id"])

    async def _instance_ports(self, instance_uuid: str) -> list[dict[str, Any]]:
        ports = await self.client.list_ports(self.token, device_id=instance_uuid)
        if not ports:
            raise errors.NotFound(f"instance_id {instance_uuid} could not be found as device id on any ports")
        return ports

    async def _set_port_groups(self, port: dict[str, Any], group_ids: list[str]) -> None:
        """Neutron's 400 is Nova's ``SecurityGroupCannotBeApplied`` (400), its 409 a 409: both keep the message."""
        await self.client.update_port(self.token, port["id"], {"security_groups": list(dict.fromkeys(group_ids))})

    async def add_to_instance(self, instance_uuid: str, name: str) -> None:
        """Nova's ``add_to_instance``: the group goes on every port, each of which must be able to take it."""
        group_id = await self.find_id(name)
        for port in await self._instance_ports(instance_uuid):
            if not _needs_groups(port):
                raise errors.BadRequest("Network requires port_security_enabled and subnet associated in order "
                                        "to apply security groups.")
            await self._set_port_groups(port, [*(port.get("security_groups") or ()), group_id])

    async def remove_from_instance(self, instance_uuid: str, name: str) -> None:
        """Nova's ``remove_from_instance``: 404 only when no port of the instance had the group."""
        group_id = await self.find_id(name)
        found = False
        for port in await self._instance_ports(instance_uuid):
            current = list(port.get("security_groups") or ())
            if group_id not in current:
                continue
            current.remove(group_id)
            await self._set_port_groups(port, current)
            found = True
        if not found:
            raise errors.NotFound(f"Security group {name} not associated with the instance {instance_uuid}")


async def remember_group_names(db: Database, instance_uuid: str, names: list[str]) -> None:
    """Keep the instance's group names (the server view's ``security_groups``) after its ports' groups changed."""
    async with db.session() as s:
        row = await s.get(Instance, instance_uuid)
        if row is not None:
            row.system_metadata = {**(row.system_metadata or {}), "security_groups": names}
