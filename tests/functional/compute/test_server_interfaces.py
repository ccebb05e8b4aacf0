"""``os-interface``: ports attached to and detached from running servers (Nova's attach_interfaces API).

The in-process cloud runs the real compute agent with the fake virt driver
and the real network agent with its fake dataplane, so the path is whole:
the API's checks with the caller's token, the agent's port made (or bound)
with the service token and plugged by the network agent, the driver's NIC,
``network_info`` and the server's ``addresses``, and the port given back on
detach. Bodies are the ones python-openstackclient and openstacksdk send.
"""

from __future__ import annotations

import asyncio
from typing import Any

from computetest import Caller, ComputeEnv, fault
from test_server_networks import network, neutron, ports_of, wait_status
from test_servers_support import boot, make_image

from kumo.compute.virt.fake import FakeDriver

IFACES = "/servers/{}/os-interface"


def driver(env: ComputeEnv) -> FakeDriver:
    fleet = env.cloud.node.fleet
    assert fleet is not None
    found = fleet.agents[0].driver
    assert isinstance(found, FakeDriver)
    return found


async def server_on(env: ComputeEnv, who: Caller, net: dict[str, Any]) -> dict[str, Any]:
    image = await make_image(env, who)
    created = await boot(env, who, image, version="2.37", networks=[{"uuid": net["id"]}])
    return await wait_status(env, who, created["server"]["id"])


