"""Servers on networks: ports made, bound and plugged by the build, shown as addresses, released on delete.

The in-process cloud runs the real compute agent (fake virt driver) and the
real network agent with its fake dataplane, so the whole path — the API's
checks with the caller's token, the agent's ports made with the service
token, the network agent's plug, the info cache, the floating IP refresh —
is exercised; only the kernel is left out (tests/integration/network).
"""

from __future__ import annotations

import asyncio
from typing import Any

from computetest import Caller, ComputeEnv, fault
from test_servers_support import boot, make_image

NET = "/network/v2.0"


async def neutron(env: ComputeEnv, who: Caller, method: str, path: str, expect: int = 200, **body: Any) -> Any:
    r = await env.client.request(method, f"{NET}{path}", headers=who.headers, json=body or None)
    assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
    return r.json() if r.content else None


async def network(env: ComputeEnv, who: Caller, name: str, cidr: str, **fields: Any) -> dict[str, Any]:
    net = (await neutron(env, who, "POST", "/networks", 201, network={"name": name, **fields}))["network"]
    await neutron(env, who, "POST", "/subnets", 201,
                  subnet={"network_id": net["id"], "cidr": cidr, "ip_version": 4, "name": f"{name}-subnet"})
    return net  # type: ignore[no-any-return]


