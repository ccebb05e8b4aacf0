"""Security groups and rules: the default group, Neutron's validation and duplicates, who sees what."""

from __future__ import annotations

import asyncio

import pytest
from neutrontest import NetEnv, neutron_error


async def rule(net: NetEnv, who, group: str, expect: int = 201, **fields: object):  # type: ignore[no-untyped-def]
    body = {"security_group_rule": {"security_group_id": group, "direction": "ingress", **fields}}
    return await net.call(who, "POST", "/security-group-rules", json=body, expect=expect)


async def test_the_default_group_is_made_once_with_neutrons_rules(net: NetEnv) -> None:
    alice = await net.user("alice")
    lists = await asyncio.gather(*(net.call(alice, "GET", "/security-groups") for _ in range(5)))
    ids = {g["id"] for r in lists for g in r.json()["security_groups"]}
    assert len(ids) == 1  # concurrent first requests: one default group
    [group] = lists[0].json()["security_groups"]
    assert (group["name"], group["description"], group["stateful"]) == ("default", "Default security group", True)
    shapes = sorted((r["direction"], r["ethertype"], r["remote_group_id"]) for r in group["security_group_rules"])
    assert shapes == [("egress", "IPv4", None), ("egress", "IPv6", None),
                      ("ingress", "IPv4", group["id"]), ("ingress", "IPv6", group["id"])]
    assert all(r["protocol"] is None and r["belongs_to_default_sg"] for r in group["security_group_rules"])
    r = await net.call(alice, "DELETE", f"/security-groups/{group['id']}", expect=409)
    assert neutron_error(r, 409, "SecurityGroupCannotRemoveDefault") == \
        "Insufficient rights for removing default security group."
    r = await net.call(alice, "PUT", f"/security-groups/{group['id']}", json={"security_group": {"name": "x"}},
                       expect=409)
    assert neutron_error(r, 409, "SecurityGroupCannotUpdateDefault")
    r = await net.call(alice, "POST", "/security-groups", json={"security_group": {"name": "Default"}}, expect=409)
    assert neutron_error(r, 409, "SecurityGroupDefaultAlreadyExists") == "Default security group already exists."


async def test_new_groups_get_egress_rules_and_stay_in_their_project(net: NetEnv) -> None:
    alice, bob = await net.user("alice"), await net.user("bob", "beta")
    web = (await net.call(alice, "POST", "/security-groups", json={"security_group": {"name": "web"}},
                          expect=201)).json()["security_group"]
    assert sorted((r["direction"], r["ethertype"]) for r in web["security_group_rules"]) == [
        ("egress", "IPv4"), ("egress", "IPv6")]
    r = await net.call(bob, "GET", f"/security-groups/{web['id']}", expect=404)
    assert neutron_error(r, 404, "SecurityGroupNotFound") == f"Security group {web['id']} does not exist"
    assert [g["name"] for g in (await net.call(bob, "GET", "/security-groups")).json()["security_groups"]] == \
        ["default"]
    r = await rule(net, bob, web["id"], expect=404)
    bob_rules = (await net.call(bob, "GET", "/security-group-rules")).json()["security_group_rules"]
    assert {x["security_group_id"] for x in bob_rules} .isdisjoint({web["id"]})


