"""Nova's security group proxy: ``os-security-groups``, ``os-security-group-rules``, a server's groups, add/remove.

Every call goes through the compute API to the network API with the
caller's token, so what is checked here is both Nova's wire format and that
the network service's view (ports' ``security_groups``, visibility between
projects) is what the proxy shows and changes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from computetest import Caller, ComputeEnv, fault
from test_servers_support import boot, make_image

NET = "/network/v2.0"
OLD = "2.1"  # the proxy exists below 2.36
MISSING = "00000000-0000-4000-8000-000000000000"


async def neutron(env: ComputeEnv, who: Caller, method: str, path: str, expect: int = 200, **body: Any) -> Any:
    r = await env.client.request(method, f"{NET}{path}", headers=who.headers, json=body or None)
    assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
    return r.json() if r.content else None


async def server_on_network(env: ComputeEnv, who: Caller, cidr: str = "10.20.0.0/24") -> str:
    """An ACTIVE server with one port on a fresh network of ``who``'s project."""
    image = await make_image(env, who)
    net = (await neutron(env, who, "POST", "/networks", 201, network={"name": "sgnet"}))["network"]
    await neutron(env, who, "POST", "/subnets", 201,
                  subnet={"network_id": net["id"], "cidr": cidr, "ip_version": 4})
    uuid = str((await boot(env, who, image, version="2.37", networks=[{"uuid": net["id"]}]))["server"]["id"])
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        status = (await env.call(who, "GET", f"/servers/{uuid}")).json()["server"]["status"]
        if status in ("ACTIVE", "ERROR") or asyncio.get_running_loop().time() > deadline:
            assert status == "ACTIVE"
            return uuid
        await asyncio.sleep(0.02)


async def port_groups(env: ComputeEnv, who: Caller, server_id: str) -> list[str]:
    [port] = (await neutron(env, who, "GET", f"/ports?device_id={server_id}"))["ports"]
    return sorted(port["security_groups"])  # Neutron keeps a set: no order


async def create_group(env: ComputeEnv, who: Caller, name: str, description: str = "d") -> dict[str, Any]:
    r = await env.call(who, "POST", "/os-security-groups", version=OLD,
                       json={"security_group": {"name": name, "description": description}})
    return r.json()["security_group"]  # type: ignore[no-any-return]


async def create_rule(env: ComputeEnv, who: Caller, expect: int = 200, **fields: Any) -> Any:
    r = await env.call(who, "POST", "/os-security-group-rules", version=OLD, expect=expect,
                       json={"security_group_rule": fields})
    return r


