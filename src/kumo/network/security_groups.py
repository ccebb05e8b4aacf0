"""Security groups and their rules (Neutron's ``securitygroups_db``), with each project's ``default`` group.

* Every project has one ``default`` group, made the first time the project
  lists groups or creates a port (as Neutron does), with Neutron's rules:
  egress anywhere (IPv4 and IPv6) and ingress from members of the group
  itself. A table keyed by project makes two concurrent first requests
  produce one group.
* A new group gets the two egress rules; it cannot be named ``default``
  (409), the default group cannot be deleted (409), nor a group ports
  still use (409 SecurityGroupInUse).
* Rules are validated as Neutron's: direction, ethertype, protocol by name
  or number, port ranges only for TCP/UDP/SCTP (ICMP type/code otherwise),
  ``remote_ip_prefix`` and ``remote_group_id`` exclusive, a prefix of the
  rule's ethertype; an identical rule is 409 SecurityGroupRuleExists.
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.core.db import Database
from kumo.network.common import (
    GROUP_COLUMNS,
    RULE_COLUMNS,
    Caller,
    Filters,
    drop_tags,
    find_owned,
    narrowed,
    owned_only,
    standard_view,
    tags_of,
    touch,
)
from kumo.network.errors import Conflict, Invalid, InUse, NotFound
from kumo.network.models import DefaultSecurityGroup, PortSecurityGroup, SecurityGroup, SecurityGroupRule
from kumo.network.quotas import QuotaService

PROTOCOLS = {"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "icmp": 1, "icmpv6": 58, "igmp": 2,
             "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
             "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17,
             "udplite": 136, "vrrp": 112}
PORT_PROTOCOLS = {"tcp", "udp", "sctp", "dccp", "udplite", "6", "17", "132", "33", "136"}
ICMP_PROTOCOLS = {"icmp", "icmpv6", "ipv6-icmp", "1", "58"}
IPV6_ONLY = {"ipv6-icmp", "icmpv6", "58", "ipv6-encap", "ipv6-frag", "ipv6-nonxt", "ipv6-opts", "ipv6-route"}


class SecurityGroupService:
    def __init__(self, db: Database, quotas: QuotaService) -> None:
        self.db = db
        self.quotas = quotas

    # -- the default group

    async def ensure_default(self, project_id: str) -> str:
        """The id of the project's ``default`` group, made (with its rules) if it does not exist yet.

        Its own transaction, before the caller's: when two requests make it at
        once, the loser's INSERT fails on the project's primary key and a new
        transaction (a fresh snapshot on MariaDB) reads the winner's group.
        """
        for _attempt in range(3):
            try:
                async with self.db.session() as s:
                    existing = await s.scalar(select(DefaultSecurityGroup.security_group_id).where(
                        DefaultSecurityGroup.project_id == project_id))
                    if existing:
                        return existing
                    group = SecurityGroup(id=str(uuid.uuid4()), project_id=project_id, name="default",
                                          description="Default security group")
                    s.add(group)
                    await s.flush()
                    s.add(DefaultSecurityGroup(project_id=project_id, security_group_id=group.id))
                    await s.flush()
                    for ethertype in ("IPv4", "IPv6"):
                        s.add(self._rule(group, "egress", ethertype))
                        s.add(self._rule(group, "ingress", ethertype, remote_group_id=group.id))
                    return group.id
            except IntegrityError:
                continue  # made meanwhile by another request: read it in a new transaction
        raise Conflict("Default security group already exists.", "SecurityGroupDefaultAlreadyExists")

    @staticmethod
    def _rule(group: SecurityGroup, direction: str, ethertype: str, **values: Any) -> SecurityGroupRule:
        return SecurityGroupRule(id=str(uuid.uuid4()), project_id=group.project_id, security_group_id=group.id,
                                 direction=direction, ethertype=ethertype, **values)

    # -- groups

    async def visible(self, s: AsyncSession, caller: Caller, group_id: str) -> SecurityGroup:
        return await find_owned(s, SecurityGroup, caller, group_id, "SecurityGroup")

    async def list(self, caller: Caller, filters: Filters | None = None) -> list[dict[str, Any]]:
        if caller.project_id:
            await self.ensure_default(caller.project_id)
        async with self.db.session() as s:
            stmt = narrowed(owned_only(select(SecurityGroup), SecurityGroup, caller), SecurityGroup, filters,
                            GROUP_COLUMNS)
            rows = list(await s.scalars(stmt))
            return await self._views(s, rows)

    async def _views(self, s: AsyncSession, rows: list[SecurityGroup]) -> list[dict[str, Any]]:
        ids = [r.id for r in rows]
        rules: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        for start in range(0, len(ids), 500):
            for rule in await s.scalars(select(SecurityGroupRule).where(
                    SecurityGroupRule.security_group_id.in_(ids[start:start + 500]))
                    .order_by(SecurityGroupRule.created_at, SecurityGroupRule.id)):
                rules[rule.security_group_id].append(rule_view(rule, []))
        tags = await tags_of(s, "security-groups", ids)
        defaults = set(await s.scalars(select(DefaultSecurityGroup.security_group_id).where(
            DefaultSecurityGroup.security_group_id.in_(ids)))) if ids else set()
        return [group_view(r, rules[r.id], tags[r.id], r.id in defaults) for r in rows]

    async def get(self, caller: Caller, group_id: str) -> dict[str, Any]:
        async with self.db.session() as s:
            return (await self._views(s, [await self.visible(s, caller, group_id)]))[0]

    async def create(self, caller: Caller, values: dict[str, Any]) -> dict[str, Any]:
        project = values.get("project_id") or values.get("tenant_id") or caller.project_id
        if str(values.get("name", "")).lower() == "default":
            raise Conflict("Default security group already exists.", "SecurityGroupDefaultAlreadyExists")
        await self.ensure_default(project)
        async with self.db.session() as s:
            await self.quotas.check(s, project, "security_group")
            group = SecurityGroup(id=str(uuid.uuid4()), project_id=project, name=values.get("name", ""),
                                  description=values.get("description", ""), stateful=values.get("stateful", True))
            s.add(group)
            await s.flush()
            for ethertype in ("IPv4", "IPv6"):
                s.add(self._rule(group, "egress", ethertype))
            await s.flush()
            return (await self._views(s, [group]))[0]

    async def update(self, caller: Caller, group_id: str, values: dict[str, Any]) -> dict[str, Any]:
        async with self.db.session() as s:
            group = await self.visible(s, caller, group_id)
            is_default = await s.get(DefaultSecurityGroup, group.project_id)
            new_name = values.get("name")
            if new_name not in (None, group.name):
                if is_default is not None and is_default.security_group_id == group.id:
                    raise Conflict("Updating default security group not allowed.", "SecurityGroupCannotUpdateDefault")
                if str(new_name).lower() == "default":
                    raise Conflict("Default security group already exists.", "SecurityGroupDefaultAlreadyExists")
            for key in ("name", "description", "stateful"):
                if key in values:
                    setattr(group, key, values[key])
            touch(group)
            await s.flush()
            return (await self._views(s, [group]))[0]

    async def delete(self, caller: Caller, group_id: str) -> None:
        async with self.db.session() as s:
            group = await self.visible(s, caller, group_id)
            default = await s.get(DefaultSecurityGroup, group.project_id)
            if default is not None and default.security_group_id == group.id and not caller.is_admin:
                raise Conflict("Insufficient rights for removing default security group.",
                               "SecurityGroupCannotRemoveDefault")
            used = await s.scalar(select(func.count()).select_from(PortSecurityGroup).where(
                PortSecurityGroup.security_group_id == group_id))
            if used:
                raise InUse(f"Security Group {group_id} in use.", "SecurityGroupInUse")
            await drop_tags(s, "security-groups", group_id)
            await s.delete(group)

    # -- rules

    async def list_rules(self, caller: Caller, filters: Filters | None = None) -> list[dict[str, Any]]:
        if caller.project_id:
            await self.ensure_default(caller.project_id)
        async with self.db.session() as s:
            stmt = narrowed(select(SecurityGroupRule), SecurityGroupRule, filters, RULE_COLUMNS)
            if not caller.is_admin:
                owned = select(SecurityGroup.id).where(SecurityGroup.project_id == caller.project_id)
                stmt = stmt.where(SecurityGroupRule.security_group_id.in_(owned))
            rows = list(await s.scalars(stmt))
            tags = await tags_of(s, "security-group-rules", [r.id for r in rows])
        return [rule_view(r, tags[r.id]) for r in rows]

    async def get_rule(self, caller: Caller, rule_id: str) -> dict[str, Any]:
        async with self.db.session() as s:
            rule = await self._visible_rule(s, caller, rule_id)
            return rule_view(rule, (await tags_of(s, "security-group-rules", [rule.id]))[rule.id])

    async def _visible_rule(self, s: AsyncSession, caller: Caller, rule_id: str) -> SecurityGroupRule:
        rule = await s.get(SecurityGroupRule, rule_id)
        group = await s.get(SecurityGroup, rule.security_group_id) if rule is not None else None
        if rule is None or group is None or not caller.owns(group.project_id):
            raise NotFound("SecurityGroupRule", rule_id)
        return rule

    async def create_rule(self, caller: Caller, values: dict[str, Any]) -> dict[str, Any]:
        async with self.db.session() as s:
            group = await s.get(SecurityGroup, values["security_group_id"])
            if group is None or not caller.owns(group.project_id):
                raise NotFound("SecurityGroup", values["security_group_id"])
            rule = self._rule(group, values["direction"], ethertype_of(values.get("ethertype")),
                              **normalized_rule(values), description=values.get("description", ""))
            if rule.remote_group_id and await s.get(SecurityGroup, rule.remote_group_id) is None:
                raise NotFound("SecurityGroup", rule.remote_group_id)
            await self.quotas.check(s, group.project_id, "security_group_rule")
            for other in await s.scalars(select(SecurityGroupRule).where(
                    SecurityGroupRule.security_group_id == group.id)):
                if _same(other, rule):
                    raise Conflict(f"Security group rule already exists. Rule id is {other.id}.",
                                   "SecurityGroupRuleExists")
            s.add(rule)
            await s.flush()
            return rule_view(rule, [])

    async def delete_rule(self, caller: Caller, rule_id: str) -> None:
        async with self.db.session() as s:
            rule = await self._visible_rule(s, caller, rule_id)
            await drop_tags(s, "security-group-rules", rule_id)
            await s.delete(rule)


def normalized_rule(values: dict[str, Any]) -> dict[str, Any]:
    """Protocol, ports and remote of a rule, checked and normalised as Neutron's ``_validate_*`` do."""
    ethertype = ethertype_of(values.get("ethertype"))
    protocol = _protocol(values.get("protocol"), ethertype)
    low, high = values.get("port_range_min"), values.get("port_range_max")
    if (low is not None or high is not None) and protocol is None:
        raise Invalid("Must also specify protocol if port range is given.", "SecurityGroupProtocolRequiredWithPorts")
    if protocol in PORT_PROTOCOLS:
        for value in (low, high):
            if value is not None and not 0 < value <= 65535:
                raise Invalid(f"Invalid value for port {value}", "SecurityGroupInvalidPortValue")
        if (low is None) != (high is None) or (low is not None and high is not None and low > high):
            raise Invalid("For TCP/UDP protocols, port_range_min must be <= port_range_max",
                          "SecurityGroupInvalidPortRange")
        if (low, high) == (1, 65535):
            low = high = None
    elif protocol in ICMP_PROTOCOLS:
        for name, value in (("type", low), ("code", high)):
            if value is not None and not 0 <= value <= 255:
                field = "port_range_min" if name == "type" else "port_range_max"
                raise Invalid(f"Invalid value for ICMP {name} ({field}) {value}. It must be 0 to 255.",
                              "SecurityGroupInvalidIcmpValue")
        if high is not None and low is None:
            raise Invalid(f"ICMP code (port-range-max) {high} is provided but ICMP type (port-range-min) is missing.",
                          "SecurityGroupMissingIcmpType")
    elif low is not None or high is not None:
        raise Invalid(f"Ports cannot be specified for protocol {protocol}. Ports are only supported for DCCP, SCTP, "
                      "TCP, UDP, UDPLITE.", "SecurityGroupInvalidProtocolForPort")
    prefix, remote_group = values.get("remote_ip_prefix"), values.get("remote_group_id")
    if prefix is not None and remote_group is not None:
        raise Invalid("Only one of remote_ip_prefix or remote_group_id or remote_address_group_id may be provided.",
                      "SecurityGroupRemoteGroupAndRemoteIpPrefix")
    if prefix is not None:
        try:
            net = ipaddress.ip_network(prefix, strict=False)
        except ValueError:
            raise Invalid(f"Invalid CIDR {prefix} given as IP prefix.", "InvalidCIDR") from None
        if f"IPv{net.version}" != ethertype:
            raise Invalid(f"Conflicting value ethertype {ethertype} for CIDR {prefix}",
                          "SecurityGroupRuleParameterConflict")
        prefix = str(net)
    return {"protocol": protocol, "port_range_min": low, "port_range_max": high, "remote_ip_prefix": prefix,
            "remote_group_id": remote_group}