async def wait_addresses(env: ComputeEnv, who: Caller, uuid: str, labels: list[str],
                         timeout: float = 10.0) -> dict[str, Any]:
    """The server once its ``addresses`` name exactly ``labels`` (a detach is a cast: it ends later)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        server = (await env.call(who, "GET", f"/servers/{uuid}")).json()["server"]
        if sorted(server["addresses"]) == sorted(labels) or asyncio.get_running_loop().time() > deadline:
            assert sorted(server["addresses"]) == sorted(labels), server["addresses"]
            return server  # type: ignore[no-any-return]
        await asyncio.sleep(0.02)


async def test_list_and_show_the_interfaces_of_a_server(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    net = await network(env, alice, "blue", "10.20.0.0/24")
    server = await server_on(env, alice, net)
    [port] = await ports_of(env, alice, server["id"])
    listed = (await env.call(alice, "GET", IFACES.format(server["id"]))).json()["interfaceAttachments"]
    expected = {"net_id": net["id"], "port_id": port["id"], "mac_addr": port["mac_address"], "port_state": "ACTIVE",
                "fixed_ips": [{"subnet_id": ip["subnet_id"], "ip_address": ip["ip_address"]}
                              for ip in port["fixed_ips"]]}
    assert listed == [expected]
    shown = (await env.call(alice, "GET", f"{IFACES.format(server['id'])}/{port['id']}")).json()
    assert shown == {"interfaceAttachment": expected}
    shown = (await env.call(alice, "GET", f"{IFACES.format(server['id'])}/{port['id']}", version="2.70")).json()
    assert shown["interfaceAttachment"] == {**expected, "tag": None}
    listed = (await env.call(alice, "GET", IFACES.format(server["id"]), version="2.70")).json()
    assert listed["interfaceAttachments"][0]["tag"] is None

    r = await env.call(alice, "GET", f"{IFACES.format(server['id'])}/{'0' * 8}-0000-0000-0000-{'0' * 12}",
                       expect=404)
    assert fault(r, "itemNotFound", 404) == f"Port id {'0' * 8}-0000-0000-0000-{'0' * 12} could not be found."
    other = (await neutron(env, alice, "POST", "/ports", 201, port={"network_id": net["id"]}))["port"]
    r = await env.call(alice, "GET", f"{IFACES.format(server['id'])}/{other['id']}", expect=404)
    assert fault(r, "itemNotFound", 404) == f"Instance {server['id']} does not have a port with id {other['id']}"

    bob = await env.user("bob", project="beta")
    r = await env.call(bob, "GET", IFACES.format(server["id"]), expect=404)
    assert fault(r, "itemNotFound", 404) == f"Instance {server['id']} could not be found."


async def test_attach_by_network_then_detach_deletes_the_port(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    blue = await network(env, alice, "blue", "10.21.0.0/24")
    green = await network(env, alice, "green", "10.22.0.0/24")
    server = await server_on(env, alice, blue)
    # openstack server add network --tag web (2.49+); openstacksdk sends the same body
    r = await env.call(alice, "POST", IFACES.format(server["id"]), version="2.70",
                       json={"interfaceAttachment": {"net_id": green["id"], "tag": "web"}})
    attached = r.json()["interfaceAttachment"]
    assert attached["net_id"] == green["id"] and attached["tag"] == "web" and attached["port_state"] == "ACTIVE"
    port = (await neutron(env, alice, "GET", f"/ports/{attached['port_id']}"))["port"]
    assert port["device_id"] == server["id"] and port["device_owner"] == "compute:nova"
    assert port["project_id"] == alice.project_id
    admin = await env.admin()
    bound = (await neutron(env, admin, "GET", f"/ports/{port['id']}"))["port"]
    assert bound["binding:host_id"] == "test-host"
    agent = env.cloud.node.network_host.agent  # type: ignore[union-attr]
    assert agent.plan is not None and port["id"] in [v.port_id for v in agent.plan.vifs]
    nics = driver(env).spec_of(server["id"]).nics
    assert [n.port_id for n in nics][1:] == [port["id"]] and nics[1].mac_address == port["mac_address"]
    assert nics[1].tap_name and nics[1].tap_name.startswith("tap")

    shown = await wait_addresses(env, alice, server["id"], ["blue", "green"])
    assert shown["addresses"]["green"][0]["addr"] == port["fixed_ips"][0]["ip_address"]
    listed = (await env.call(alice, "GET", IFACES.format(server["id"]), version="2.70")).json()
    assert {(i["net_id"], i["tag"]) for i in listed["interfaceAttachments"]} == {(blue["id"], None),
                                                                                 (green["id"], "web")}
    actions = (await env.call(alice, "GET", f"/servers/{server['id']}/os-instance-actions")).json()
    assert "attach_interface" in [a["action"] for a in actions["instanceActions"]]

    # openstack server remove network: list, then delete each interface on the network
    await env.call(alice, "DELETE", f"{IFACES.format(server['id'])}/{port['id']}", expect=202)
    await wait_addresses(env, alice, server["id"], ["blue"])
    await neutron(env, alice, "GET", f"/ports/{port['id']}", 404)
    assert [n.port_id for n in driver(env).spec_of(server["id"]).nics] == [nics[0].port_id]
    listed = (await env.call(alice, "GET", IFACES.format(server["id"]))).json()["interfaceAttachments"]
    assert [i["net_id"] for i in listed] == [blue["id"]]


async def test_attach_a_given_port_with_a_fixed_ip_and_detach_unbinds_it(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    blue = await network(env, alice, "blue", "10.23.0.0/24")
    red = await network(env, alice, "red", "10.24.0.0/24")
    server = await server_on(env, alice, blue)
    mine = (await neutron(env, alice, "POST", "/ports", 201, port={"network_id": red["id"], "name": "mine"}))["port"]
    # openstack server add port / openstacksdk create_server_interface(port_id=...)
    r = await env.call(alice, "POST", IFACES.format(server["id"]),
                       json={"interfaceAttachment": {"port_id": mine["id"]}})
    assert r.json()["interfaceAttachment"]["port_id"] == mine["id"]
    assert "tag" not in r.json()["interfaceAttachment"]
    assert (await neutron(env, alice, "GET", f"/ports/{mine['id']}"))["port"]["device_id"] == server["id"]
    await wait_addresses(env, alice, server["id"], ["blue", "red"])

    await env.call(alice, "DELETE", f"{IFACES.format(server['id'])}/{mine['id']}", expect=202)
    await wait_addresses(env, alice, server["id"], ["blue"])
    kept = (await neutron(env, alice, "GET", f"/ports/{mine['id']}"))["port"]
    assert kept["device_id"] == "" and kept["device_owner"] == ""

    # a chosen address on a network (openstack server add fixed ip / sdk fixed_ip=...)
    r = await env.call(alice, "POST", IFACES.format(server["id"]), json={"interfaceAttachment": {
        "net_id": red["id"], "fixed_ips": [{"ip_address": "10.24.0.77"}]}})
    assert r.json()["interfaceAttachment"]["fixed_ips"][0]["ip_address"] == "10.24.0.77"
    # the address is taken now: Nova's FixedIpAlreadyInUse, and nothing is left behind
    before = await ports_of(env, alice, server["id"])
    r = await env.call(alice, "POST", IFACES.format(server["id"]), expect=409, json={"interfaceAttachment": {
        "net_id": red["id"], "fixed_ips": [{"ip_address": "10.24.0.77"}]}})
    assert fault(r, "conflictingRequest", 409) == (f"Fixed IP address 10.24.0.77 is already in use on instance "
                                                   f"{server['id']}.")
    assert len(await ports_of(env, alice, server["id"])) == len(before)


async def test_attach_without_a_network_picks_the_only_one(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    image = await make_image(env, alice)
    created = await boot(env, alice, image, version="2.37", networks="none")
    server = await wait_status(env, alice, created["server"]["id"])
    r = await env.call(alice, "POST", IFACES.format(server["id"]), expect=400, json={"interfaceAttachment": {}})
    assert fault(r, "badRequest", 400) == (f"No specific network was requested and none are available for "
                                           f"project '{alice.project_id}'.")
    only = await network(env, alice, "only", "10.25.0.0/24")
    r = await env.call(alice, "POST", IFACES.format(server["id"]), json={"interfaceAttachment": {}})
    assert r.json()["interfaceAttachment"]["net_id"] == only["id"]
    await wait_addresses(env, alice, server["id"], ["only"])
    await network(env, alice, "second", "10.26.0.0/24")
    r = await env.call(alice, "POST", IFACES.format(server["id"]), expect=400, content=b"")
    assert fault(r, "badRequest", 400) == "Multiple possible networks found, use a Network ID to be more specific."


async def test_bad_requests_are_refused_as_nova_does(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    bob = await env.user("bob", project="beta")
    admin = await env.admin()
    blue = await network(env, alice, "blue", "10.27.0.0/24")
    server = await server_on(env, alice, blue)
    path = IFACES.format(server["id"])
    missing = "11111111-2222-3333-4444-555555555555"

    async def refused(code: int, key: str, body: Any, version: str | None = None, who: Caller = alice) -> str:
        r = await env.call(who, "POST", path, expect=code, json=body, version=version)
        return fault(r, key, code)

    assert await refused(400, "badRequest", {"interfaceAttachment": {"net_id": "nope"}}) == (
        "Invalid input for field/attribute net_id. Value: nope. 'nope' is not a 'uuid'")
    assert await refused(400, "badRequest", {"interfaceAttachment": {"port_id": missing, "net_id": blue["id"]}}) == (
        "Must not input both network_id and port_id")
    assert await refused(400, "badRequest", {"interfaceAttachment": {"fixed_ips": [{"ip_address": "10.0.0.1"}]}}) == (
        "Must input network_id when request IP address")
    assert (await refused(400, "badRequest", {"interfaceAttachment": {"net_id": blue["id"], "fixed_ips": [
        {"ip_address": "10.0.0.300"}]}})).startswith("Invalid input for field/attribute ip_address.")
    assert await refused(400, "badRequest", {"interfaceAttachment": {"net_id": blue["id"], "tag": "t"}},
                         version="2.48") == "Additional properties are not allowed ('tag' was unexpected)"
    assert await refused(400, "badRequest", {"interfaceAttachment": {"net_id": blue["id"], "x": 1}}) == (
        "Additional properties are not allowed ('x' was unexpected)")
    assert await refused(404, "itemNotFound", {"interfaceAttachment": {"port_id": missing}}) == (
        f"Port id {missing} could not be found.")
    assert await refused(404, "itemNotFound", {"interfaceAttachment": {"net_id": missing}}) == (
        f"Network {missing} could not be found.")
    hidden = await network(env, bob, "bobs", "10.28.0.0/24")
    assert await refused(404, "itemNotFound", {"interfaceAttachment": {"net_id": hidden["id"]}}) == (
        f"Network {hidden['id']} could not be found.")
    external = await network(env, admin, "ext", "172.29.0.0/24", **{"router:external": True})
    assert await refused(403, "forbidden", {"interfaceAttachment": {"net_id": external["id"]}}) == (
        f"It is not allowed to create an interface on external network {external['id']}")
    used = (await neutron(env, alice, "POST", "/ports", 201, port={"network_id": blue["id"],
                                                                    "device_id": "someone"}))["port"]
    assert await refused(409, "conflictingRequest", {"interfaceAttachment": {"port_id": used["id"]}}) == (
        f"Port {used['id']} is still in use.")
    admins = (await neutron(env, admin, "POST", "/ports", 201, port={"network_id": external["id"]}))["port"]
    assert await refused(400, "badRequest", {"interfaceAttachment": {"port_id": admins["id"]}}, who=admin) == (
        f"Port {admins['id']} not usable for instance {server['id']}.")
    # another project's server does not exist, whatever is asked of it
    r = await env.call(bob, "POST", path, expect=404, json={"interfaceAttachment": {"net_id": hidden["id"]}})
    assert fault(r, "itemNotFound", 404) == f"Instance {server['id']} could not be found."
    r = await env.call(bob, "DELETE", f"{path}/{missing}", expect=404)
    assert fault(r, "itemNotFound", 404) == f"Instance {server['id']} could not be found."
    r = await env.call(alice, "DELETE", f"{path}/{missing}", expect=404)
    assert fault(r, "itemNotFound", 404) == f"Port {missing} is not attached"
    assert len(await ports_of(env, alice, server["id"])) == 1


async def test_state_lock_and_failures(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    blue = await network(env, alice, "blue", "10.30.0.0/24")
    green = await network(env, alice, "green", "10.31.0.0/24")
    server = await server_on(env, alice, blue)
    path = IFACES.format(server["id"])
    body = {"interfaceAttachment": {"net_id": green["id"]}}

    await env.call(alice, "POST", f"/servers/{server['id']}/action", json={"suspend": None}, expect=202)
    await wait_status(env, alice, server["id"], "SUSPENDED")
    r = await env.call(alice, "POST", path, json=body, expect=409)
    assert fault(r, "conflictingRequest", 409) == (f"Cannot 'attach_interface' instance {server['id']} while it is "
                                                   "in vm_state suspended")
    [port] = await ports_of(env, alice, server["id"])
    r = await env.call(alice, "DELETE", f"{path}/{port['id']}", expect=409)
    assert fault(r, "conflictingRequest", 409) == (f"Cannot 'detach_interface' instance {server['id']} while it is "
                                                   "in vm_state suspended")
    await env.call(alice, "POST", f"/servers/{server['id']}/action", json={"resume": None}, expect=202)
    await wait_status(env, alice, server["id"])

    await env.call(alice, "POST", f"/servers/{server['id']}/action", json={"lock": None}, expect=202)
    r = await env.call(alice, "POST", path, json=body, expect=409)
    assert fault(r, "conflictingRequest", 409) == f"Instance {server['id']} is locked"
    await env.call(alice, "POST", f"/servers/{server['id']}/action", json={"unlock": None}, expect=202)

    # a stopped server takes a NIC too (it boots with it)
    await env.call(alice, "POST", f"/servers/{server['id']}/action", json={"os-stop": None}, expect=202)
    await wait_status(env, alice, server["id"], "SHUTOFF")
    attached = (await env.call(alice, "POST", path, json=body)).json()["interfaceAttachment"]
    await wait_addresses(env, alice, server["id"], ["blue", "green"])
    await env.call(alice, "DELETE", f"{path}/{attached['port_id']}", expect=202)
    await wait_addresses(env, alice, server["id"], ["blue"])
    await env.call(alice, "POST", f"/servers/{server['id']}/action", json={"os-start": None}, expect=202)
    await wait_status(env, alice, server["id"])

    # the hypervisor refuses: Nova's 500 InterfaceAttachFailed, the new port deleted again
    driver(env).fail_next_interface("no PCI slot left")
    r = await env.call(alice, "POST", path, json=body, expect=500)
    assert fault(r, "computeFault", 500) == f"Failed to attach network adapter device to {server['id']}"
    assert [p["network_id"] for p in await ports_of(env, alice, server["id"])] == [blue["id"]]
    on_green = (await neutron(env, alice, "GET", f"/ports?network_id={green['id']}"))["ports"]
    assert [p for p in on_green if p["device_owner"].startswith("compute:")] == []  # the DHCP port stays
    # a given port that fails to attach is unbound again, not deleted
    mine = (await neutron(env, alice, "POST", "/ports", 201, port={"network_id": green["id"]}))["port"]
    driver(env).fail_next_interface()
    await env.call(alice, "POST", path, json={"interfaceAttachment": {"port_id": mine["id"]}}, expect=500)
    assert (await neutron(env, alice, "GET", f"/ports/{mine['id']}"))["port"]["device_id"] == ""
    # a detach the hypervisor refuses keeps the interface (and can be tried again)
    attached = (await env.call(alice, "POST", path, json={"interfaceAttachment": {"port_id": mine["id"]}})).json()
    driver(env).fail_next_interface("the guest holds on to it")
    await env.call(alice, "DELETE", f"{path}/{mine['id']}", expect=202)
    await asyncio.sleep(0.2)
    shown = await wait_addresses(env, alice, server["id"], ["blue", "green"])
    assert shown["status"] == "ACTIVE"
    await env.call(alice, "DELETE", f"{path}/{attached['interfaceAttachment']['port_id']}", expect=202)
    await wait_addresses(env, alice, server["id"], ["blue"])


async def test_deleting_the_server_releases_attached_ports(env: ComputeEnv) -> None:
    alice = await env.user("alice")
    blue = await network(env, alice, "blue", "10.32.0.0/24")
    green = await network(env, alice, "green", "10.33.0.0/24")
    server = await server_on(env, alice, blue)
    mine = (await neutron(env, alice, "POST", "/ports", 201, port={"network_id": green["id"]}))["port"]
    await env.call(alice, "POST", IFACES.format(server["id"]), json={"interfaceAttachment": {"port_id": mine["id"]}})
    made = (await env.call(alice, "POST", IFACES.format(server["id"]),
                           json={"interfaceAttachment": {"net_id": green["id"]}})).json()["interfaceAttachment"]
    await env.call(alice, "DELETE", f"/servers/{server['id']}", expect=204)
    deadline = asyncio.get_running_loop().time() + 10
    while (await env.call(alice, "GET", f"/servers/{server['id']}", expect=None)).status_code != 404:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)
    assert await ports_of(env, alice, server["id"]) == []
    assert (await neutron(env, alice, "GET", f"/ports/{mine['id']}"))["port"]["device_id"] == ""
    await neutron(env, alice, "GET", f"/ports/{made['port_id']}", 404)
