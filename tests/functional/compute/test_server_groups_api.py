"""``/os-server-groups``: create/list/show/delete, policies by microversion, quota, projects and members."""

from __future__ import annotations

from typing import Any

import pytest
from computetest import ComputeEnv, fault
from kumotest import Cloud
from sqlalchemy import update
from test_server_actions import make_instance

from kumo.compute.models import Instance, Quota, ServerGroupMember
from kumo.core.db import utcnow


async def _create(env: ComputeEnv, who: Any, body: dict[str, Any], version: str | None = None,
                  expect: int = 200) -> Any:
    r = await env.call(who, "POST", "/os-server-groups", json={"server_group": body}, version=version,
                       expect=expect)
    return r.json()


async def test_create_and_show_by_microversion(cloud: Cloud, env: ComputeEnv) -> None:
    alice = await env.user("alice", "alpha")
    group = (await _create(env, alice, {"name": "web", "policies": ["anti-affinity"]}))["server_group"]
    assert group == {"id": group["id"], "name": "web", "policies": ["anti-affinity"], "members": [],
                     "metadata": {}}
    path = f"/os-server-groups/{group['id']}"
    shown = (await env.call(alice, "GET", path, version="2.13")).json()["server_group"]
    assert (shown["project_id"], shown["user_id"]) == (alice.project_id, alice.user_id)
    shown = (await env.call(alice, "GET", path, version="2.64")).json()["server_group"]
    assert set(shown) == {"id", "name", "policy", "rules", "members", "project_id", "user_id"}
    assert (shown["policy"], shown["rules"]) == ("anti-affinity", {})
    created = (await _create(env, alice, {"name": "db", "policy": "anti-affinity",
                                          "rules": {"max_server_per_host": 3}}, version="2.64"))["server_group"]
    assert (created["policy"], created["rules"]) == ("anti-affinity", {"max_server_per_host": 3})
    old = (await env.call(alice, "GET", f"/os-server-groups/{created['id']}")).json()["server_group"]
    assert old["policies"] == ["anti-affinity"]
    soft = (await _create(env, alice, {"name": "s", "policies": ["soft-affinity"]}, version="2.15"))["server_group"]
    assert soft["policies"] == ["soft-affinity"]


@pytest.mark.parametrize(("version", "body", "message"), [
    (None, {"name": "x", "policies": ["soft-affinity"]},
     "Invalid input for field/attribute policies. Value: ['soft-affinity']. "
     "'soft-affinity' is not one of ['anti-affinity', 'affinity']"),
    (None, {"name": "x", "policies": []}, "Invalid input for field/attribute policies. Value: []. [] is too short"),
    (None, {"name": "x"}, "'policies' is a required property"),
    (None, {"policies": ["affinity"]}, "'name' is a required property"),
    (None, {"name": " x", "policies": ["affinity"]},
     "An invalid 'name' value was provided. The name must be: printable characters. "
     "Can not start or end with whitespace."),
    ("2.64", {"name": "x", "policies": ["affinity"]}, "'policy' is a required property"),
    ("2.64", {"name": "x", "policy": "affinity", "policies": ["affinity"]},
     "Additional properties are not allowed ('policies' was unexpected)"),
    ("2.64", {"name": "x", "policy": "affinity", "rules": {"max_server_per_host": 2}},
     "Only anti-affinity policy supports rules."),
    ("2.64", {"name": "x", "policy": "anti-affinity", "rules": {"max_server_per_host": 0}},
     "Invalid input for field/attribute max_server_per_host. Value: 0. 0 is less than the minimum of 1"),
    ("2.64", {"name": "x", "policy": "anti-affinity", "rules": {"other": 1}},
     "Additional properties are not allowed ('other' was unexpected)"),
])
async def test_create_validation(cloud: Cloud, env: ComputeEnv, version: str | None, body: dict[str, Any],
                                 message: str) -> None:
    alice = await env.user("alice", "alpha")
    r = await env.call(alice, "POST", "/os-server-groups", json={"server_group": body}, version=version,
                       expect=400)
    assert fault(r, "badRequest", 400) == message


async def test_quota(cloud: Cloud, env: ComputeEnv) -> None:
    alice = await env.user("alice", "alpha")
    async with cloud.node.db.session() as s:
        s.add(Quota(project_id=alice.project_id, resource="server_groups", hard_limit=1))
    await _create(env, alice, {"name": "one", "policies": ["affinity"]})
    r = await env.call(alice, "POST", "/os-server-groups",
                       json={"server_group": {"name": "two", "policies": ["affinity"]}}, expect=403)
    assert fault(r, "forbidden", 403) == "Quota exceeded, too many server groups."