def ethertype_of(raw: Any) -> str:
    """``IPv4``/``IPv6`` whatever the case given; Neutron's SecurityGroupRuleInvalidEtherType otherwise."""
    if raw is None:
        return "IPv4"
    for name in ("IPv4", "IPv6"):
        if str(raw).lower() == name.lower():
            return name
    raise Invalid(f"Security group rule for ethertype '{raw}' not supported. Allowed values are ['IPv4', 'IPv6'].",
                  "SecurityGroupRuleInvalidEtherType")


def _protocol(raw: Any, ethertype: str) -> str | None:
    if raw is None or str(raw).lower() == "any":
        return None
    protocol = str(raw).lower()
    if protocol not in PROTOCOLS and not (protocol.isdigit() and 0 <= int(protocol) <= 255):
        names = ", ".join(repr(p) for p in ("any", *sorted(PROTOCOLS)))
        raise Invalid(f"Security group rule protocol {raw} not supported. Only protocol values (None, {names}) and "
                      "integer representations [0 to 255] are supported.", "SecurityGroupRuleInvalidProtocol")
    if ethertype == "IPv6":
        protocol = {"icmp": "ipv6-icmp", "icmpv6": "ipv6-icmp", "1": "58"}.get(protocol, protocol)
    elif protocol in IPV6_ONLY:
        raise Invalid(f"Invalid ethertype IPv4 for protocol {protocol}.", "SecurityGroupEthertypeConflictWithProtocol")
    return protocol


