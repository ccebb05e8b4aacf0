"""Flavors: the defaults, CRUD, filters, sorting, paging and the fields that change by microversion."""

from __future__ import annotations

import pytest
from computetest import ComputeEnv, fault

DEFAULTS = {"1": ("m1.tiny", 1, 512, 1), "2": ("m1.small", 1, 2048, 20), "3": ("m1.medium", 2, 4096, 40),
            "4": ("m1.large", 4, 8192, 80), "5": ("m1.xlarge", 8, 16384, 160), "42": ("m1.nano", 1, 128, 1)}


async def test_default_flavors_are_bootstrapped(env: ComputeEnv) -> None:
    member = await env.user("alice")
    r = await env.call(member, "GET", "/flavors/detail")
    found = {f["id"]: (f["name"], f["vcpus"], f["ram"], f["disk"]) for f in r.json()["flavors"]}
    assert found == DEFAULTS
    # bootstrap is idempotent: a second run adds nothing, even after a default was deleted
    await env.call(await env.admin(), "DELETE", "/flavors/5", expect=202)
    assert await env.cloud.node.flavors.bootstrap_flavors() == []
    await env.call(member, "GET", "/flavors/5", expect=404)


async def test_create_show_list_delete(env: ComputeEnv) -> None:
    created = (await env.create_flavor("f1", id="f1-id", ram=256, vcpus=2, disk=3, swap=64,
                                       **{"OS-FLV-EXT-DATA:ephemeral": 4, "rxtx_factor": 2.5}))["flavor"]
    assert created == {
        "id": "f1-id", "name": "f1", "ram": 256, "disk": 3, "swap": 64, "OS-FLV-EXT-DATA:ephemeral": 4,
        "OS-FLV-DISABLED:disabled": False, "vcpus": 2, "os-flavor-access:is_public": True, "rxtx_factor": 2.5,
        "links": [{"rel": "self", "href": "http://kumo.test/compute/v2.1/flavors/f1-id"},
                  {"rel": "bookmark", "href": "http://kumo.test/compute/flavors/f1-id"}]}
    member = await env.user("alice")
    assert (await env.call(member, "GET", "/flavors/f1-id")).json()["flavor"] == created
    brief = (await env.call(member, "GET", "/flavors")).json()["flavors"]
    assert {"id": "f1-id", "name": "f1", "links": created["links"]} in brief
    await env.call(await env.admin(), "DELETE", "/flavors/f1-id", expect=202)
    r = await env.call(member, "GET", "/flavors/f1-id", expect=404)
    assert fault(r, "itemNotFound", 404) == "Flavor f1-id could not be found."
    fault(await env.call(await env.admin(), "DELETE", "/flavors/f1-id", expect=404), "itemNotFound", 404)


async def test_generated_id_numbers_and_strings(env: ComputeEnv) -> None:
    auto = (await env.create_flavor("auto"))["flavor"]
    assert len(auto["id"]) == 36 and auto["id"].count("-") == 4
    assert (await env.create_flavor("nullid", id=None))["flavor"]["id"] != auto["id"]
    assert (await env.create_flavor("numeric", id=77, ram="512", vcpus="2", disk="0"))["flavor"]["id"] == "77"
    named = (await env.create_flavor("  spaced name  ".strip(), id="a.b_c-d 1"))["flavor"]
    assert named["id"] == "a.b_c-d 1"


async def test_duplicates_are_409(env: ComputeEnv) -> None:
    await env.create_flavor("dup", id="dup-id")
    r = await env.create_flavor("dup", id="other", expect=409)
    assert fault_of(r) == ("conflictingRequest", "Flavor with name dup already exists.")
    r = await env.create_flavor("other", id="dup-id", expect=409)
    assert fault_of(r) == ("conflictingRequest", "Flavor with ID dup-id already exists.")


def fault_of(body: dict) -> tuple[str, str]:
    [(key, value)] = body.items()
    return key, value["message"]