async def test_rules_are_normalised_and_duplicates_refused(net: NetEnv) -> None:
    alice = await net.user("alice")
    group = (await net.call(alice, "POST", "/security-groups", json={"security_group": {"name": "g"}},
                            expect=201)).json()["security_group"]
    ssh = (await rule(net, alice, group["id"], protocol="tcp", port_range_min=22, port_range_max=22,
                      remote_ip_prefix="0.0.0.0/0")).json()["security_group_rule"]
    assert (ssh["ethertype"], ssh["remote_ip_prefix"], ssh["port_range_min"]) == ("IPv4", "0.0.0.0/0", 22)
    r = await rule(net, alice, group["id"], expect=409, protocol="6", port_range_min=22, port_range_max=22)
    assert neutron_error(r, 409, "SecurityGroupRuleExists") == \
        f"Security group rule already exists. Rule id is {ssh['id']}."
    icmp6 = (await rule(net, alice, group["id"], ethertype="ipv6", protocol="icmp")).json()["security_group_rule"]
    assert (icmp6["ethertype"], icmp6["protocol"]) == ("IPv6", "ipv6-icmp")
    host = (await rule(net, alice, group["id"], protocol="udp", port_range_min=1, port_range_max=65535,
                       remote_ip_prefix="10.0.0.1")).json()["security_group_rule"]
    assert (host["remote_ip_prefix"], host["port_range_min"], host["port_range_max"]) == ("10.0.0.1/32", None, None)
    any_proto = (await rule(net, alice, group["id"], protocol="any", remote_ip_prefix="10.1.0.0/16")).json()
    assert any_proto["security_group_rule"]["protocol"] is None
    await net.call(alice, "DELETE", f"/security-group-rules/{ssh['id']}", expect=204)
    await net.call(alice, "GET", f"/security-group-rules/{ssh['id']}", expect=404)


@pytest.mark.parametrize(("fields", "kind", "message"), [
    ({"port_range_min": 22}, "SecurityGroupProtocolRequiredWithPorts",
     "Must also specify protocol if port range is given."),
    ({"protocol": "tcp", "port_range_min": 30, "port_range_max": 20}, "SecurityGroupInvalidPortRange",
     "For TCP/UDP protocols, port_range_min must be <= port_range_max"),
    ({"protocol": "tcp", "port_range_min": 0, "port_range_max": 20}, "SecurityGroupInvalidPortValue",
     "Invalid value for port 0"),
    ({"protocol": "icmp", "port_range_min": 300}, "SecurityGroupInvalidIcmpValue",
     "Invalid value for ICMP type (port_range_min) 300. It must be 0 to 255."),
    ({"protocol": "icmp", "port_range_max": 3}, "SecurityGroupMissingIcmpType",
     "ICMP code (port-range-max) 3 is provided but ICMP type (port-range-min) is missing."),
    ({"protocol": "gre", "port_range_min": 1, "port_range_max": 2}, "SecurityGroupInvalidProtocolForPort",
     "Ports cannot be specified for protocol gre. Ports are only supported for DCCP, SCTP, TCP, UDP, UDPLITE."),
    ({"protocol": "ipv6-icmp"}, "SecurityGroupEthertypeConflictWithProtocol",
     "Invalid ethertype IPv4 for protocol ipv6-icmp."),
    ({"ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"}, "SecurityGroupRuleParameterConflict",
     "Conflicting value ethertype IPv6 for CIDR 10.0.0.0/8"),
    ({"remote_ip_prefix": "nonsense"}, "InvalidCIDR", "Invalid CIDR nonsense given as IP prefix."),
    ({"ethertype": "IPv5"}, "SecurityGroupRuleInvalidEtherType",
     "Security group rule for ethertype 'IPv5' not supported. Allowed values are ['IPv4', 'IPv6']."),
])
async def test_bad_rules(net: NetEnv, fields: dict[str, object], kind: str, message: str) -> None:
    alice = await net.user("alice")
    groups = (await net.call(alice, "GET", "/security-groups")).json()["security_groups"]
    r = await rule(net, alice, groups[0]["id"], expect=400, **fields)
    assert neutron_error(r, 400, kind) == message


async def test_a_bad_protocol_names_the_allowed_ones(net: NetEnv) -> None:
    alice = await net.user("alice")
    group = (await net.call(alice, "GET", "/security-groups")).json()["security_groups"][0]
    r = await rule(net, alice, group["id"], expect=400, protocol="carrier-pigeon")
    message = neutron_error(r, 400, "SecurityGroupRuleInvalidProtocol")
    assert message.startswith("Security group rule protocol carrier-pigeon not supported. Only protocol values (None,")
    r = await rule(net, alice, group["id"], expect=400, remote_group_id=group["id"], remote_ip_prefix="10.0.0.0/8")
    assert neutron_error(r, 400, "SecurityGroupRemoteGroupAndRemoteIpPrefix")
