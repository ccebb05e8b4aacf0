"""Role grants on projects, domains and the system, direct and inherited (OS-INHERIT)."""

from __future__ import annotations

from typing import Any

from kumotest import Cloud

V3 = "/identity/v3"


async def _setup(cloud: Cloud) -> dict[str, Any]:
    """Admin headers, a user ``carol`` with no roles, a group holding her, project ``p1``, role ids."""
    admin = await cloud.admin()
    user = await cloud.make_user("carol", "carol-pw", headers=admin)
    group = await cloud.identity.groups.create({"name": "team"})
    await cloud.identity.groups.add_user(group["id"], user["id"])
    r = await cloud.client.post(f"{V3}/projects", headers=admin, json={"project": {"name": "p1"}})
    assert r.status_code == 201, r.text
    roles = {x["name"]: x["id"] for x in (await cloud.client.get(f"{V3}/roles", headers=admin)).json()["roles"]}
    return {"admin": admin, "user": user["id"], "group": group["id"], "project": r.json()["project"]["id"],
            "roles": roles}


async def _lifecycle(cloud: Cloud, headers: dict[str, str], base: str, role_id: str, tail: str = "") -> None:
    """PUT, check (GET and HEAD), list, DELETE, check again: Keystone's 204s and 404."""
    url = f"{base}/{role_id}{tail}"
    assert (await cloud.client.put(url, headers=headers)).status_code == 204
    assert (await cloud.client.put(url, headers=headers)).status_code == 204  # granting twice is fine
    assert (await cloud.client.get(url, headers=headers)).status_code == 204
    assert (await cloud.client.head(url, headers=headers)).status_code == 204
    r = await cloud.client.get(f"{base}{tail}", headers=headers)
    assert r.status_code == 200, r.text
    assert [x["id"] for x in r.json()["roles"]] == [role_id]
    assert r.json()["roles"][0]["links"]["self"] == f"http://kumo.test{V3}/roles/{role_id}"
    assert r.json()["links"]["self"] == f"http://kumo.test{base}{tail}"
    assert (await cloud.client.delete(url, headers=headers)).status_code == 204
    r = await cloud.client.get(url, headers=headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == 404
    assert (await cloud.client.delete(url, headers=headers)).status_code == 404
    assert (await cloud.client.get(f"{base}{tail}", headers=headers)).json()["roles"] == []


async def test_grant_lifecycle_every_actor_and_target(cloud: Cloud) -> None:
    s = await _setup(cloud)
    reader = s["roles"]["reader"]
    for actor in ("users", "groups"):
        actor_id = s["user"] if actor == "users" else s["group"]
        await _lifecycle(cloud, s["admin"], f"{V3}/projects/{s['project']}/{actor}/{actor_id}/roles", reader)
        await _lifecycle(cloud, s["admin"], f"{V3}/domains/default/{actor}/{actor_id}/roles", reader)
        await _lifecycle(cloud, s["admin"], f"{V3}/system/{actor}/{actor_id}/roles", reader)
        await _lifecycle(cloud, s["admin"], f"{V3}/OS-INHERIT/domains/default/{actor}/{actor_id}/roles", reader,
                         "/inherited_to_projects")
        await _lifecycle(cloud, s["admin"], f"{V3}/OS-INHERIT/projects/{s['project']}/{actor}/{actor_id}/roles",
                         reader, "/inherited_to_projects")


async def test_grant_to_missing_things_is_404(cloud: Cloud) -> None:
    s = await _setup(cloud)
    base = f"{V3}/projects/{s['project']}/users/{s['user']}/roles"
    r = await cloud.client.put(f"{base}/nope", headers=s["admin"])
    assert r.status_code == 404 and r.json()["error"]["message"] == "Could not find role: nope."
    r = await cloud.client.put(f"{V3}/projects/nope/users/{s['user']}/roles/{s['roles']['member']}", headers=s["admin"])
    assert r.status_code == 404 and "project" in r.json()["error"]["message"]
    r = await cloud.client.put(f"{V3}/projects/{s['project']}/users/nope/roles/{s['roles']['member']}",
                               headers=s["admin"])
    assert r.status_code == 404 and "user" in r.json()["error"]["message"]
    r = await cloud.client.get(f"{V3}/domains/nope/groups/{s['group']}/roles", headers=s["admin"])
    assert r.status_code == 404


async def test_group_grant_gives_project_and_domain_tokens(cloud: Cloud) -> None:
    s = await _setup(cloud)
    await cloud.token("carol", "carol-pw", project="p1", expect=401)
    member = s["roles"]["member"]
    r = await cloud.client.put(f"{V3}/projects/{s['project']}/groups/{s['group']}/roles/{member}", headers=s["admin"])
    assert r.status_code == 204
    token = await cloud.token("carol", "carol-pw", project="p1")
    r = await cloud.client.get(f"{V3}/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token})
    assert {x["name"] for x in r.json()["token"]["roles"]} == {"member", "reader"}

    await cloud.token("carol", "carol-pw", project=None, domain="Default", expect=401)
    r = await cloud.client.put(f"{V3}/domains/default/users/{s['user']}/roles/{s['roles']['reader']}",
                               headers=s["admin"])
    assert r.status_code == 204
    token = await cloud.token("carol", "carol-pw", project=None, domain="Default")
    r = await cloud.client.get(f"{V3}/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token})
    assert r.json()["token"]["domain"] == {"id": "default", "name": "Default"}
    assert [x["name"] for x in r.json()["token"]["roles"]] == ["reader"]


async def test_revoking_the_only_role_invalidates_tokens(cloud: Cloud) -> None:
    s = await _setup(cloud)
    url = f"{V3}/projects/{s['project']}/users/{s['user']}/roles/{s['roles']['member']}"
    assert (await cloud.client.put(url, headers=s["admin"])).status_code == 204
    token = await cloud.token("carol", "carol-pw", project="p1")
    validate = {**s["admin"], "X-Subject-Token": token}
    assert (await cloud.client.get(f"{V3}/auth/tokens", headers=validate)).status_code == 200

    assert (await cloud.client.delete(url, headers=s["admin"])).status_code == 204
    assert (await cloud.client.get(f"{V3}/auth/tokens", headers=validate)).status_code == 404
    r = await cloud.client.get(f"{V3}/projects/{s['project']}", headers={"X-Auth-Token": token})
    assert r.status_code == 401
    await cloud.token("carol", "carol-pw", project="p1", expect=401)


async def test_inherited_domain_grant_reaches_projects(cloud: Cloud) -> None:
    s = await _setup(cloud)
    url = f"{V3}/OS-INHERIT/domains/default/users/{s['user']}/roles/{s['roles']['member']}/inherited_to_projects"
    assert (await cloud.client.put(url, headers=s["admin"])).status_code == 204
    # Existing and future projects of the domain, but not the domain itself.
    await cloud.token("carol", "carol-pw", project="p1")
    r = await cloud.client.post(f"{V3}/projects", headers=s["admin"], json={"project": {"name": "p2"}})
    assert r.status_code == 201
    token = await cloud.token("carol", "carol-pw", project="p2")
    r = await cloud.client.get(f"{V3}/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token})
    assert {x["name"] for x in r.json()["token"]["roles"]} == {"member", "reader"}
    await cloud.token("carol", "carol-pw", project=None, domain="Default", expect=401)
    r = await cloud.client.get(f"{V3}/domains/default/users/{s['user']}/roles", headers=s["admin"])
    assert r.json()["roles"] == []  # the inherited grant is not a direct domain grant


async def test_system_grant_gives_system_scoped_token(cloud: Cloud) -> None:
    s = await _setup(cloud)
    await cloud.token("carol", "carol-pw", project=None, system=True, expect=401)
    url = f"{V3}/system/users/{s['user']}/roles/{s['roles']['reader']}"
    assert (await cloud.client.put(url, headers=s["admin"])).status_code == 204
    token = await cloud.token("carol", "carol-pw", project=None, system=True)
    r = await cloud.client.get(f"{V3}/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token})
    body = r.json()["token"]
    assert body["system"] == {"all": True} and [x["name"] for x in body["roles"]] == ["reader"]
    # A system reader may read grants but not make them.
    reader = {"X-Auth-Token": token}
    assert (await cloud.client.get(url, headers=reader)).status_code == 204
    assert (await cloud.client.put(f"{V3}/system/users/{s['user']}/roles/{s['roles']['admin']}",
                                   headers=reader)).status_code == 403