async def test_only_admins_manage_flavors(env: ComputeEnv) -> None:
    member = await env.user("alice")
    body = {"flavor": {"name": "nope", "ram": 1, "vcpus": 1, "disk": 1}}
    r = await env.call(member, "POST", "/flavors", json=body, expect=403)
    assert "os_compute_api:os-flavor-manage:create" in fault(r, "forbidden", 403)
    await env.call(member, "DELETE", "/flavors/1", expect=403)
    await env.call(member, "PUT", "/flavors/1", version="2.55", json={"flavor": {"description": "x"}}, expect=403)
    await env.call(member, "GET", "/flavors/1")


@pytest.mark.parametrize(("version", "swap_zero", "has_description", "has_extra_specs"), [
    ("2.1", "", False, False), ("2.54", "", False, False), ("2.55", "", True, False),
    ("2.61", "", True, True), ("2.74", "", True, True), ("2.75", 0, True, True), ("2.96", 0, True, True)])
async def test_fields_by_microversion(env: ComputeEnv, version: str, swap_zero: object, has_description: bool,
                                      has_extra_specs: bool) -> None:
    admin = await env.admin()
    for path in ("/flavors/1", "/flavors/detail"):
        r = await env.call(admin, "GET", path, version=version)
        flavor = r.json()["flavor"] if "flavor" in r.json() else r.json()["flavors"][0]
        assert flavor["swap"] == swap_zero
        assert ("description" in flavor) is has_description
        assert ("extra_specs" in flavor) is has_extra_specs
    brief = (await env.call(admin, "GET", "/flavors", version=version)).json()["flavors"][0]
    assert set(brief) == ({"id", "name", "links", "description"} if has_description else {"id", "name", "links"})


async def test_extra_specs_in_flavor_follow_policy(env: ComputeEnv) -> None:
    admin = await env.admin()
    await env.call(admin, "POST", "/flavors/1/os-extra_specs", json={"extra_specs": {"hw:cpu_policy": "shared"}})
    reader = await env.user("rita", role="reader")
    r = await env.call(reader, "GET", "/flavors/1", version="2.61")
    assert r.json()["flavor"]["extra_specs"] == {"hw:cpu_policy": "shared"}
    created = await env.create_flavor("with-specs", version="2.61")
    assert created["flavor"]["extra_specs"] == {}


async def test_description_needs_255(env: ComputeEnv) -> None:
    r = await env.create_flavor("old", version="2.54", description="d", expect=400)
    assert r["badRequest"]["message"] == "Additional properties are not allowed ('description' was unexpected)"
    created = (await env.create_flavor("new", version="2.55", description="A flavor. Ünïcode ok"))["flavor"]
    assert created["description"] == "A flavor. Ünïcode ok"
    admin = await env.admin()
    # PUT exists only from 2.55, and only changes the description
    await env.call(admin, "PUT", f"/flavors/{created['id']}", version="2.54",
                   json={"flavor": {"description": "x"}}, expect=404)
    r = await env.call(admin, "PUT", f"/flavors/{created['id']}", version="2.55",
                       json={"flavor": {"description": "changed"}})
    assert r.json()["flavor"]["description"] == "changed"
    r = await env.call(admin, "PUT", f"/flavors/{created['id']}", version="2.55",
                       json={"flavor": {"description": None}})
    assert r.json()["flavor"]["description"] is None
    r = await env.call(admin, "PUT", f"/flavors/{created['id']}", version="2.55",
                       json={"flavor": {"name": "renamed", "description": "d"}}, expect=400)
    assert fault(r, "badRequest", 400) == "Additional properties are not allowed ('name' was unexpected)"
    r = await env.call(admin, "PUT", f"/flavors/{created['id']}", version="2.55", json={"flavor": {}}, expect=400)
    assert fault(r, "badRequest", 400) == "'description' is a required property"
    await env.call(admin, "PUT", "/flavors/missing", version="2.55", json={"flavor": {"description": "x"}},
                   expect=404)


