"""``/v2.0/network-ip-availabilities``: Neutron's used/total counting, filters, and admin-only visibility."""

from __future__ import annotations

from ipaddress import ip_address

from neutrontest import NetEnv, neutron_error


async def test_counts_follow_pools_and_allocations(net: NetEnv) -> None:
    admin, alice = await net.admin(), await net.user("alice")
    network = await net.network(alice, name="counted")
    v4 = await net.subnet(alice, network["id"], "10.40.0.0/24", name="v4",
                          allocation_pools=[{"start": "10.40.0.10", "end": "10.40.0.19"},
                                            {"start": "10.40.0.100", "end": "10.40.0.104"}])
    v6 = await net.subnet(alice, network["id"], "2001:db8:40::/64", ip_version=6, name="v6")
    for _ in range(3):
        await net.port(alice, network["id"], fixed_ips=[{"subnet_id": v4["id"]}])
    await net.port(alice, network["id"], fixed_ips=[{"subnet_id": v6["id"]}])
    empty = await net.network(alice, name="no-subnets")

    shown = (await net.call(admin, "GET", f"/network-ip-availabilities/{network['id']}")).json()
    got = shown["network_ip_availability"]
    assert (got["network_name"], got["project_id"], got["tenant_id"]) == ("counted", alice.project_id,
                                                                           alice.project_id)
    by_name = {s["subnet_name"]: s for s in got["subnet_ip_availability"]}
    assert by_name["v4"] == {"subnet_id": v4["id"], "subnet_name": "v4", "ip_version": 4, "cidr": "10.40.0.0/24",
                             "used_ips": 3, "total_ips": 15}  # two pools: 10 + 5 addresses
    v6_total = sum(int(ip_address(p["end"])) - int(ip_address(p["start"])) + 1 for p in v6["allocation_pools"])
    assert v6_total > 2**63  # beyond 64-bit JSON encoders: written exactly all the same
    assert by_name["v6"] == {"subnet_id": v6["id"], "subnet_name": "v6", "ip_version": 6, "cidr": "2001:db8:40::/64",
                             "used_ips": 1, "total_ips": v6_total}
    assert got["used_ips"] == 4 and got["total_ips"] == 15 + by_name["v6"]["total_ips"]

    listed = (await net.call(admin, "GET", "/network-ip-availabilities",
                             params={"project_id": alice.project_id})).json()["network_ip_availabilities"]
    assert {n["network_name"]: (n["used_ips"], n["total_ips"]) for n in listed}["no-subnets"] == (0, 0)
    assert {n["network_id"] for n in listed} == {network["id"], empty["id"]}

    only_v4 = (await net.call(admin, "GET", "/network-ip-availabilities",
                              params={"network_id": network["id"], "ip_version": 4})).json()
    [entry] = only_v4["network_ip_availabilities"]
    assert [s["subnet_name"] for s in entry["subnet_ip_availability"]] == ["v4"] and entry["total_ips"] == 15

    trimmed = (await net.call(admin, "GET", "/network-ip-availabilities",
                              params={"network_name": "counted", "fields": ["network_id", "used_ips"]})).json()
    assert trimmed == {"network_ip_availabilities": [{"network_id": network["id"], "used_ips": 4}]}


async def test_only_admins_see_numbers_and_bad_filters_are_refused(net: NetEnv) -> None:
    admin, alice = await net.admin(), await net.user("alice")
    network = await net.network(alice, name="mine")
    await net.subnet(alice, network["id"], "10.41.0.0/24")

    refused = await net.call(alice, "GET", "/network-ip-availabilities")
    assert refused.json() == {"network_ip_availabilities": []}
    hidden = await net.call(alice, "GET", f"/network-ip-availabilities/{network['id']}", expect=None)
    assert neutron_error(hidden, 404, "NetworkNotFound") == f"Network {network['id']} could not be found."

    missing = await net.call(admin, "GET", "/network-ip-availabilities/00000000-0000-0000-0000-000000000000",
                             expect=None)
    assert neutron_error(missing, 404, "NetworkNotFound") == \
        "Network 00000000-0000-0000-0000-000000000000 could not be found."
    bad_key = await net.call(admin, "GET", "/network-ip-availabilities", params={"status": "ACTIVE"}, expect=None)
    assert neutron_error(bad_key, 400) == "['status'] is invalid attribute for filtering"
    bad_version = await net.call(admin, "GET", "/network-ip-availabilities", params={"ip_version": "four"},
                                 expect=None)
    assert neutron_error(bad_version, 400, "InvalidInput")
    extensions = (await net.call(alice, "GET", "/extensions")).json()["extensions"]
    assert "network-ip-availability" in {e["alias"] for e in extensions}
