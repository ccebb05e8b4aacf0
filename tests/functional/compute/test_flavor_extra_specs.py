"""Flavor extra specs (``os-extra_specs``) and flavor access for private flavors (``os-flavor-access``)."""

from __future__ import annotations

from computetest import ComputeEnv, fault


async def test_extra_specs_crud(env: ComputeEnv) -> None:
    admin = await env.admin()
    flavor = (await env.create_flavor("specs", id="specs"))["flavor"]["id"]
    path = f"/flavors/{flavor}/os-extra_specs"
    assert (await env.call(admin, "GET", path)).json() == {"extra_specs": {}}
    r = await env.call(admin, "POST", path, json={"extra_specs": {"hw:cpu_policy": "dedicated", "k 1": 2}})
    assert r.json() == {"extra_specs": {"hw:cpu_policy": "dedicated", "k 1": 2}}  # echoed as sent, as Nova
    r = await env.call(admin, "POST", path, json={"extra_specs": {"k 1": "3", "other": "x"}})
    member = await env.user("alice")
    assert (await env.call(member, "GET", path)).json() == {
        "extra_specs": {"hw:cpu_policy": "dedicated", "k 1": "3", "other": "x"}}
    assert (await env.call(member, "GET", f"{path}/k%201")).json() == {"k 1": "3"}
    r = await env.call(admin, "PUT", f"{path}/other", json={"other": "y"})
    assert r.json() == {"other": "y"}
    r = await env.call(admin, "PUT", f"{path}/other", json={"different": "y"}, expect=400)
    assert fault(r, "badRequest", 400) == "Request body and URI mismatch"
    await env.call(admin, "PUT", f"{path}/other", json={"other": "y", "more": "z"}, expect=400)
    await env.call(admin, "PUT", f"{path}/other", json={}, expect=400)
    r = await env.call(admin, "DELETE", f"{path}/other")
    assert r.content == b""
    r = await env.call(member, "GET", f"{path}/other", expect=404)
    assert fault(r, "itemNotFound", 404) == f"Flavor {flavor} has no extra specs with key other."
    r = await env.call(admin, "DELETE", f"{path}/other", expect=404)
    assert fault(r, "itemNotFound", 404) == f"Flavor {flavor} has no extra specs with key other."
    # visible in the flavor itself from 2.61
    r = await env.call(member, "GET", f"/flavors/{flavor}", version="2.61")
    assert r.json()["flavor"]["extra_specs"] == {"hw:cpu_policy": "dedicated", "k 1": "3"}


async def test_extra_specs_need_admin_to_change(env: ComputeEnv) -> None:
    member = await env.user("alice")
    await env.call(member, "POST", "/flavors/1/os-extra_specs", json={"extra_specs": {"a": "b"}}, expect=403)
    await env.call(member, "PUT", "/flavors/1/os-extra_specs/a", json={"a": "b"}, expect=403)
    await env.call(member, "DELETE", "/flavors/1/os-extra_specs/a", expect=403)
    await env.call(member, "GET", "/flavors/missing/os-extra_specs", expect=404)


async def test_extra_specs_bad_input(env: ComputeEnv) -> None:
    admin = await env.admin()
    path = "/flavors/1/os-extra_specs"
    for body in ({"extra_specs": {"bad/key": "x"}}, {"extra_specs": {"k": True}}, {"extra_specs": {"k": None}},
                 {"extra_specs": {"k": "v" * 256}}, {"extra_specs": ["k"]}, {"specs": {}}, [1], "x"):
        fault(await env.call(admin, "POST", path, json=body, expect=400), "badRequest", 400)
    fault(await env.call(admin, "POST", path, content=b"{not json", expect=400), "badRequest", 400)


async def test_known_extra_specs_are_validated_from_286(env: ComputeEnv) -> None:
    admin = await env.admin()
    path = "/flavors/1/os-extra_specs"
    bad = {"extra_specs": {"hw:cpu_policy": "fastest"}}
    await env.call(admin, "POST", path, json=bad, version="2.85")
    r = await env.call(admin, "POST", path, json=bad, version="2.86", expect=400)
    assert fault(r, "badRequest", 400) == "Validation failed; 'fastest' is not one of: dedicated, shared, mixed."
    r = await env.call(admin, "PUT", f"{path}/hw:numa_nodes", json={"hw:numa_nodes": "0"}, version="2.86",
                       expect=400)
    assert "less than the min value" in fault(r, "badRequest", 400)
    for ok in ({"hw:numa_nodes": "2"}, {"hw_rng:allowed": "True"}, {"resources:VCPU": "1"},
               {"trait:HW_CPU_X86_AVX2": "required"}, {"my:own": "anything"}, {"plain": "x"}):
        await env.call(admin, "POST", path, json={"extra_specs": ok}, version="2.86")


