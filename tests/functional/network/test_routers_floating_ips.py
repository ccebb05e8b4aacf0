"""Routers (gateway, interfaces, routes) and floating IPs (allocation, association rules, cross-project 404)."""

from __future__ import annotations

from typing import Any

from neutrontest import Caller, NetEnv, neutron_error


async def topology(net: NetEnv, who: Caller) -> dict[str, Any]:
    """An external network (admin's), and for ``who`` a network, subnet, router with gateway and interface."""
    admin = await net.admin()
    public = await net.network(admin, name="public", **{"router:external": True})
    public_sub = await net.subnet(admin, public["id"], "172.24.4.0/28")
    private = await net.network(who, name="private")
    sub = await net.subnet(who, private["id"], "10.0.0.0/24")
    router = (await net.call(who, "POST", "/routers", json={"router": {
        "name": "r", "external_gateway_info": {"network_id": public["id"]}}}, expect=201)).json()["router"]
    r = await net.call(who, "PUT", f"/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]})
    return {"public": public, "public_sub": public_sub, "private": private, "sub": sub, "router": router,
            "interface": r.json()}


async def test_router_gateway_and_interfaces(net: NetEnv) -> None:
    alice, admin = await net.user("alice"), await net.admin()
    t = await topology(net, alice)
    router, interface = t["router"], t["interface"]
    gateway = router["external_gateway_info"]
    assert gateway["network_id"] == t["public"]["id"] and gateway["enable_snat"] is True
    assert gateway["external_fixed_ips"][0]["ip_address"] == "172.24.4.2"
    assert interface["subnet_id"] == t["sub"]["id"] and interface["subnet_ids"] == [t["sub"]["id"]]
    port = (await net.call(alice, "GET", f"/ports/{interface['port_id']}")).json()["port"]
    assert (port["device_owner"], port["device_id"]) == ("network:router_interface", router["id"])
    assert port["fixed_ips"] == [{"subnet_id": t["sub"]["id"], "ip_address": "10.0.0.1"}]
    r = await net.call(alice, "DELETE", f"/ports/{port['id']}", expect=409)
    assert "cannot be deleted directly via the port API" in neutron_error(r, 409, "ServicePortInUse")
    r = await net.call(alice, "PUT", f"/routers/{router['id']}/add_router_interface",
                       json={"subnet_id": t["sub"]["id"]}, expect=400)
    assert neutron_error(r, 400, "BadRequest") == \
        f"Bad router request: Router already has a port on subnet {t['sub']['id']}."
    r = await net.call(alice, "PUT", f"/routers/{router['id']}/add_router_interface", json={}, expect=400)
    assert neutron_error(r, 400) == "Bad router request: Either subnet_id or port_id must be specified."
    r = await net.call(alice, "PUT", f"/routers/{router['id']}", json={"router": {"routes": [
        {"destination": "192.168.0.0/16", "nexthop": "10.0.0.254"}]}})
    assert r.json()["router"]["routes"] == [{"destination": "192.168.0.0/16", "nexthop": "10.0.0.254"}]
    r = await net.call(alice, "PUT", f"/routers/{router['id']}", json={"router": {"routes": [
        {"destination": "192.168.0.0/16", "nexthop": "10.9.9.9"}]}}, expect=400)
    r = await net.call(alice, "DELETE", f"/routers/{router['id']}", expect=409)
    assert neutron_error(r, 409, "RouterInUse") == \
        f"Router {router['id']} has ports still attached: {interface['port_id']}"
    r = await net.call(alice, "PUT", f"/routers/{router['id']}", json={"router": {
        "external_gateway_info": {"network_id": t["public"]["id"], "enable_snat": False}}}, expect=403)
    r = await net.call(alice, "PUT", f"/routers/{router['id']}", json={"router": {
        "external_gateway_info": {"network_id": t["private"]["id"]}}}, expect=400)
    assert neutron_error(r, 400) == f"Bad router request: Network {t['private']['id']} is not an external network."
    r = await net.call(admin, "DELETE", f"/networks/{t['public']['id']}", expect=409)
    assert neutron_error(r, 409, "NetworkInUse")  # the router's gateway port uses it
    await net.call(alice, "PUT", f"/routers/{router['id']}/remove_router_interface", json={"subnet_id": t["sub"]["id"]})
    r = await net.call(alice, "PUT", f"/routers/{router['id']}/remove_router_interface",
                       json={"subnet_id": t["sub"]["id"]}, expect=404)
    assert neutron_error(r, 404, "RouterInterfaceNotFoundForSubnet")
    await net.call(alice, "DELETE", f"/routers/{router['id']}", expect=204)
    await net.call(admin, "DELETE", f"/subnets/{t['public_sub']['id']}", expect=204)  # the gateway port went too


async def test_floating_ips(net: NetEnv) -> None:
    alice, bob = await net.user("alice"), await net.user("bob", "beta")
    t = await topology(net, alice)
    vm_port = (await net.port(alice, t["private"]["id"], device_owner="compute:nova", device_id="vm-1"))["port"]
    fip = (await net.call(alice, "POST", "/floatingips", json={"floatingip": {
        "floating_network_id": t["public"]["id"]}}, expect=201)).json()["floatingip"]
    assert fip["floating_ip_address"] == "172.24.4.3" and fip["port_id"] is None and fip["status"] == "DOWN"
    r = await net.call(alice, "PUT", f"/floatingips/{fip['id']}", json={"floatingip": {"port_id": vm_port["id"]}})
    associated = r.json()["floatingip"]
    assert (associated["fixed_ip_address"], associated["router_id"]) == (
        vm_port["fixed_ips"][0]["ip_address"], t["router"]["id"])
    assert associated["port_details"]["device_id"] == "vm-1"
    second = (await net.call(alice, "POST", "/floatingips", json={"floatingip": {
        "floating_network_id": t["public"]["id"]}}, expect=201)).json()["floatingip"]
    r = await net.call(alice, "PUT", f"/floatingips/{second['id']}", json={"floatingip": {"port_id": vm_port["id"]}},
                       expect=409)
    assert neutron_error(r, 409, "FloatingIPPortAlreadyAssociated")
    # another project's port, and a floating IP of another project: both do not exist for the caller
    bob_net = await net.network(bob)
    await net.subnet(bob, bob_net["id"], "10.1.0.0/24")
    bob_port = (await net.port(bob, bob_net["id"]))["port"]
    r = await net.call(alice, "PUT", f"/floatingips/{second['id']}", json={"floatingip": {"port_id": bob_port["id"]}},
                       expect=404)
    assert neutron_error(r, 404, "PortNotFound")
    await net.call(bob, "PUT", f"/floatingips/{fip['id']}", json={"floatingip": {"port_id": None}}, expect=404)
    # a port whose subnet no router joins to the external network
    lone = await net.network(alice, name="lone")
    lone_sub = await net.subnet(alice, lone["id"], "10.2.0.0/24")
    lone_port = (await net.port(alice, lone["id"]))["port"]
    r = await net.call(alice, "PUT", f"/floatingips/{second['id']}", json={"floatingip": {"port_id": lone_port["id"]}},
                       expect=404)
    assert neutron_error(r, 404, "ExternalGatewayForFloatingIPNotFound") == (
        f"External network {t['public']['id']} is not reachable from subnet {lone_sub['id']}.  Therefore, cannot "
        f"associate Port {lone_port['id']} with a Floating IP.")
    r = await net.call(alice, "POST", "/floatingips", json={"floatingip": {
        "floating_network_id": t["private"]["id"]}}, expect=400)
    assert neutron_error(r, 400) == \
        f"Bad floatingip request: Network {t['private']['id']} is not a valid external network."
    r = await net.call(alice, "PUT", f"/routers/{t['router']['id']}/remove_router_interface",
                       json={"subnet_id": t["sub"]["id"]}, expect=409)
    assert neutron_error(r, 409, "RouterInterfaceInUseByFloatingIP")
    await net.call(alice, "DELETE", f"/ports/{vm_port['id']}", expect=204)  # deleting the port disassociates
    shown = (await net.call(alice, "GET", f"/floatingips/{fip['id']}")).json()["floatingip"]
    assert (shown["port_id"], shown["fixed_ip_address"], shown["router_id"]) == (None, None, None)
    for made in (fip, second):
        await net.call(alice, "DELETE", f"/floatingips/{made['id']}", expect=204)
    # the external /28 has 13 usable addresses: gateway port .2, then floating IPs until none is left
    for _ in range(12):
        await net.call(alice, "POST", "/floatingips", json={"floatingip": {"floating_network_id": t["public"]["id"]}},
                       expect=201)
    r = await net.call(alice, "POST", "/floatingips", json={"floatingip": {
        "floating_network_id": t["public"]["id"]}}, expect=400)
    assert neutron_error(r, 400, "ExternalIpAddressExhausted") == \
        f"Unable to find any IP address on external network {t['public']['id']}."