async def wait_status(env: ComputeEnv, who: Caller, uuid: str, want: str = "ACTIVE",
                      timeout: float = 10.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        server = (await env.call(who, "GET", f"/servers/{uuid}")).json()["server"]
        if server["status"] in (want, "ERROR") or asyncio.get_running_loop().time() > deadline:
            assert server["status"] == want, server
            return server  # type: ignore[no-any-return]
        await asyncio.sleep(0.02)


async def wait_gone(env: ComputeEnv, who: Caller, uuid: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (await env.call(who, "GET", f"/servers/{uuid}", expect=None)).status_code != 404:
        assert asyncio.get_running_loop().time() < deadline, "server not deleted"
        await asyncio.sleep(0.02)


async def ports_of(env: ComputeEnv, who: Caller, device_id: str) -> list[dict[str, Any]]:
    return (await neutron(env, who, "GET", f"/ports?device_id={device_id}"))["ports"]  # type: ignore[no-any-return]


async def test_server_on_a_network_gets_a_bound_plugged_port_and_shows_its_address(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    image = await make_image(env, alice)
    net = await network(env, alice, "blue", "10.9.0.0/24")
    created = await boot(env, alice, image, version="2.37", networks=[{"uuid": net["id"]}])
    server = await wait_status(env, alice, created["server"]["id"])
    [port] = await ports_of(env, alice, server["id"])
    assert port["device_owner"] == "compute:nova" and port["project_id"] == alice.project_id
    assert port["status"] == "ACTIVE"
    ip = port["fixed_ips"][0]["ip_address"]
    assert server["addresses"] == {"blue": [{"version": 4, "addr": ip, "OS-EXT-IPS:type": "fixed",
                                             "OS-EXT-IPS-MAC:mac_addr": port["mac_address"]}]}
    admin = await env.admin()
    bound = (await neutron(env, admin, "GET", f"/ports/{port['id']}"))["port"]
    assert bound["binding:host_id"] == "test-host" and bound["binding:vif_type"] == "bridge"
    agent = env.cloud.node.network_host.agent  # type: ignore[union-attr]
    assert agent.plan is not None and [v.port_id for v in agent.plan.vifs] == [port["id"]]
    # The default group of alice's project filters the port.
    [groups] = [f.rules for f in agent.plan.firewall if f.port_id == port["id"]]
    assert {(r.direction, r.ethertype) for r in groups} >= {("egress", "IPv4"), ("ingress", "IPv4")}
    # The addresses are in the server list too, and in network_data.json.
    listed = (await env.call(alice, "GET", "/servers/detail")).json()["servers"]
    assert listed[0]["addresses"] == server["addresses"]

    await env.call(alice, "DELETE", f"/servers/{server['id']}", expect=204)
    await wait_gone(env, alice, server["id"])
    assert await ports_of(env, alice, server["id"]) == []


async def test_auto_picks_the_only_network_and_refuses_to_guess_between_two(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    image = await make_image(env, alice)
    created = await boot(env, alice, image, version="2.37", networks="auto")  # no network: no NIC
    server = await wait_status(env, alice, created["server"]["id"])
    assert server["addresses"] == {}
    net = await network(env, alice, "only", "10.8.0.0/24")
    created = await boot(env, alice, image)  # before 2.37, no networks means auto
    server = await wait_status(env, alice, created["server"]["id"])
    assert list(server["addresses"]) == ["only"]
    assert (await ports_of(env, alice, server["id"]))[0]["network_id"] == net["id"]
    await network(env, alice, "second", "10.7.0.0/24")
    r = await env.call(alice, "POST", "/servers", version="2.37", expect=409, json={"server": {
        "name": "x", "imageRef": image, "flavorRef": "1", "networks": "auto"}})
    assert fault(r, "conflictingRequest", 409) == ("Multiple possible networks found, use a Network ID to be more "
                                                   "specific.")
    created = await boot(env, alice, image, version="2.37", networks="none")
    assert (await wait_status(env, alice, created["server"]["id"]))["addresses"] == {}


async def test_bad_network_requests_are_refused_before_anything_is_made(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    bob = await env.user("bob", project="beta")
    admin = await env.admin()
    image = await make_image(env, alice)
    hidden = await network(env, bob, "bobs", "10.6.0.0/24")
    body = {"name": "x", "imageRef": image, "flavorRef": "1"}
    r = await env.call(alice, "POST", "/servers", version="2.37", expect=400,
                       json={"server": {**body, "networks": [{"uuid": hidden["id"]}]}})
    assert fault(r, "badRequest", 400) == f"Network {hidden['id']} could not be found."
    external = await network(env, admin, "ext", "172.30.0.0/24", **{"router:external": True})
    r = await env.call(alice, "POST", "/servers", version="2.37", expect=403,
                       json={"server": {**body, "networks": [{"uuid": external["id"]}]}})
    assert fault(r, "forbidden", 403) == (f"It is not allowed to create an interface on external network "
                                          f"{external['id']}")
    mine = await network(env, alice, "mine", "10.5.0.0/24")
    port = (await neutron(env, alice, "POST", "/ports", 201, port={"network_id": mine["id"],
                                                                    "device_id": "someone"}))["port"]
    r = await env.call(alice, "POST", "/servers", version="2.37", expect=409,
                       json={"server": {**body, "networks": [{"port": port["id"]}]}})
    assert fault(r, "conflictingRequest", 409) == f"Port {port['id']} is still in use."
    r = await env.call(alice, "POST", "/servers", version="2.37", expect=400,
                       json={"server": {**body, "networks": [{"uuid": mine["id"]}],
                                        "security_groups": [{"name": "nope"}]}})
    assert fault(r, "badRequest", 400) == "Unable to find security_group with name or id 'nope'"
    servers = (await env.call(alice, "GET", "/servers")).json()["servers"]
    assert servers == []


async def test_a_given_port_is_bound_then_released_not_deleted(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    image = await make_image(env, alice)
    net = await network(env, alice, "green", "10.4.0.0/24")
    port = (await neutron(env, alice, "POST", "/ports", 201, port={"network_id": net["id"], "name": "mine"}))["port"]
    created = await boot(env, alice, image, version="2.37", networks=[{"port": port["id"]}])
    server = await wait_status(env, alice, created["server"]["id"])
    assert server["addresses"]["green"][0]["addr"] == port["fixed_ips"][0]["ip_address"]
    assert (await neutron(env, alice, "GET", f"/ports/{port['id']}"))["port"]["device_id"] == server["id"]
    await env.call(alice, "DELETE", f"/servers/{server['id']}", expect=204)
    await wait_gone(env, alice, server["id"])
    kept = (await neutron(env, alice, "GET", f"/ports/{port['id']}"))["port"]
    assert kept["device_id"] == "" and kept["device_owner"] == ""


async def test_floating_ip_association_reaches_the_server_view(env: ComputeEnv) -> None:
    admin = await env.admin()
    alice = await env.user("alice")
    image = await make_image(env, alice)
    public = await network(env, admin, "public", "172.31.0.0/24", **{"router:external": True})
    net = await network(env, alice, "red", "10.3.0.0/24")
    subnet = (await neutron(env, alice, "GET", f"/subnets?network_id={net['id']}"))["subnets"][0]
    router = (await neutron(env, alice, "POST", "/routers", 201, router={
        "name": "r", "external_gateway_info": {"network_id": public["id"]}}))["router"]
    await neutron(env, alice, "PUT", f"/routers/{router['id']}/add_router_interface", subnet_id=subnet["id"])
    created = await boot(env, alice, image, version="2.37", networks=[{"uuid": net["id"]}])
    server = await wait_status(env, alice, created["server"]["id"])
    [port] = await ports_of(env, alice, server["id"])
    fip = (await neutron(env, alice, "POST", "/floatingips", 201, floatingip={
        "floating_network_id": public["id"], "port_id": port["id"]}))["floatingip"]
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        server = (await env.call(alice, "GET", f"/servers/{server['id']}")).json()["server"]
        kinds = [a["OS-EXT-IPS:type"] for a in server["addresses"]["red"]]
        if kinds == ["fixed", "floating"] or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert server["addresses"]["red"][1]["addr"] == fip["floating_ip_address"]
    agent = env.cloud.node.network_host.agent  # type: ignore[union-attr]
    assert agent.plan is not None
    [plan] = [r for r in agent.plan.routers if r.router_id == router["id"]]
    assert [(f.floating_ip, f.fixed_ip) for f in plan.floating] == [
        (fip["floating_ip_address"], port["fixed_ips"][0]["ip_address"])]
    status = (await neutron(env, alice, "GET", f"/floatingips/{fip['id']}"))["floatingip"]["status"]
    assert status == "ACTIVE"
