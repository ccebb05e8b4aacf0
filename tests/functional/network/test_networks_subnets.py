"""Networks and subnets: views, visibility between projects, provider segments, Neutron's validation."""

from __future__ import annotations

from neutrontest import API, NetEnv, neutron_error


async def test_version_discovery_and_extensions(net: NetEnv) -> None:
    r = await net.client.get("/network/")
    assert r.status_code == 200
    [version] = r.json()["versions"]
    assert version["id"] == "v2.0" and version["status"] == "CURRENT"
    assert version["links"][0]["href"].endswith("/network/v2.0/")
    admin = await net.admin()
    r = await net.call(admin, "GET", "/")
    assert {res["collection"] for res in r.json()["resources"]} >= {"networks", "subnets", "ports"}
    aliases = {e["alias"] for e in (await net.call(admin, "GET", "/extensions")).json()["extensions"]}
    assert {"security-group", "quotas", "provider", "external-net", "standard-attr-tag", "binding"} <= aliases
    assert "router" in aliases and "external-gateway-multihoming" not in aliases  # never claimed unless real
    assert (await net.call(admin, "GET", "/extensions/quotas")).json()["extension"]["name"] == \
        "Quota management support"
    r = await net.call(admin, "GET", "/extensions/nope", expect=404)
    assert neutron_error(r, 404) == "Extension with alias nope does not exist"
    r = await net.client.get(f"{API}/networks")
    assert r.status_code == 401


async def test_a_project_network_gets_a_vxlan_segment(net: NetEnv) -> None:
    alice, admin = await net.user("alice"), await net.admin()
    mine = await net.network(alice, name="web")
    assert mine["project_id"] == mine["tenant_id"] == alice.project_id
    assert (mine["status"], mine["mtu"], mine["shared"], mine["router:external"]) == ("ACTIVE", 1450, False, False)
    assert mine["revision_number"] == 1 and mine["subnets"] == [] and mine["tags"] == []
    assert "provider:network_type" not in mine  # admin-only keys are absent, not null
    shown = (await net.call(admin, "GET", f"/networks/{mine['id']}")).json()["network"]
    assert shown["provider:network_type"] == "vxlan" and shown["provider:segmentation_id"] == 1
    second = (await net.call(admin, "GET", f"/networks/{(await net.network(alice))['id']}")).json()["network"]
    assert second["provider:segmentation_id"] == 2


async def test_admin_only_attributes_and_provider_networks(net: NetEnv) -> None:
    alice, admin = await net.user("alice"), await net.admin()
    r = await net.call(alice, "POST", "/networks", json={"network": {"name": "x", "shared": True}}, expect=403)
    assert neutron_error(r, 403, "PolicyNotAuthorized") == \
        "(rule:create_network and rule:create_network:shared) is disallowed by policy"
    public = await net.network(admin, name="public", **{"router:external": True, "provider:network_type": "flat",
                                                        "provider:physical_network": "public"})
    assert public["mtu"] == 1500 and public["provider:segmentation_id"] is None
    r = await net.call(admin, "POST", "/networks", json={"network": {
        "provider:network_type": "flat", "provider:physical_network": "public"}}, expect=409)
    assert neutron_error(r, 409, "FlatNetworkInUse").startswith("Unable to create the flat network.")
    r = await net.call(admin, "POST", "/networks", json={"network": {
        "provider:network_type": "flat", "provider:physical_network": "nowhere"}}, expect=400)
    assert "physical_network 'nowhere' unknown" in neutron_error(r, 400, "InvalidInput")
    r = await net.call(admin, "POST", "/networks", json={"network": {
        "provider:network_type": "vxlan", "provider:segmentation_id": 77}}, expect=201)
    r = await net.call(admin, "POST", "/networks", json={"network": {
        "provider:network_type": "vxlan", "provider:segmentation_id": 77}}, expect=409)
    assert neutron_error(r, 409, "TunnelIdInUse") == "Unable to create the network. The VXLAN ID 77 is in use."
    r = await net.call(admin, "POST", "/networks", json={"network": {"provider:network_type": "vlan"}}, expect=400)


