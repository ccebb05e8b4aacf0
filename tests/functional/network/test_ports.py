"""Ports: IPAM (defaults, chosen addresses, exhaustion, no duplicates under concurrency), MACs, who may do what."""

from __future__ import annotations

import asyncio
import ipaddress

from neutrontest import NetEnv, neutron_error


async def test_a_port_gets_an_address_mac_and_the_default_group(net: NetEnv) -> None:
    alice, admin = await net.user("alice"), await net.admin()
    n = await net.network(alice)
    v4 = await net.subnet(alice, n["id"], "10.0.0.0/24")
    v6 = await net.subnet(alice, n["id"], "2001:db8::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    port = (await net.port(alice, n["id"], name="p"))["port"]
    assert port["mac_address"].startswith("fa:16:3e:") and port["status"] == "DOWN"
    mac = port["mac_address"].split(":")  # EUI-64: fa:16:3e:aa:bb:cc -> f816:3eff:feaa:bbcc
    v6_ip = str(ipaddress.IPv6Address(f"2001:db8::f816:3eff:fe{mac[3]}:{mac[4]}{mac[5]}"))
    assert port["fixed_ips"] == [{"subnet_id": v4["id"], "ip_address": "10.0.0.2"},
                                 {"subnet_id": v6["id"], "ip_address": v6_ip}]
    groups = (await net.call(alice, "GET", "/security-groups")).json()["security_groups"]
    assert [g["name"] for g in groups] == ["default"] and port["security_groups"] == [groups[0]["id"]]
    assert port["port_security_enabled"] is True and "binding:host_id" not in port
    shown = (await net.call(admin, "GET", f"/ports/{port['id']}")).json()["port"]
    assert (shown["binding:vif_type"], shown["binding:host_id"]) == ("unbound", "")
    bound = (await net.call(admin, "PUT", f"/ports/{port['id']}", json={"port": {
        "binding:host_id": "compute-1", "device_owner": "compute:nova", "device_id": "vm-1"}})).json()["port"]
    assert bound["binding:vif_type"] == "bridge" and bound["revision_number"] == 2
    r = await net.call(alice, "PUT", f"/ports/{port['id']}", json={"port": {"binding:host_id": "x"}}, expect=403)
    assert neutron_error(r, 403, "PolicyNotAuthorized") == \
        "(rule:update_port and rule:update_port:binding:host_id) is disallowed by policy"


async def test_chosen_addresses_and_their_errors(net: NetEnv) -> None:
    alice = await net.user("alice")
    n = await net.network(alice)
    sub = await net.subnet(alice, n["id"], "10.0.0.0/29")  # usable .2-.6
    first = (await net.port(alice, n["id"], fixed_ips=[{"ip_address": "10.0.0.5"}]))["port"]
    assert first["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.0.0.5"}]
    r = await net.call(alice, "POST", "/ports", json={"port": {"network_id": n["id"], "fixed_ips": [
        {"subnet_id": sub["id"], "ip_address": "10.0.0.5"}]}}, expect=409)
    assert neutron_error(r, 409, "IpAddressAlreadyAllocated") == \
        f"IP address 10.0.0.5 already allocated in subnet {sub['id']}"
    r = await net.call(alice, "POST", "/ports", json={"port": {"network_id": n["id"], "fixed_ips": [
        {"subnet_id": sub["id"], "ip_address": "10.9.9.9"}]}}, expect=400)
    assert neutron_error(r, 400, "InvalidIpForSubnet") == "IP address 10.9.9.9 is not a valid IP for the specified subnet."
    r = await net.call(alice, "POST", "/ports", json={"port": {"network_id": n["id"], "fixed_ips": [
        {"ip_address": "10.9.9.9"}]}}, expect=400)
    assert neutron_error(r, 400, "InvalidIpForNetwork").startswith("IP address 10.9.9.9 is not a valid IP for any")
    r = await net.call(alice, "POST", "/ports", json={"port": {"network_id": n["id"], "fixed_ips": [
        {"subnet_id": "7b0b0000-0000-4000-8000-00000000dead"}]}}, expect=400)
    assert "fixed_ips included invalid subnet" in neutron_error(r, 400, "InvalidInput")
    for _ in range(4):  # .2 .3 .4 .6 (the .1 gateway and the taken .5 skipped)
        await net.port(alice, n["id"])
    r = await net.call(alice, "POST", "/ports", json={"port": {"network_id": n["id"]}}, expect=409)
    assert neutron_error(r, 409, "IpAddressGenerationFailure") == \
        f"No more IP addresses available on network {n['id']}."
    no_ip = (await net.port(alice, n["id"], fixed_ips=[]))["port"]
    assert no_ip["fixed_ips"] == []
    ports = (await net.call(alice, "GET", "/ports", params={"network_id": n["id"]})).json()["ports"]
    addresses = sorted(ip["ip_address"] for p in ports for ip in p["fixed_ips"])
    assert addresses == ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]


async def test_concurrent_ports_never_share_an_address(net: NetEnv) -> None:
    alice = await net.user("alice")
    n = await net.network(alice)
    await net.subnet(alice, n["id"], "10.0.0.0/27")  # 29 usable addresses
    results = await asyncio.gather(*(net.call(alice, "POST", "/ports", json={"port": {"network_id": n["id"]}},
                                              expect=None) for _ in range(32)))
    created = [r.json()["port"] for r in results if r.status_code == 201]
    failed = [r for r in results if r.status_code != 201]
    addresses = [p["fixed_ips"][0]["ip_address"] for p in created]
    assert len(created) == 29 and len(set(addresses)) == 29
    assert all(neutron_error(r, 409, "IpAddressGenerationFailure") for r in failed)