async def test_group_crud_through_the_proxy_in_novas_format(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    web = await create_group(env, alice, "web", "web servers")
    assert web == {"id": web["id"], "description": "web servers", "name": "web", "tenant_id": alice.project_id,
                   "rules": []}  # Neutron's egress rules are not Nova's
    assert (await neutron(env, alice, "GET", f"/security-groups/{web['id']}"))["security_group"]["name"] == "web"

    listed = (await env.call(alice, "GET", "/os-security-groups", version=OLD)).json()["security_groups"]
    assert [g["name"] for g in listed] == ["default", "web"]  # sorted by (tenant_id, name)
    [default] = [g for g in listed if g["name"] == "default"]
    # The default group's ingress rules are "from members of the group itself".
    assert {(r["ip_protocol"], r["from_port"], r["to_port"]) for r in default["rules"]} == {(None, None, None)}
    assert all(r["group"] == {"name": "default", "tenant_id": alice.project_id} and r["ip_range"] == {}
               for r in default["rules"])
    assert len(default["rules"]) == 2  # IPv4 and IPv6
    limited = (await env.call(alice, "GET", "/os-security-groups?limit=1&offset=1", version=OLD)).json()
    assert len(limited["security_groups"]) == 1

    shown = (await env.call(alice, "GET", f"/os-security-groups/{web['id']}", version=OLD)).json()
    assert shown == {"security_group": web}
    r = await env.call(alice, "PUT", f"/os-security-groups/{web['id']}", version=OLD,
                       json={"security_group": {"name": "www", "description": "", "extra": 1}})
    assert r.json()["security_group"]["name"] == "www" and r.json()["security_group"]["description"] == ""
    r = await env.call(alice, "DELETE", f"/os-security-groups/{web['id']}", version=OLD, expect=202)
    assert r.content == b""
    r = await env.call(alice, "GET", f"/os-security-groups/{web['id']}", version=OLD, expect=404)
    assert fault(r, "itemNotFound", 404) == f"Security group {web['id']} does not exist"
    r = await env.call(alice, "GET", "/os-security-groups/not-a-uuid", version=OLD, expect=400)
    assert fault(r, "badRequest", 400) == "Security group id should be uuid"


async def test_the_proxy_is_gone_from_2_36(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    group = await create_group(env, alice, "g")
    for method, path, body in [
            ("GET", "/os-security-groups", None), ("POST", "/os-security-groups", {"security_group": {}}),
            ("GET", f"/os-security-groups/{group['id']}", None),
            ("PUT", f"/os-security-groups/{group['id']}", {"security_group": {}}),
            ("DELETE", f"/os-security-groups/{group['id']}", None),
            ("POST", "/os-security-group-rules", {"security_group_rule": {}}),
            ("DELETE", f"/os-security-group-rules/{MISSING}", None)]:
        r = await env.call(alice, method, path, version="2.36", json=body, expect=404)
        assert fault(r, "itemNotFound", 404) == "The resource could not be found."
    await env.call(alice, "GET", "/os-security-groups", version="2.35")


async def test_group_bodies_are_validated_as_nova_does(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    r = await env.call(alice, "POST", "/os-security-groups", version=OLD, expect=400,
                       json={"security_group": {"name": "x"}})
    assert fault(r, "badRequest", 400) == "'description' is a required property"
    r = await env.call(alice, "POST", "/os-security-groups", version=OLD, expect=400,
                       json={"security_group": {"name": "x" * 256, "description": ""}})
    assert "is too long" in fault(r, "badRequest", 400)
    r = await env.call(alice, "POST", "/os-security-groups", version=OLD, expect=400,
                       json={"security_group": {"name": 5, "description": ""}})
    assert fault(r, "badRequest", 400) == ("Invalid input for field/attribute name. Value: 5. "
                                           "5 is not of type 'string'")
    # Neutron refuses a second "default": Nova's SecurityGroupLimitExceeded, a 403 with Neutron's message.
    r = await env.call(alice, "POST", "/os-security-groups", version=OLD, expect=403,
                       json={"security_group": {"name": "default", "description": ""}})
    assert fault(r, "forbidden", 403) == "Default security group already exists."


async def test_rules_with_a_cidr_and_from_a_group(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    web = await create_group(env, alice, "web")
    db = await create_group(env, alice, "db")
    ssh = (await create_rule(env, alice, parent_group_id=web["id"], ip_protocol="tcp", from_port=22, to_port="22",
                             cidr="10.0.0.0/8")).json()["security_group_rule"]
    assert ssh == {"id": ssh["id"], "parent_group_id": web["id"], "ip_protocol": "tcp", "from_port": 22,
                   "to_port": 22, "group": {}, "ip_range": {"cidr": "10.0.0.0/8"}}
    ping = (await create_rule(env, alice, parent_group_id=web["id"], ip_protocol="icmp", from_port=-1, to_port=-1,
                              cidr="::/0")).json()["security_group_rule"]
    assert (ping["from_port"], ping["to_port"], ping["ip_range"]) == (-1, -1, {"cidr": "::/0"})
    from_web = (await create_rule(env, alice, parent_group_id=db["id"], group_id=web["id"],
                                  ip_protocol="tcp")).json()["security_group_rule"]
    assert from_web["group"] == {"name": "web", "tenant_id": alice.project_id} and from_web["ip_range"] == {}
    assert (from_web["from_port"], from_web["to_port"]) == (1, 65535)  # a source group opens the whole range

    # In the network API: ingress rules with Neutron's fields (a -1 ICMP range is no range).
    rules = (await neutron(env, alice, "GET", f"/security-group-rules?security_group_id={web['id']}"
                                              "&direction=ingress"))["security_group_rules"]
    by_id = {r["id"]: r for r in rules}
    assert (by_id[ssh["id"]]["port_range_min"], by_id[ssh["id"]]["port_range_max"]) == (22, 22)
    assert by_id[ping["id"]]["ethertype"] == "IPv6" and by_id[ping["id"]]["port_range_min"] is None
    neutron_from_web = (await neutron(env, alice, "GET", f"/security-group-rules/{from_web['id']}"))
    assert neutron_from_web["security_group_rule"]["remote_group_id"] == web["id"]

    shown = (await env.call(alice, "GET", f"/os-security-groups/{db['id']}", version=OLD)).json()
    assert shown["security_group"]["rules"] == [from_web]
    r = await create_rule(env, alice, 400, parent_group_id=web["id"], ip_protocol="tcp", from_port=22, to_port=22,
                          cidr="10.0.0.0/8")
    assert fault(r, "badRequest", 400) == f"This rule already exists in group {web['id']}"

    await env.call(alice, "DELETE", f"/os-security-group-rules/{ssh['id']}", version=OLD, expect=202)
    r = await env.call(alice, "DELETE", f"/os-security-group-rules/{ssh['id']}", version=OLD, expect=404)
    assert fault(r, "itemNotFound", 404) == f"Security group rule {ssh['id']} does not exist"
    shown = (await env.call(alice, "GET", f"/os-security-groups/{web['id']}", version=OLD)).json()
    assert [x["id"] for x in shown["security_group"]["rules"]] == [ping["id"]]


async def test_bad_rules_get_novas_messages(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    web = await create_group(env, alice, "web")
    base = {"parent_group_id": web["id"], "cidr": "10.0.0.0/24"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"ip_protocol": "tcpx", "from_port": 1, "to_port": 2}, "Invalid IP protocol tcpx."),
        ({"ip_protocol": "tcp", "from_port": 80, "to_port": 22},
         "Invalid port range 80:22. Former value cannot be greater than the later"),
        ({"ip_protocol": "udp", "from_port": 0, "to_port": 70000},
         "Invalid port range 0:70000. Valid UDP ports should be between 1-65535"),
        ({"ip_protocol": "icmp", "from_port": -2, "to_port": 0},
         "Invalid port range -2:0. For ICMP, the type:code must be valid"),
        ({"ip_protocol": "tcp", "from_port": "a", "to_port": 2},
         "Invalid input received: To and From ports must be integers"),
        ({"ip_protocol": "icmp", "from_port": "a", "to_port": 2},
         "Invalid input received: Type and Code must be integers for ICMP protocol type"),
        ({"ip_protocol": "tcp", "from_port": 1, "to_port": 2, "cidr": "10.0.0.300/24"},
         "10.0.0.300/24 is not a valid IP network."),
        ({"ip_protocol": "tcp", "from_port": 1, "to_port": 2, "cidr": "10.0.0.0"},
         "10.0.0.0 is not a valid IP network."),
        ({"ip_protocol": "tcp", "from_port": 1, "to_port": 2, "cidr": "10.1.0.0/0"},
         "Bad prefix for network in cidr 10.1.0.0/0"),
        ({"ip_protocol": "tcp"}, "Not enough parameters to build a valid rule."),
    ]
    for fields, message in cases:
        r = await create_rule(env, alice, 400, **{**base, **fields})
        assert fault(r, "badRequest", 400) == message, fields
    r = await create_rule(env, alice, 400, parent_group_id="nope")
    assert fault(r, "badRequest", 400) == ("Invalid input for field/attribute parent_group_id. Value: nope. "
                                           "'nope' is not a 'uuid'")
    r = await create_rule(env, alice, 400, ip_protocol="tcp")
    assert fault(r, "badRequest", 400) == "'parent_group_id' is a required property"
    r = await create_rule(env, alice, 404, parent_group_id=MISSING, ip_protocol="tcp", from_port=1, to_port=2)
    assert fault(r, "itemNotFound", 404) == f"Security group {MISSING} does not exist"
    r = await create_rule(env, alice, 404, parent_group_id=web["id"], group_id=MISSING, ip_protocol="tcp")
    assert fault(r, "itemNotFound", 404) == f"Security group {MISSING} does not exist"


async def test_a_servers_groups_and_adding_and_removing_one(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    server = await server_on_network(env, alice)
    [default_id] = await port_groups(env, alice, server)
    for version in (OLD, "2.90"):  # the server's groups and the actions exist at every version
        r = await env.call(alice, "GET", f"/servers/{server}/os-security-groups", version=version)
        assert [(g["id"], g["name"]) for g in r.json()["security_groups"]] == [(default_id, "default")]

    web = await create_group(env, alice, "web")
    await create_rule(env, alice, parent_group_id=web["id"], ip_protocol="tcp", from_port=80, to_port=80)
    r = await env.call(alice, "POST", f"/servers/{server}/action", version="2.90", expect=202,
                       json={"addSecurityGroup": {"name": "web"}})
    assert r.content == b""
    assert await port_groups(env, alice, server) == sorted([default_id, web["id"]])
    listed = (await env.call(alice, "GET", f"/servers/{server}/os-security-groups")).json()["security_groups"]
    assert [g["name"] for g in listed] == ["default", "web"]
    shown = (await env.call(alice, "GET", f"/servers/{server}")).json()["server"]
    assert shown["security_groups"] == [{"name": "default"}, {"name": "web"}]
    [web_rule] = [g for g in listed if g["name"] == "web"][0]["rules"]
    assert web_rule["ip_range"] == {"cidr": "0.0.0.0/0"} and web_rule["from_port"] == 80

    await env.call(alice, "POST", f"/servers/{server}/action", expect=202,
                   json={"removeSecurityGroup": {"name": default_id}})  # by id works too
    assert await port_groups(env, alice, server) == [web["id"]]
    shown = (await env.call(alice, "GET", f"/servers/{server}")).json()["server"]
    assert shown["security_groups"] == [{"name": "web"}]
    r = await env.call(alice, "POST", f"/servers/{server}/action", expect=404,
                       json={"removeSecurityGroup": {"name": "default"}})
    assert fault(r, "itemNotFound", 404) == f"Security group default not associated with the instance {server}"
    r = await env.call(alice, "POST", f"/servers/{server}/action", expect=404,
                       json={"addSecurityGroup": {"name": "nope"}})
    assert fault(r, "itemNotFound", 404) == f"Security group nope is not found for project {alice.project_id}"
    # A group in use cannot be deleted through the proxy either: Nova's 400 with Neutron's message.
    r = await env.call(alice, "DELETE", f"/os-security-groups/{web['id']}", version=OLD, expect=400)
    assert fault(r, "badRequest", 400) == f"Security Group {web['id']} in use."


async def test_action_bodies_and_servers_without_ports(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    image = await make_image(env, alice)
    bare = str((await boot(env, alice, image, version="2.37", networks="none"))["server"]["id"])
    await create_group(env, alice, "web")
    for body, message in [
            ({"addSecurityGroup": {}}, "'name' is a required property"),
            ({"addSecurityGroup": {"name": ""}}, "Invalid input for field/attribute name. Value: . '' is too short"),
            ({"removeSecurityGroup": {"name": "web", "x": 1}}, "Additional properties are not allowed ('x' was "
                                                              "unexpected)"),
            ({"addSecurityGroup": {"name": "  "}}, "Security group name cannot be empty")]:
        r = await env.call(alice, "POST", f"/servers/{bare}/action", json=body, expect=400)
        assert fault(r, "badRequest", 400) == message, body
    r = await env.call(alice, "POST", f"/servers/{bare}/action", json={"addSecurityGroup": {"name": "web"}},
                       expect=404)
    assert fault(r, "itemNotFound", 404) == f"instance_id {bare} could not be found as device id on any ports"
    assert (await env.call(alice, "GET", f"/servers/{bare}/os-security-groups")).json() == {"security_groups": []}
    r = await env.call(alice, "POST", f"/servers/{MISSING}/action", json={"addSecurityGroup": {"name": "web"}},
                       expect=404)
    assert fault(r, "itemNotFound", 404) == f"Instance {MISSING} could not be found."


async def test_another_project_can_neither_see_nor_use_the_groups(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    bob = await env.user("bob", project="beta")
    secret = await create_group(env, alice, "secret")
    server = await server_on_network(env, alice)

    names = [g["name"] for g in (await env.call(bob, "GET", "/os-security-groups", version=OLD)).json()[
        "security_groups"]]
    assert names == ["default"] and "secret" not in names
    r = await env.call(bob, "GET", f"/os-security-groups/{secret['id']}", version=OLD, expect=404)
    assert fault(r, "itemNotFound", 404) == f"Security group {secret['id']} does not exist"
    await env.call(bob, "PUT", f"/os-security-groups/{secret['id']}", version=OLD, expect=404,
                   json={"security_group": {"name": "mine", "description": ""}})
    await env.call(bob, "DELETE", f"/os-security-groups/{secret['id']}", version=OLD, expect=404)
    await create_rule(env, bob, 404, parent_group_id=secret["id"], ip_protocol="tcp", from_port=1, to_port=2)
    await env.call(bob, "GET", f"/servers/{server}/os-security-groups", expect=404)
    await env.call(bob, "POST", f"/servers/{server}/action", json={"addSecurityGroup": {"name": "default"}},
                   expect=404)

    # Bob's own server cannot take alice's group, by name or by id.
    bobs = await server_on_network(env, bob, "10.21.0.0/24")
    for name in ("secret", secret["id"]):
        r = await env.call(bob, "POST", f"/servers/{bobs}/action", json={"addSecurityGroup": {"name": name}},
                           expect=404)
        assert fault(r, "itemNotFound", 404) == f"Security group {name} is not found for project {bob.project_id}"
    assert len(await port_groups(env, bob, bobs)) == 1

    # An admin sees every project's groups with all_tenants, only its own without.
    admin = await env.admin()
    own = (await env.call(admin, "GET", "/os-security-groups", version=OLD)).json()["security_groups"]
    assert {g["tenant_id"] for g in own} == {admin.project_id}
    every = (await env.call(admin, "GET", "/os-security-groups?all_tenants=1", version=OLD)).json()
    assert {alice.project_id, bob.project_id} <= {g["tenant_id"] for g in every["security_groups"]}