async def test_projects_see_their_own_shared_and_external_networks(net: NetEnv) -> None:
    alice, bob, admin = await net.user("alice"), await net.user("bob", "beta"), await net.admin()
    private = await net.network(alice, name="private")
    shared = await net.network(admin, name="shared", shared=True)
    external = await net.network(admin, name="ext", **{"router:external": True})
    hidden = await net.network(admin, name="admin-only")
    seen = {n["name"] for n in (await net.call(bob, "GET", "/networks")).json()["networks"]}
    assert seen == {"shared", "ext"}
    r = await net.call(bob, "GET", f"/networks/{private['id']}", expect=404)
    assert neutron_error(r, 404, "NetworkNotFound") == f"Network {private['id']} could not be found."
    r = await net.call(bob, "PUT", f"/networks/{private['id']}", json={"network": {"name": "x"}}, expect=404)
    r = await net.call(bob, "DELETE", f"/networks/{shared['id']}", expect=403)
    assert neutron_error(r, 403, "PolicyNotAuthorized") == "rule:delete_network is disallowed by policy"
    await net.call(bob, "GET", f"/networks/{external['id']}")
    await net.call(bob, "GET", f"/networks/{hidden['id']}", expect=404)
    assert len((await net.call(admin, "GET", "/networks")).json()["networks"]) == 4
    await net.call(alice, "GET", "/networks/not-a-uuid", expect=404)


async def test_update_and_delete(net: NetEnv) -> None:
    alice = await net.user("alice")
    n = await net.network(alice, name="old")
    r = await net.call(alice, "PUT", f"/networks/{n['id']}", json={"network": {"name": "new", "mtu": 1400}})
    updated = r.json()["network"]
    assert (updated["name"], updated["mtu"], updated["revision_number"]) == ("new", 1400, 2)
    r = await net.call(alice, "PUT", f"/networks/{n['id']}", json={"network": {"status": "DOWN"}}, expect=400)
    assert neutron_error(r, 400, "HTTPBadRequest") == "Cannot update read-only attribute status"
    port = (await net.port(alice, n["id"]))["port"]
    r = await net.call(alice, "DELETE", f"/networks/{n['id']}", expect=409)
    assert neutron_error(r, 409, "NetworkInUse") == (
        f"Unable to complete operation on network {n['id']}. There are one or more ports still in use on the "
        f"network, id for these ports is: {port['id']}.")
    await net.call(alice, "DELETE", f"/ports/{port['id']}", expect=204)
    await net.call(alice, "DELETE", f"/networks/{n['id']}", expect=204)
    await net.call(alice, "GET", f"/networks/{n['id']}", expect=404)


async def test_subnet_defaults(net: NetEnv) -> None:
    alice = await net.user("alice")
    n = await net.network(alice)
    v4 = await net.subnet(alice, n["id"], "10.1.0.0/24", dns_nameservers=["10.1.0.53"],
                          host_routes=[{"destination": "192.168.0.0/16", "nexthop": "10.1.0.254"}])
    assert (v4["gateway_ip"], v4["allocation_pools"]) == ("10.1.0.1", [{"start": "10.1.0.2", "end": "10.1.0.254"}])
    assert v4["enable_dhcp"] and v4["dns_nameservers"] == ["10.1.0.53"] and v4["subnetpool_id"] is None
    v6 = await net.subnet(alice, n["id"], "2001:db8:1::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    assert v6["gateway_ip"] == "2001:db8:1::" and v6["allocation_pools"] == [
        {"start": "2001:db8:1::1", "end": "2001:db8:1:0:ffff:ffff:ffff:ffff"}]
    nogw = await net.subnet(alice, n["id"], "10.2.0.0/29", gateway_ip=None)
    assert nogw["gateway_ip"] is None and nogw["allocation_pools"] == [{"start": "10.2.0.1", "end": "10.2.0.6"}]
    canonical = await net.subnet(alice, n["id"], "10.3.0.9/24")
    assert canonical["cidr"] == "10.3.0.0/24"
    shown = (await net.call(alice, "GET", f"/networks/{n['id']}")).json()["network"]
    assert sorted(shown["subnets"]) == sorted([v4["id"], v6["id"], nogw["id"], canonical["id"]])
    assert shown["revision_number"] == 5  # each new subnet bumps the network


