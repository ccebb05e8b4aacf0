"""Subnet pools (``subnet_allocation``): CRUD, carving subnets by size or cidr, and Neutron's refusals."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from neutrontest import Caller, NetEnv, neutron_error


async def pool(net: NetEnv, who: Caller, expect: int = 201, **fields: Any) -> Any:
    r = await net.call(who, "POST", "/subnetpools", json={"subnetpool": {"name": "pool", **fields}}, expect=expect)
    return r.json()["subnetpool"] if expect == 201 else r


async def carve(net: NetEnv, who: Caller, network_id: str, expect: int | None = 201, **fields: Any) -> Any:
    body = {"subnet": {"network_id": network_id, "ip_version": 4, **fields}}
    r = await net.call(who, "POST", "/subnets", json=body, expect=expect)
    return r.json()["subnet"] if expect == 201 else r


async def test_pool_crud_and_defaults(net: NetEnv) -> None:
    alice = await net.user("alice")
    made = await pool(net, alice, prefixes=["10.60.0.0/25", "10.60.0.128/25", "10.61.0.0/16"], default_prefixlen=26)
    assert made["prefixes"] == ["10.60.0.0/24", "10.61.0.0/16"]  # merged
    assert (made["ip_version"], made["min_prefixlen"], made["default_prefixlen"], made["max_prefixlen"]) == \
        (4, 8, 26, 32)
    assert (made["shared"], made["is_default"], made["address_scope_id"], made["project_id"]) == \
        (False, False, None, alice.project_id)
    v6 = await pool(net, alice, prefixes=["fd00:60::/48"])
    assert (v6["ip_version"], v6["min_prefixlen"], v6["default_prefixlen"], v6["max_prefixlen"]) == (6, 64, 64, 128)

    r = await net.call(alice, "PUT", f"/subnetpools/{made['id']}",
                       json={"subnetpool": {"prefixes": ["10.60.0.0/24", "10.61.0.0/16", "10.62.0.0/24"],
                                            "name": "grown"}})
    assert r.json()["subnetpool"]["prefixes"] == ["10.60.0.0/24", "10.61.0.0/16", "10.62.0.0/24"]
    assert r.json()["subnetpool"]["revision_number"] == 2
    shrink = await net.call(alice, "PUT", f"/subnetpools/{made['id']}",
                            json={"subnetpool": {"prefixes": ["10.60.0.0/24"]}}, expect=None)
    assert "Existing prefixes must be a subset" in neutron_error(shrink, 400, "IllegalSubnetPoolPrefixUpdate")

    listed = (await net.call(alice, "GET", "/subnetpools", params={"ip_version": 6})).json()["subnetpools"]
    assert [p["id"] for p in listed] == [v6["id"]]
    bob = await net.user("bob", "beta")
    hidden = await net.call(bob, "GET", f"/subnetpools/{made['id']}", expect=None)
    assert neutron_error(hidden, 404, "SubnetPoolNotFound") == f"Subnet pool {made['id']} could not be found."
    assert (await net.call(bob, "GET", "/subnetpools")).json()["subnetpools"] == []
    await net.call(alice, "DELETE", f"/subnetpools/{v6['id']}", expect=204)


async def test_subnets_are_carved_lowest_first_and_never_overlap(net: NetEnv) -> None:
    alice = await net.user("alice")
    made = await pool(net, alice, prefixes=["10.70.0.0/24"], default_prefixlen=26, min_prefixlen=24,
                      max_prefixlen=28)
    network = await net.network(alice)
    first = await carve(net, alice, network["id"], subnetpool_id=made["id"])
    assert (first["cidr"], first["subnetpool_id"], first["gateway_ip"]) == ("10.70.0.0/26", made["id"], "10.70.0.1")
    asked = await carve(net, alice, network["id"], subnetpool_id=made["id"], cidr="10.70.0.128/26")
    assert asked["cidr"] == "10.70.0.128/26"
    small = await carve(net, alice, network["id"], subnetpool_id=made["id"], prefixlen=28)
    assert small["cidr"] == "10.70.0.64/28"  # the lowest free /28
    listed = (await net.call(alice, "GET", "/subnets", params={"subnetpool_id": made["id"]})).json()["subnets"]
    assert len(listed) == 3

    taken = await carve(net, alice, network["id"], expect=None, subnetpool_id=made["id"], cidr="10.70.0.128/27")
    assert neutron_error(taken, 409, "SubnetAllocationError")
    outside = await carve(net, alice, network["id"], expect=None, subnetpool_id=made["id"], cidr="10.99.0.0/26")
    assert neutron_error(outside, 409, "SubnetAllocationError")
    too_big = await carve(net, alice, network["id"], expect=None, subnetpool_id=made["id"], prefixlen=23)
    assert neutron_error(too_big, 400, "MinPrefixSubnetAllocationError") == \
        "Unable to allocate subnet with prefix length 23, minimum allowed prefix is 24."
    too_small = await carve(net, alice, network["id"], expect=None, subnetpool_id=made["id"], prefixlen=30)
    assert neutron_error(too_small, 400, "MaxPrefixSubnetAllocationError")
    v6 = await carve(net, alice, network["id"], expect=None, subnetpool_id=made["id"], ip_version=6)
    assert neutron_error(v6, 400)

    # The rest of the /24 in concurrent requests: every block once, then the pool is full.
    rest = await asyncio.gather(*(carve(net, alice, network["id"], expect=None, subnetpool_id=made["id"],
                                        prefixlen=28) for _ in range(4)))
    cidrs = sorted(r.json()["subnet"]["cidr"] for r in rest if r.status_code == 201)
    nets = [ipaddress.ip_network(c) for c in cidrs]
    assert len(cidrs) == len(set(cidrs)) and not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])
    assert all(r.status_code in (201, 409) for r in rest)
    full = await carve(net, alice, network["id"], expect=None, subnetpool_id=made["id"], prefixlen=26)
    assert neutron_error(full, 409, "SubnetAllocationError") == \
        "Failed to allocate subnet: Insufficient prefix space to allocate subnet size /26."

    in_use = await net.call(alice, "DELETE", f"/subnetpools/{made['id']}", expect=None)
    assert neutron_error(in_use, 409, "SubnetPoolInUse")


async def test_shared_and_default_pools_are_the_admins(net: NetEnv) -> None:
    admin, alice = await net.admin(), await net.user("alice")
    refused = await pool(net, alice, expect=403, prefixes=["10.80.0.0/16"], shared=True)
    assert neutron_error(refused, 403, "PolicyNotAuthorized")
    shared = await pool(net, admin, prefixes=["10.80.0.0/16"], shared=True, is_default=True, default_prefixlen=24)
    second = await pool(net, admin, expect=400, prefixes=["10.81.0.0/16"], is_default=True)
    assert "Only one default may exist per IP family" in neutron_error(second, 400)
    network = await net.network(alice)
    mine = await carve(net, alice, network["id"], use_default_subnetpool=True)
    assert (mine["subnetpool_id"], mine["cidr"]) == (shared["id"], "10.80.0.0/24")
    seen = (await net.call(alice, "GET", "/subnetpools")).json()["subnetpools"]
    assert [p["id"] for p in seen] == [shared["id"]]
    edit = await net.call(alice, "PUT", f"/subnetpools/{shared['id']}", json={"subnetpool": {"name": "x"}},
                          expect=None)
    assert neutron_error(edit, 403, "PolicyNotAuthorized")


async def test_bad_pools_are_refused(net: NetEnv) -> None:
    alice = await net.user("alice")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"prefixes": []}, "EmptySubnetPoolPrefixList"),
        ({"prefixes": ["10.0.0.0/8", "fd00::/8"]}, "PrefixVersionMismatch"),
        ({"prefixes": ["10.0.0.1/8"]}, "InvalidCIDR"),
        ({"prefixes": ["10.0.0.0/8"], "min_prefixlen": 24, "default_prefixlen": 16}, "IllegalSubnetPoolPrefixBounds"),
        ({"prefixes": ["10.0.0.0/8"], "max_prefixlen": 33}, "IllegalSubnetPoolPrefixBounds"),
    ]
    for fields, kind in cases:
        r = await pool(net, alice, expect=400, **fields)
        assert neutron_error(r, 400, kind), fields
    missing = await pool(net, alice, expect=400)
    assert "Required attribute 'prefixes'" in neutron_error(missing, 400)
    network = await net.network(alice)
    no_cidr = await carve(net, alice, network["id"], expect=None)
    assert "a subnetpool must be specified in the absence of a cidr" in neutron_error(no_cidr, 400)
    unknown = await carve(net, alice, network["id"], expect=None, subnetpool_id="00000000-0000-0000-0000-000000000000")
    assert neutron_error(unknown, 404, "SubnetPoolNotFound")
