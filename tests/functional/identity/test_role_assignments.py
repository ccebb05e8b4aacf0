"""``GET /v3/role_assignments``: filters, ``include_names`` and ``effective``."""

from __future__ import annotations

from typing import Any

from kumotest import Cloud

V3 = "/identity/v3"
BASE = "http://kumo.test/identity/v3"


async def _setup(cloud: Cloud) -> dict[str, Any]:
    """dave: member on p1 directly; group ``devs`` (holding dave): reader on the Default domain."""
    admin = await cloud.admin()
    user = await cloud.make_user("dave", "dave-pw", project="p1", role="member", headers=admin)
    group = await cloud.identity.groups.create({"name": "devs"})
    await cloud.identity.groups.add_user(group["id"], user["id"])
    roles = {x["name"]: x["id"] for x in (await cloud.client.get(f"{V3}/roles", headers=admin)).json()["roles"]}
    r = await cloud.client.put(f"{V3}/domains/default/groups/{group['id']}/roles/{roles['reader']}", headers=admin)
    assert r.status_code == 204
    project = (await cloud.client.get(f"{V3}/projects", params={"name": "p1"}, headers=admin)).json()["projects"][0]
    return {"admin": admin, "user": user["id"], "group": group["id"], "project": project["id"], "roles": roles}


async def _list(cloud: Cloud, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    r = await cloud.client.get(f"{V3}/role_assignments", params=params, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["links"]["self"].startswith(f"{BASE}/role_assignments")
    return r.json()["role_assignments"]  # type: ignore[no-any-return]


async def test_filters(cloud: Cloud) -> None:
    s = await _setup(cloud)
    mine = await _list(cloud, s["admin"], **{"user.id": s["user"]})
    assert mine == [{
        "user": {"id": s["user"]}, "role": {"id": s["roles"]["member"]}, "scope": {"project": {"id": s["project"]}},
        "links": {"assignment": f"{BASE}/projects/{s['project']}/users/{s['user']}/roles/{s['roles']['member']}"},
    }]
    on_project = await _list(cloud, s["admin"], **{"scope.project.id": s["project"]})
    assert [(a["user"]["id"], a["role"]["id"]) for a in on_project] == [(s["user"], s["roles"]["member"])]
    by_group = await _list(cloud, s["admin"], **{"group.id": s["group"]})
    assert by_group == [{
        "group": {"id": s["group"]}, "role": {"id": s["roles"]["reader"]}, "scope": {"domain": {"id": "default"}},
        "links": {"assignment": f"{BASE}/domains/default/groups/{s['group']}/roles/{s['roles']['reader']}"},
    }]
    admins = await _list(cloud, s["admin"], **{"role.id": s["roles"]["admin"]})
    assert {next(iter(a["scope"])) for a in admins} == {"project", "system"}  # bootstrap's admin grants
    assert all(a["user"]["id"] != s["user"] for a in admins)
    both = await _list(cloud, s["admin"], **{"user.id": s["user"], "role.id": s["roles"]["admin"]})
    assert both == []


async def test_include_names(cloud: Cloud) -> None:
    s = await _setup(cloud)
    [entry] = await _list(cloud, s["admin"], include_names="True", **{"user.id": s["user"]})
    domain = {"id": "default", "name": "Default"}
    assert entry["user"] == {"id": s["user"], "name": "dave", "domain": domain}
    assert entry["scope"]["project"] == {"id": s["project"], "name": "p1", "domain": domain}
    assert entry["role"] == {"id": s["roles"]["member"], "name": "member"}
    [group_entry] = await _list(cloud, s["admin"], include_names="1", **{"group.id": s["group"]})
    assert group_entry["group"] == {"id": s["group"], "name": "devs", "domain": domain}
    assert group_entry["scope"]["domain"] == domain


async def test_effective_expands_groups_and_implied_roles(cloud: Cloud) -> None:
    s = await _setup(cloud)
    entries = await _list(cloud, s["admin"], effective="", **{"user.id": s["user"]})
    assert all("group" not in e for e in entries)
    got = {(next(iter(e["scope"])), e["role"]["id"]): e["links"] for e in entries}
    member, reader = s["roles"]["member"], s["roles"]["reader"]
    assert set(got) == {("project", member), ("project", reader), ("domain", reader)}
    direct = f"{BASE}/projects/{s['project']}/users/{s['user']}/roles/{member}"
    assert got[("project", member)] == {"assignment": direct}
    assert got[("project", reader)] == {"assignment": direct, "prior_role": f"{BASE}/roles/{member}"}
    assert got[("domain", reader)] == {
        "assignment": f"{BASE}/domains/default/groups/{s['group']}/roles/{reader}",
        "membership": f"{BASE}/groups/{s['group']}/users/{s['user']}"}
    r = await cloud.client.get(f"{V3}/role_assignments", params={"effective": "", "group.id": s["group"]},
                               headers=s["admin"])
    assert r.status_code == 400


async def test_effective_inherited_grant_lands_on_projects(cloud: Cloud) -> None:
    s = await _setup(cloud)
    url = f"{V3}/OS-INHERIT/domains/default/groups/{s['group']}/roles/{s['roles']['admin']}/inherited_to_projects"
    assert (await cloud.client.put(url, headers=s["admin"])).status_code == 204
    raw = await _list(cloud, s["admin"], **{"group.id": s["group"], "scope.OS-INHERIT:inherited_to": "projects"})
    assert [a["scope"] for a in raw] == [{"domain": {"id": "default"}, "OS-INHERIT:inherited_to": "projects"}]
    effective = await _list(cloud, s["admin"], effective="",
                            **{"user.id": s["user"], "scope.project.id": s["project"]})
    assert {e["role"]["id"] for e in effective} == {s["roles"][n] for n in ("admin", "member", "reader")}


async def test_role_assignments_need_a_reader(cloud: Cloud) -> None:
    await _setup(cloud)
    token = await cloud.token("dave", "dave-pw", project="p1")
    r = await cloud.client.get(f"{V3}/role_assignments", headers={"X-Auth-Token": token})
    assert r.status_code == 403