async def test_subnet_bad_input(net: NetEnv) -> None:
    alice = await net.user("alice")
    n = await net.network(alice)
    await net.subnet(alice, n["id"], "10.0.0.0/24")

    async def refused(status: int, kind: str, **fields: object) -> str:
        body = {"subnet": {"network_id": n["id"], "ip_version": 4, "cidr": "10.9.0.0/24", **fields}}
        return neutron_error(await net.call(alice, "POST", "/subnets", json=body, expect=status), status, kind)

    assert await refused(400, "InvalidInput", cidr="10.0.0.128/25") == (
        f"Invalid input for operation: Requested subnet with cidr: 10.0.0.128/25 for network: {n['id']} overlaps "
        "with another subnet.")
    assert await refused(400, "InvalidInput", cidr="nonsense") == \
        "Invalid input for operation: nonsense is not in a CIDR format."
    assert await refused(400, "InvalidInput", cidr="2001:db8::/64") == \
        "Invalid input for operation: cidr '2001:db8::/64' does not match the ip_version '4'."
    assert "outside the subnet" in await refused(400, "InvalidInput", gateway_ip="10.8.0.1")
    assert await refused(400, "InvalidInput", gateway_ip="10.9.0.0") == \
        "Invalid input for operation: Gateway is not valid on subnet."
    assert await refused(409, "OverlappingAllocationPools", allocation_pools=[
        {"start": "10.9.0.10", "end": "10.9.0.20"}, {"start": "10.9.0.15", "end": "10.9.0.30"}]) == (
        "Found overlapping allocation pools: 10.9.0.10-10.9.0.20 10.9.0.15-10.9.0.30 for subnet 10.9.0.0/24.")
    assert await refused(400, "OutOfBoundsAllocationPool", allocation_pools=[
        {"start": "10.9.0.10", "end": "10.9.1.20"}]) == \
        "The allocation pool 10.9.0.10-10.9.1.20 spans beyond the subnet cidr 10.9.0.0/24."
    assert await refused(409, "GatewayConflictWithAllocationPools", gateway_ip="10.9.0.15", allocation_pools=[
        {"start": "10.9.0.10", "end": "10.9.0.20"}]) == \
        "Gateway ip 10.9.0.15 conflicts with allocation pool 10.9.0.10-10.9.0.20."
    assert await refused(400, "InvalidAllocationPool", allocation_pools=[
        {"start": "10.9.0.20", "end": "10.9.0.10"}]) == "The allocation pool 10.9.0.20-10.9.0.10 is not valid."
    message = await refused(400, "InvalidInput", cidr="2001:db8:5::/64", ip_version=6, ipv6_ra_mode="slaac",
                            ipv6_address_mode="dhcpv6-stateful")
    assert "they must be the same value" in message
    assert "is not valid when ip_version is 4" in await refused(400, "InvalidInput", ipv6_ra_mode="slaac")
    r = await net.call(alice, "POST", "/subnets", json={"subnet": {"network_id": n["id"], "ip_version": 4}},
                       expect=400)
    assert neutron_error(r, 400, "BadRequest") == \
        "Bad subnets request: a subnetpool must be specified in the absence of a cidr."
    assert len((await net.call(alice, "GET", "/subnets")).json()["subnets"]) == 1  # nothing half-made


async def test_subnet_update_and_in_use(net: NetEnv) -> None:
    alice = await net.user("alice")
    n = await net.network(alice)
    sub = await net.subnet(alice, n["id"], "10.0.0.0/24")
    r = await net.call(alice, "PUT", f"/subnets/{sub['id']}", json={"subnet": {
        "allocation_pools": [{"start": "10.0.0.100", "end": "10.0.0.200"}], "dns_nameservers": ["1.1.1.1"]}})
    assert r.json()["subnet"]["allocation_pools"] == [{"start": "10.0.0.100", "end": "10.0.0.200"}]
    port = (await net.port(alice, n["id"]))["port"]
    assert port["fixed_ips"][0]["ip_address"] == "10.0.0.100"
    r = await net.call(alice, "DELETE", f"/subnets/{sub['id']}", expect=409)
    assert neutron_error(r, 409, "SubnetInUse").startswith(f"Unable to complete operation on subnet {sub['id']}")
    r = await net.call(alice, "PUT", f"/subnets/{sub['id']}", json={"subnet": {"cidr": "10.5.0.0/24"}}, expect=400)
    await net.call(alice, "DELETE", f"/ports/{port['id']}", expect=204)
    await net.call(alice, "DELETE", f"/subnets/{sub['id']}", expect=204)