async def test_mac_addresses(net: NetEnv) -> None:
    alice = await net.user("alice")
    n = await net.network(alice)
    await net.subnet(alice, n["id"])
    p = (await net.port(alice, n["id"], mac_address="FA:16:3E:00:00:01"))["port"]
    assert p["mac_address"] == "fa:16:3e:00:00:01"
    r = await net.call(alice, "POST", "/ports", json={"port": {"network_id": n["id"],
                                                             "mac_address": "fa:16:3e:00:00:01"}}, expect=409)
    assert neutron_error(r, 409, "MacAddressInUse") == (
        f"Unable to complete operation for network {n['id']}. The mac address fa:16:3e:00:00:01 is in use.")
    r = await net.call(alice, "POST", "/ports", json={"port": {"network_id": n["id"], "mac_address": "nope"}},
                       expect=400)
    assert neutron_error(r, 400, "HTTPBadRequest") == "Invalid input for mac_address. Reason: 'nope' is not a valid MAC address."


async def test_ports_and_other_projects_networks(net: NetEnv) -> None:
    alice, bob, admin = await net.user("alice"), await net.user("bob", "beta"), await net.admin()
    private = await net.network(alice)
    await net.subnet(alice, private["id"])
    r = await net.call(bob, "POST", "/ports", json={"port": {"network_id": private["id"]}}, expect=404)
    assert neutron_error(r, 404, "NetworkNotFound")
    external = await net.network(admin, **{"router:external": True})
    r = await net.call(bob, "POST", "/ports", json={"port": {"network_id": external["id"]}}, expect=403)
    assert neutron_error(r, 403, "PolicyNotAuthorized") == "rule:create_port is disallowed by policy"
    shared = await net.network(admin, shared=True)
    sub = await net.subnet(admin, shared["id"], "10.5.0.0/24")
    mine = (await net.port(bob, shared["id"], fixed_ips=[{"subnet_id": sub["id"]}]))["port"]
    assert mine["project_id"] == bob.project_id
    r = await net.call(bob, "POST", "/ports", json={"port": {"network_id": shared["id"], "fixed_ips": [
        {"ip_address": "10.5.0.77"}]}}, expect=403)
    assert "rule:create_port:fixed_ips:ip_address" in neutron_error(r, 403, "PolicyNotAuthorized")
    owner_port = (await net.port(alice, private["id"]))["port"]
    await net.call(bob, "GET", f"/ports/{owner_port['id']}", expect=404)
    await net.call(bob, "DELETE", f"/ports/{owner_port['id']}", expect=404)
    assert [p["id"] for p in (await net.call(bob, "GET", "/ports")).json()["ports"]] == [mine["id"]]


async def test_port_security_and_groups(net: NetEnv) -> None:
    alice, bob = await net.user("alice"), await net.user("bob", "beta")
    n = await net.network(alice)
    await net.subnet(alice, n["id"])
    plain = (await net.port(alice, n["id"], port_security_enabled=False))["port"]
    assert plain["security_groups"] == []
    r = await net.call(alice, "POST", "/ports", json={"port": {
        "network_id": n["id"], "port_security_enabled": False,
        "security_groups": [plain["id"]]}}, expect=None)
    assert r.status_code in (404, 409)
    theirs = (await net.call(bob, "POST", "/security-groups", json={"security_group": {"name": "b"}},
                             expect=201)).json()["security_group"]
    r = await net.call(alice, "POST", "/ports", json={"port": {"network_id": n["id"],
                                                             "security_groups": [theirs["id"]]}}, expect=404)
    assert neutron_error(r, 404, "SecurityGroupNotFound") == f"Security group {theirs['id']} does not exist"
    mine = (await net.call(alice, "POST", "/security-groups", json={"security_group": {"name": "web"}},
                           expect=201)).json()["security_group"]
    p = (await net.port(alice, n["id"], security_groups=[mine["id"]]))["port"]
    assert p["security_groups"] == [mine["id"]]
    r = await net.call(alice, "DELETE", f"/security-groups/{mine['id']}", expect=409)
    assert neutron_error(r, 409, "SecurityGroupInUse") == f"Security Group {mine['id']} in use."
    r = await net.call(alice, "PUT", f"/ports/{p['id']}", json={"port": {"port_security_enabled": False}},
                       expect=409)
    await net.call(alice, "PUT", f"/ports/{p['id']}", json={"port": {"security_groups": [],
                                                                     "port_security_enabled": False}})
    await net.call(alice, "DELETE", f"/security-groups/{mine['id']}", expect=204)


async def test_ports_filtered_by_fixed_ip(net: NetEnv) -> None:
    alice = await net.user("alice")
    n = await net.network(alice)
    sub = await net.subnet(alice, n["id"])
    first = (await net.port(alice, n["id"]))["port"]
    await net.port(alice, n["id"])
    r = await net.call(alice, "GET", "/ports", params={"fixed_ips": "ip_address=10.0.0.2"})
    assert [p["id"] for p in r.json()["ports"]] == [first["id"]]
    r = await net.call(alice, "GET", "/ports", params={"fixed_ips": f"subnet_id={sub['id']}"})
    assert len(r.json()["ports"]) == 2
    await net.call(alice, "GET", "/ports", params={"fixed_ips": "nonsense"}, expect=400)