async def test_projects_policy_and_all_projects(cloud: Cloud, env: ComputeEnv) -> None:
    alice = await env.user("alice", "alpha")
    bob = await env.user("bob", "beta")
    rita = await env.user("rita", "alpha", role="reader")
    admin = await env.admin()
    mine = (await _create(env, alice, {"name": "a", "policies": ["affinity"]}))["server_group"]
    await _create(env, bob, {"name": "b", "policies": ["affinity"]})
    path = f"/os-server-groups/{mine['id']}"
    r = await env.call(bob, "GET", path, expect=404)
    assert fault(r, "itemNotFound", 404) == f"Instance group {mine['id']} could not be found."
    await env.call(bob, "DELETE", path, expect=404)
    await env.call(rita, "GET", path)
    await env.call(rita, "DELETE", path, expect=403)
    r = await env.call(rita, "POST", "/os-server-groups",
                       json={"server_group": {"name": "r", "policies": ["affinity"]}}, expect=403)
    assert "os-server-groups:create" in fault(r, "forbidden", 403)
    names = [g["name"] for g in (await env.call(alice, "GET", "/os-server-groups?all_projects=1")).json()
             ["server_groups"]]
    assert names == ["a"]  # non-admins get their own, as Nova
    names = [g["name"] for g in (await env.call(admin, "GET", "/os-server-groups")).json()["server_groups"]]
    assert names == []
    r = await env.call(admin, "GET", "/os-server-groups", params={"all_projects": "True"}, version="2.13")
    assert {(g["name"], g["project_id"]) for g in r.json()["server_groups"]} == \
        {("a", alice.project_id), ("b", bob.project_id)}
    await env.call(admin, "GET", path)
    await env.call(alice, "DELETE", path, expect=204)
    await env.call(alice, "GET", path, expect=404)


async def test_limit_offset_and_strict_query(cloud: Cloud, env: ComputeEnv) -> None:
    alice = await env.user("alice", "alpha")
    for name in ("g1", "g2", "g3"):
        await _create(env, alice, {"name": name, "policies": ["affinity"]})
    all_names = [g["name"] for g in (await env.call(alice, "GET", "/os-server-groups")).json()["server_groups"]]
    assert sorted(all_names) == ["g1", "g2", "g3"]
    r = await env.call(alice, "GET", "/os-server-groups", params={"limit": "1", "offset": "1"})
    assert [g["name"] for g in r.json()["server_groups"]] == all_names[1:2]
    r = await env.call(alice, "GET", "/os-server-groups", params={"limit": "0"})
    assert len(r.json()["server_groups"]) == 3
    r = await env.call(alice, "GET", "/os-server-groups", params={"offset": "-1"}, expect=400)
    assert "does not match '^[0-9]*$'" in fault(r, "badRequest", 400)
    await env.call(alice, "GET", "/os-server-groups", params={"bogus": "1"}, version="2.74")
    r = await env.call(alice, "GET", "/os-server-groups", params={"bogus": "1"}, version="2.75", expect=400)
    assert fault(r, "badRequest", 400) == "Additional properties are not allowed ('bogus' was unexpected)"


async def test_members_hide_deleted_servers(cloud: Cloud, env: ComputeEnv) -> None:
    alice = await env.user("alice", "alpha")
    group = (await _create(env, alice, {"name": "m", "policies": ["anti-affinity"]}))["server_group"]
    live = await make_instance(cloud, alice)
    gone = await make_instance(cloud, alice)
    async with cloud.node.db.session() as s:
        s.add_all([ServerGroupMember(group_uuid=group["id"], instance_uuid=u) for u in (live, gone)])
    async with cloud.node.db.session() as s:
        await s.execute(update(Instance).where(Instance.uuid == gone).values(deleted_at=utcnow()))
    shown = (await env.call(alice, "GET", f"/os-server-groups/{group['id']}")).json()["server_group"]
    assert shown["members"] == [live]
    [listed] = (await env.call(alice, "GET", "/os-server-groups")).json()["server_groups"]
    assert listed["members"] == [live]
    await env.call(alice, "DELETE", f"/os-server-groups/{group['id']}", expect=204)