async def test_private_flavor_access(env: ComputeEnv) -> None:
    admin = await env.admin()
    alice = await env.user("alice", "alpha")
    bob = await env.user("bob", "beta")
    private = (await env.create_flavor("private", id="priv", **{"os-flavor-access:is_public": False}))["flavor"]
    assert private["os-flavor-access:is_public"] is False
    await env.call(alice, "GET", "/flavors/priv", expect=404)
    assert "priv" not in [f["id"] for f in (await env.call(alice, "GET", "/flavors")).json()["flavors"]]
    assert (await env.call(admin, "GET", "/flavors/priv/os-flavor-access")).json() == {"flavor_access": []}

    r = await env.call(admin, "POST", "/flavors/priv/action",
                       json={"addTenantAccess": {"tenant": alice.project_id}})
    assert r.json() == {"flavor_access": [{"flavor_id": "priv", "tenant_id": alice.project_id}]}
    assert (await env.call(alice, "GET", "/flavors/priv")).json()["flavor"]["name"] == "private"
    assert "priv" in [f["id"] for f in (await env.call(alice, "GET", "/flavors")).json()["flavors"]]
    await env.call(bob, "GET", "/flavors/priv", expect=404)
    r = await env.call(admin, "POST", "/flavors/priv/action", json={"addTenantAccess": {"tenant": alice.project_id}},
                       expect=409)
    assert fault(r, "conflictingRequest", 409) == (
        f"Flavor access already exists for flavor priv and project {alice.project_id} combination.")

    r = await env.call(admin, "POST", "/flavors/priv/action",
                       json={"removeTenantAccess": {"tenant": alice.project_id}})
    assert r.json() == {"flavor_access": []}
    await env.call(alice, "GET", "/flavors/priv", expect=404)
    r = await env.call(admin, "POST", "/flavors/priv/action",
                       json={"removeTenantAccess": {"tenant": alice.project_id}}, expect=404)
    assert fault(r, "itemNotFound", 404) == f"Flavor access not found for priv / {alice.project_id} combination."


async def test_admin_lists_private_flavors_with_is_public(env: ComputeEnv) -> None:
    admin = await env.admin()
    await env.create_flavor("hidden", id="hidden", **{"os-flavor-access:is_public": "false"})

    async def ids(**params: str) -> set[str]:
        r = await env.call(admin, "GET", "/flavors", params=params)
        return {f["id"] for f in r.json()["flavors"]}

    assert "hidden" not in await ids()
    assert await ids(is_public="false") == {"hidden"}
    assert "hidden" in await ids(is_public="None") and "1" in await ids(is_public="none")
    fault(await env.call(admin, "GET", "/flavors", params={"is_public": "maybe"}, expect=400), "badRequest", 400)
    # a member asking for private flavors still only gets public ones
    alice = await env.user("alice")
    r = await env.call(alice, "GET", "/flavors", params={"is_public": "false"})
    assert "hidden" not in {f["id"] for f in r.json()["flavors"]} and r.json()["flavors"]


async def test_access_rules(env: ComputeEnv) -> None:
    admin = await env.admin()
    alice = await env.user("alice")
    r = await env.call(admin, "GET", "/flavors/1/os-flavor-access", expect=404)
    assert fault(r, "itemNotFound", 404) == "Access list not available for public flavors."
    r = await env.call(admin, "POST", "/flavors/1/action", json={"addTenantAccess": {"tenant": alice.project_id}},
                       version="2.7", expect=409)
    assert fault(r, "conflictingRequest", 409) == "Can not add access to a public flavor."
    # before 2.7 Nova accepted it (and it changes nothing for a public flavor)
    await env.call(admin, "POST", "/flavors/1/action", json={"addTenantAccess": {"tenant": alice.project_id}},
                   version="2.6")
    await env.create_flavor("p2", id="p2", **{"os-flavor-access:is_public": False})
    r = await env.call(admin, "POST", "/flavors/p2/action", json={"addTenantAccess": {"tenant": "no-such-project"}},
                       expect=400)
    assert fault(r, "badRequest", 400) == "Project ID no-such-project is not a valid project."
    r = await env.call(admin, "POST", "/flavors/p2/action", json={"frobnicate": {}}, expect=400)
    assert fault(r, "badRequest", 400) == "There is no such action: frobnicate"
    r = await env.call(admin, "POST", "/flavors/p2/action", json={"addTenantAccess": {}}, expect=400)
    assert fault(r, "badRequest", 400) == "'tenant' is a required property"
    await env.call(admin, "POST", "/flavors/p2/action", json={"a": 1, "b": 2}, expect=400)
    await env.call(alice, "POST", "/flavors/p2/action", json={"addTenantAccess": {"tenant": alice.project_id}},
                   expect=403)
    await env.call(alice, "GET", "/flavors/p2/os-flavor-access", expect=403)
    await env.call(admin, "POST", "/flavors/missing/action", json={"addTenantAccess": {"tenant": alice.project_id}},
                   expect=404)