async def test_filters(env: ComputeEnv) -> None:
    member = await env.user("alice")

    async def ids(**params: str) -> list[str]:
        r = await env.call(member, "GET", "/flavors", params=params)
        return [f["id"] for f in r.json()["flavors"]]

    assert await ids(minRam="4096") == ["3", "4", "5"]
    assert await ids(minDisk="40", minRam="8192") == ["4", "5"]
    assert await ids(minRam="999999") == []
    r = await env.call(member, "GET", "/flavors", params={"minRam": "lots"}, expect=400)
    assert fault(r, "badRequest", 400) == "Invalid minRam filter [lots]"
    r = await env.call(member, "GET", "/flavors", params={"minDisk": "1.5"}, expect=400)
    assert fault(r, "badRequest", 400) == "Invalid minDisk filter [1.5]"


async def test_sorting(env: ComputeEnv) -> None:
    member = await env.user("alice")

    async def ids(**params: str) -> list[str]:
        r = await env.call(member, "GET", "/flavors/detail", params=params)
        return [f["id"] for f in r.json()["flavors"]]

    assert await ids() == ["1", "2", "3", "4", "42", "5"]  # flavorid is a string, as in Nova
    assert await ids(sort_key="memory_mb") == ["42", "1", "2", "3", "4", "5"]
    assert await ids(sort_key="memory_mb", sort_dir="desc") == ["5", "4", "3", "2", "1", "42"]
    assert await ids(sort_key="name") == ["4", "3", "42", "2", "1", "5"]
    r = await env.call(member, "GET", "/flavors", params={"sort_key": "ram"}, expect=400)
    assert "sort_key" in fault(r, "badRequest", 400)
    await env.call(member, "GET", "/flavors", params={"sort_dir": "up"}, expect=400)


async def test_paging_with_links(env: ComputeEnv) -> None:
    member = await env.user("alice")
    r = await env.call(member, "GET", "/flavors", params={"limit": "2", "sort_key": "memory_mb"})
    body = r.json()
    assert [f["id"] for f in body["flavors"]] == ["42", "1"]
    [link] = body["flavors_links"]
    assert link["rel"] == "next"
    # Nova keeps the query (sorted) and appends the marker
    assert link["href"] == "http://kumo.test/compute/v2.1/flavors?limit=2&sort_key=memory_mb&marker=1"
    r = await env.call(member, "GET", "/flavors", params={"limit": "2", "marker": "1", "sort_key": "memory_mb"})
    assert [f["id"] for f in r.json()["flavors"]] == ["2", "3"]
    r = await env.call(member, "GET", "/flavors/detail", params={"limit": "10", "marker": "4"})
    assert [f["id"] for f in r.json()["flavors"]] == ["42", "5"]
    assert "flavors_links" not in r.json()
    r = await env.call(member, "GET", "/flavors/detail", params={"limit": "1"})
    assert r.json()["flavors_links"][0]["href"].startswith("http://kumo.test/compute/v2.1/flavors/detail?")
    r = await env.call(member, "GET", "/flavors", params={"marker": "nope"}, expect=400)
    assert fault(r, "badRequest", 400) == "marker [nope] not found"
    for bad in ("-1", "x", "1.5"):
        fault(await env.call(member, "GET", "/flavors", params={"limit": bad}, expect=400), "badRequest", 400)
    assert (await env.call(member, "GET", "/flavors", params={"limit": "0"})).json() == {"flavors": []}


async def test_unknown_query_parameters_from_275(env: ComputeEnv) -> None:
    member = await env.user("alice")
    await env.call(member, "GET", "/flavors", params={"bogus": "1"}, version="2.74")
    r = await env.call(member, "GET", "/flavors", params={"bogus": "1"}, version="2.75", expect=400)
    assert fault(r, "badRequest", 400) == "Additional properties are not allowed ('bogus' was unexpected)"
