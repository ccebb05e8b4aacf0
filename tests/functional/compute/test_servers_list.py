"""``GET /servers`` and ``/servers/detail``: filters, sorting, paging, changes-since, all_tenants, per version."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from computetest import Caller, ComputeEnv, fault
from test_servers_support import Casts, boot_id, casts, make_image, set_state

__all__ = ["casts"]


async def names(env: ComputeEnv, who: Caller, params: Any = None, version: str | None = None,
                path: str = "/servers") -> list[str]:
    r = await env.call(who, "GET", path, params=params, version=version)
    return [s["name"] for s in r.json()["servers"]]


async def three(env: ComputeEnv, who: Caller) -> list[str]:
    image = await make_image(env, who)
    return [await boot_id(env, who, image, name=n) for n in ("alpha", "beta", "gamma")]


async def test_brief_and_detail_default_order_newest_first(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice")
    ids = await three(env, alice)
    r = await env.call(alice, "GET", "/servers")
    assert [s["id"] for s in r.json()["servers"]] == ids[::-1]
    assert set(r.json()["servers"][0]) == {"id", "name", "links"}
    assert "servers_links" not in r.json()
    detail = (await env.call(alice, "GET", "/servers/detail")).json()["servers"]
    assert [s["status"] for s in detail] == ["BUILD"] * 3


async def test_projects_are_isolated_and_all_tenants_is_admin_only(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice", "alpha")
    bob = await env.user("bob", "beta")
    await three(env, alice)
    assert await names(env, bob) == []
    r = await env.call(bob, "GET", "/servers", params={"all_tenants": "1"}, expect=403)
    assert "index:get_all_tenants" in fault(r, "forbidden", 403)
    admin = await env.admin()
    assert await names(env, admin) == []  # without all_tenants an admin sees its own project only
    assert sorted(await names(env, admin, {"all_tenants": ""})) == ["alpha", "beta", "gamma"]
    assert await names(env, admin, {"all_tenants": "true", "project_id": bob.project_id}) == []
    assert len(await names(env, admin, {"all_tenants": "1", "tenant_id": alice.project_id})) == 3
    r = await env.call(admin, "GET", "/servers", params={"all_tenants": "maybe"}, expect=400)
    assert fault(r, "badRequest", 400).startswith("Invalid input received: Unrecognized value 'maybe'")


async def test_name_regex_status_and_image_filters(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice")
    ids = await three(env, alice)
    assert await names(env, alice, {"name": "^(al|ga)"}) == ["gamma", "alpha"]
    await set_state(env, ids[1])
    assert await names(env, alice, {"status": "active"}) == ["beta"]
    assert await names(env, alice, {"status": "BUILD"}) == ["gamma", "alpha"]
    assert await names(env, alice, [("status", "BUILD"), ("status", "ACTIVE")]) == ["gamma", "beta", "alpha"]
    assert await names(env, alice, {"status": "bogus"}, version="2.37") == []
    r = await env.call(alice, "GET", "/servers", params={"status": "bogus"}, version="2.38", expect=400)
    assert fault(r, "badRequest", 400) == "Invalid status value"
    r = await env.call(alice, "GET", "/servers", params={"status": "DELETED"}, expect=403)
    assert fault(r, "forbidden", 403) == "Only administrators may list deleted instances"
    other = await make_image(env, alice)
    assert await names(env, alice, {"image": other}) == []
    image = (await env.call(alice, "GET", f"/servers/{ids[0]}")).json()["server"]["image"]["id"]
    assert len(await names(env, alice, {"image": image})) == 3
    assert len(await names(env, alice, {"flavor": "1"})) == 3
    assert await names(env, alice, {"flavor": "2"}) == []
    r = await env.call(alice, "GET", "/servers", params={"name": "("}, expect=400)
    assert fault(r, "badRequest", 400) == "Invalid input for query parameters name. Value: (. '(' is not a 'regex'"


async def test_non_admin_filters_are_ignored_and_admin_filters_work(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice")
    ids = await three(env, alice)
    await set_state(env, ids[0], host="h1")
    assert len(await names(env, alice, {"host": "h1"})) == 3  # host is an admin filter: dropped
    assert len(await names(env, alice, {"bogus": "1"})) == 3
    r = await env.call(alice, "GET", "/servers", params={"bogus": "1"}, version="2.75", expect=400)
    assert fault(r, "badRequest", 400) == "Additional properties are not allowed ('bogus' was unexpected)"
    admin = await env.admin()
    assert await names(env, admin, {"all_tenants": "1", "host": "h1"}) == ["alpha"]
    assert await names(env, admin, {"all_tenants": "1", "uuid": ids[2]}) == ["gamma"]
    r = await env.call(admin, "GET", "/servers", params={"metadata": "x"}, expect=400)
    assert fault(r, "badRequest", 400) == "Invalid filter field: metadata."
    r = await env.call(alice, "GET", "/servers", params={"sort_key": "host"}, expect=403)
    assert fault(r, "forbidden", 403) == "Only administrators can sort servers by host"


async def test_sorting(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice")
    await three(env, alice)
    assert await names(env, alice, {"sort_key": "display_name", "sort_dir": "asc"}) == ["alpha", "beta", "gamma"]
    assert await names(env, alice, {"sort_key": "display_name"}) == ["gamma", "beta", "alpha"]
    assert await names(env, alice, {"sort_key": ["vcpus", "display_name"], "sort_dir": ["asc", "asc"]}) == \
        ["alpha", "beta", "gamma"]  # vcpus is one of Nova's ignored keys, with its direction
    r = await env.call(alice, "GET", "/servers", params={"sort_key": "vcpus"}, version="2.75", expect=400)
    assert "Invalid input for query parameters sort_key. Value: vcpus." in fault(r, "badRequest", 400)
    r = await env.call(alice, "GET", "/servers", params={"sort_key": "display_name", "sort_dir": "up"},
                       expect=400)
    assert fault(r, "badRequest", 400) == "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'"


async def test_pagination_with_marker_and_next_link(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice")
    ids = await three(env, alice)
    r = await env.call(alice, "GET", "/servers/detail", params={"limit": "2", "sort_key": "display_name",
                                                                 "sort_dir": "asc"})
    body = r.json()
    assert [s["name"] for s in body["servers"]] == ["alpha", "beta"]
    [link] = body["servers_links"]
    assert link["rel"] == "next" and "/compute/v2.1/servers/detail?" in link["href"]
    assert f"marker={ids[1]}" in link["href"] and "limit=2" in link["href"]
    rest = await names(env, alice, {"limit": "2", "marker": ids[1], "sort_key": "display_name",
                                    "sort_dir": "asc"}, path="/servers/detail")
    assert rest == ["gamma"]
    assert await names(env, alice, {"marker": ids[2]}) == ["beta", "alpha"]
    r = await env.call(alice, "GET", "/servers", params={"marker": "nope"}, expect=400)
    assert fault(r, "badRequest", 400) == "marker [nope] not found"
    r = await env.call(alice, "GET", "/servers", params={"limit": "x"}, expect=400)
    assert "limit" in fault(r, "badRequest", 400)


@pytest.mark.parametrize("version", ["2.1", "2.26"])
async def test_tag_filters(env: ComputeEnv, casts: Casts, version: str) -> None:
    alice = await env.user("alice")
    ids = await three(env, alice)
    for uuid, tags in zip(ids, (["a", "b"], ["b"], []), strict=True):
        await set_state(env, uuid, tags=tags)
    filters = {"tags": "a,b", "tags-any": "a,b", "not-tags": "a,b", "not-tags-any": "a"}
    found = {k: await names(env, alice, {k: v}, version=version) for k, v in filters.items()}
    if version == "2.1":
        assert all(len(v) == 3 for v in found.values())  # unknown before 2.26: ignored
        return
    assert found == {"tags": ["alpha"], "tags-any": ["beta", "alpha"], "not-tags": ["gamma", "beta"],
                     "not-tags-any": ["gamma", "beta"]}


async def test_locked_filter_and_locked_reason(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice")
    ids = await three(env, alice)
    await set_state(env, ids[0], locked=True, locked_by="owner", locked_reason="maintenance")
    assert await names(env, alice, {"locked": "true"}, version="2.73") == ["alpha"]
    assert await names(env, alice, {"locked": "0"}, version="2.73") == ["gamma", "beta"]
    r = await env.call(alice, "GET", "/servers", params={"locked": "x"}, version="2.73", expect=400)
    assert fault(r, "badRequest", 400).startswith("Invalid input received: Unrecognized value 'x'")
    shown = (await env.call(alice, "GET", f"/servers/{ids[0]}", version="2.73")).json()["server"]
    assert shown["locked"] is True and shown["locked_reason"] == "maintenance"
    assert "locked_reason" not in (await env.call(alice, "GET", f"/servers/{ids[0]}", version="2.9")).json()[
        "server"]


async def test_changes_since_shows_deleted_servers(env: ComputeEnv, casts: Casts) -> None:
    alice = await env.user("alice")
    ids = await three(env, alice)
    before = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    await env.call(alice, "DELETE", f"/servers/{ids[0]}", expect=204)
    assert await names(env, alice) == ["gamma", "beta"]
    detail = (await env.call(alice, "GET", "/servers/detail", params={"changes-since": before})).json()["servers"]
    assert {s["name"]: s["status"] for s in detail} == {"alpha": "DELETED", "beta": "BUILD", "gamma": "BUILD"}
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).isoformat()
    assert await names(env, alice, {"changes-since": future}) == []
    assert len(await names(env, alice, {"changes-before": future}, version="2.66")) == 3
    r = await env.call(alice, "GET", "/servers", params={"changes-since": future, "changes-before": before},
                       version="2.66", expect=400)
    assert fault(r, "badRequest", 400) == \
        "The value of changes-since must be less than or equal to changes-before."
    r = await env.call(alice, "GET", "/servers", params={"changes-since": "yesterday"}, expect=400)
    assert "is not a 'date-time'" in fault(r, "badRequest", 400)
    admin = await env.admin()
    deleted = await names(env, admin, {"all_tenants": "1", "deleted": "true"})
    assert deleted == ["alpha"]