def _same(a: SecurityGroupRule, b: SecurityGroupRule) -> bool:
    """Neutron's duplicate test: any-address prefixes equal no prefix, protocol names equal their numbers."""
    keys = ("direction", "ethertype", "port_range_min", "port_range_max", "remote_group_id")
    if not all(getattr(a, k) == getattr(b, k) for k in keys):
        return False
    return _proto_number(a.protocol) == _proto_number(b.protocol) and _prefix(a) == _prefix(b)


def _proto_number(protocol: str | None) -> str | None:
    if protocol is None:
        return None
    return str(PROTOCOLS.get(protocol, protocol))


def _prefix(rule: SecurityGroupRule) -> str | None:
    return None if rule.remote_ip_prefix in ("0.0.0.0/0", "::/0") else rule.remote_ip_prefix


def rule_view(rule: SecurityGroupRule, tags: list[str]) -> dict[str, Any]:
    return {"id": rule.id, "security_group_id": rule.security_group_id, "direction": rule.direction,
            "ethertype": rule.ethertype, "protocol": rule.protocol, "port_range_min": rule.port_range_min,
            "port_range_max": rule.port_range_max, "remote_ip_prefix": rule.remote_ip_prefix,
            "normalized_cidr": rule.remote_ip_prefix, "remote_group_id": rule.remote_group_id,
            "remote_address_group_id": None, "belongs_to_default_sg": None, **standard_view(rule, tags)}


def group_view(group: SecurityGroup, rules: list[dict[str, Any]], tags: list[str], is_default: bool
               ) -> dict[str, Any]:
    for rule in rules:
        rule["belongs_to_default_sg"] = is_default
    return {"id": group.id, "name": group.name, "stateful": group.stateful, "shared": False,
            "security_group_rules": rules, **standard_view(group, tags)}
