"""``/v3/groups``: CRUD, filters, errors, membership and roles through groups."""

from __future__ import annotations

from typing import Any

from kumotest import Cloud

V3 = "/identity/v3"


async def create_group(cloud: Cloud, admin: dict[str, str], **fields: Any) -> dict[str, Any]:
    r = await cloud.client.post(f"{V3}/groups", headers=admin, json={"group": fields})
    assert r.status_code == 201, r.text
    return r.json()["group"]  # type: ignore[no-any-return]


async def create_user(cloud: Cloud, admin: dict[str, str], name: str, password: str = "pw") -> dict[str, Any]:
    r = await cloud.client.post(f"{V3}/users", headers=admin, json={"user": {"name": name, "password": password}})
    assert r.status_code == 201, r.text
    return r.json()["user"]  # type: ignore[no-any-return]


async def test_group_crud(cloud: Cloud) -> None:
    admin = await cloud.admin()
    r = await cloud.client.post(f"{V3}/groups", headers=admin,
                                json={"group": {"name": "ops", "description": "operators"}})
    assert r.status_code == 201
    group = r.json()["group"]
    assert group["name"] == "ops" and group["domain_id"] == "default" and group["description"] == "operators"
    assert group["links"]["self"] == f"http://kumo.test{V3}/groups/{group['id']}"

    r = await cloud.client.get(f"{V3}/groups/{group['id']}", headers=admin)
    assert r.status_code == 200 and r.json()["group"]["name"] == "ops"
    r = await cloud.client.get(f"{V3}/groups/{group['id']}/users", headers=admin)
    assert r.status_code == 200 and r.json()["users"] == []

    r = await cloud.client.patch(f"{V3}/groups/{group['id']}", headers=admin,
                                 json={"group": {"name": "operators", "description": "renamed"}})
    assert r.status_code == 200
    assert r.json()["group"]["name"] == "operators" and r.json()["group"]["description"] == "renamed"

    assert (await cloud.client.delete(f"{V3}/groups/{group['id']}", headers=admin)).status_code == 204
    r = await cloud.client.get(f"{V3}/groups/{group['id']}", headers=admin)
    assert r.status_code == 404
    assert r.json()["error"] == {"code": 404, "title": "Not Found", "message": r.json()["error"]["message"]}
    assert group["id"] in r.json()["error"]["message"]


async def test_list_groups_with_filters(cloud: Cloud) -> None:
    admin = await cloud.admin()
    for name in ("ops", "devops", "dev"):
        await create_group(cloud, admin, name=name)

    async def names(query: str = "") -> set[str]:
        r = await cloud.client.get(f"{V3}/groups?{query}", headers=admin)
        assert r.status_code == 200, r.text
        return {g["name"] for g in r.json()["groups"]}

    assert await names() == {"ops", "devops", "dev"}
    assert await names("name=ops") == {"ops"}
    assert await names("name__contains=ops") == {"ops", "devops"}
    assert await names("name__startswith=dev") == {"devops", "dev"}
    assert await names("domain_id=nowhere") == set()


async def test_group_errors(cloud: Cloud) -> None:
    admin = await cloud.admin()
    await create_group(cloud, admin, name="ops")
    r = await cloud.client.post(f"{V3}/groups", headers=admin, json={"group": {"name": "ops"}})
    assert r.status_code == 409
    for method, body in (("GET", None), ("PATCH", {"group": {"name": "x"}}), ("DELETE", None)):
        r = await cloud.client.request(method, f"{V3}/groups/nope", headers=admin, json=body)
        assert r.status_code == 404, method
    headers = {**admin, "Content-Type": "application/json"}
    for content in (b'{"group": {"name": 5}}', b'{"group": {"description": "x"}}', b'{"group": {"name": "x"}, "y": 1}',
                    b'{"group": ', b'{"group": {"name": ""}}'):
        r = await cloud.client.post(f"{V3}/groups", headers=headers, content=content)
        assert r.status_code == 400, (content, r.text)
        assert r.json()["error"]["code"] == 400


async def test_member_cannot_manage_groups(cloud: Cloud) -> None:
    admin = await cloud.admin()
    group = await create_group(cloud, admin, name="ops")
    await cloud.make_user("plain", "pw-plain", project="demo", headers=admin)
    member = {"X-Auth-Token": await cloud.token("plain", "pw-plain", project="demo")}
    assert (await cloud.client.post(f"{V3}/groups", headers=member,
                                    json={"group": {"name": "mine"}})).status_code == 403
    assert (await cloud.client.delete(f"{V3}/groups/{group['id']}", headers=member)).status_code == 403
    assert (await cloud.client.get(f"{V3}/groups", headers=member)).status_code == 403


async def test_membership(cloud: Cloud) -> None:
    admin = await cloud.admin()
    group = await create_group(cloud, admin, name="ops")
    other = await create_group(cloud, admin, name="other")
    alice = await create_user(cloud, admin, "alice")
    bob = await create_user(cloud, admin, "bob")
    member_url = f"{V3}/groups/{group['id']}/users/{alice['id']}"

    assert (await cloud.client.head(member_url, headers=admin)).status_code == 404
    assert (await cloud.client.put(member_url, headers=admin)).status_code == 204
    assert (await cloud.client.put(member_url, headers=admin)).status_code == 204  # idempotent
    assert (await cloud.client.put(f"{V3}/groups/{other['id']}/users/{alice['id']}", headers=admin)).status_code == 204
    assert (await cloud.client.put(f"{V3}/groups/{group['id']}/users/{bob['id']}", headers=admin)).status_code == 204
    assert (await cloud.client.head(member_url, headers=admin)).status_code == 204
    assert (await cloud.client.get(member_url, headers=admin)).status_code == 204

    r = await cloud.client.get(f"{V3}/groups/{group['id']}/users", headers=admin)
    assert r.status_code == 200
    assert {u["name"] for u in r.json()["users"]} == {"alice", "bob"}
    assert all("password" not in u for u in r.json()["users"])
    r = await cloud.client.get(f"{V3}/groups/{group['id']}/users?name=bob", headers=admin)
    assert [u["name"] for u in r.json()["users"]] == ["bob"]
    r = await cloud.client.get(f"{V3}/users/{alice['id']}/groups", headers=admin)
    assert r.status_code == 200
    assert {g["name"] for g in r.json()["groups"]} == {"ops", "other"}

    assert (await cloud.client.delete(member_url, headers=admin)).status_code == 204
    assert (await cloud.client.head(member_url, headers=admin)).status_code == 404
    assert (await cloud.client.delete(member_url, headers=admin)).status_code == 404
    r = await cloud.client.get(f"{V3}/users/{alice['id']}/groups", headers=admin)
    assert [g["name"] for g in r.json()["groups"]] == ["other"]

    assert (await cloud.client.put(f"{V3}/groups/{group['id']}/users/nope", headers=admin)).status_code == 404
    assert (await cloud.client.put(f"{V3}/groups/nope/users/{alice['id']}", headers=admin)).status_code == 404
    assert (await cloud.client.get(f"{V3}/groups/nope/users", headers=admin)).status_code == 404
    assert (await cloud.client.get(f"{V3}/users/nope/groups", headers=admin)).status_code == 404

    # deleting a group ends its memberships
    assert (await cloud.client.delete(f"{V3}/groups/{other['id']}", headers=admin)).status_code == 204
    r = await cloud.client.get(f"{V3}/users/{alice['id']}/groups", headers=admin)
    assert r.json()["groups"] == []


async def test_group_role_gives_members_a_project_token(cloud: Cloud) -> None:
    admin = await cloud.admin()
    group = await create_group(cloud, admin, name="ops")
    alice = await create_user(cloud, admin, "alice", "pw-alice")
    r = await cloud.client.post(f"{V3}/projects", headers=admin, json={"project": {"name": "demo"}})
    project = r.json()["project"]
    role = (await cloud.client.get(f"{V3}/roles?name=member", headers=admin)).json()["roles"][0]
    r = await cloud.client.put(f"{V3}/projects/{project['id']}/groups/{group['id']}/roles/{role['id']}", headers=admin)
    assert r.status_code == 204, r.text
    await cloud.token("alice", "pw-alice", project="demo", expect=401)  # not a member yet

    assert (await cloud.client.put(f"{V3}/groups/{group['id']}/users/{alice['id']}", headers=admin)).status_code == 204
    token = await cloud.token("alice", "pw-alice", project="demo")
    r = await cloud.client.get(f"{V3}/auth/tokens", headers={**admin, "X-Subject-Token": token})
    assert r.status_code == 200
    assert r.json()["token"]["project"]["id"] == project["id"]
    assert "member" in {x["name"] for x in r.json()["token"]["roles"]}
    r = await cloud.client.get(f"{V3}/users/{alice['id']}/projects", headers={"X-Auth-Token": token})
    assert [p["name"] for p in r.json()["projects"]] == ["demo"]

    # leaving the group takes the role, and the token relying on it, away
    assert (await cloud.client.delete(f"{V3}/groups/{group['id']}/users/{alice['id']}",
                                      headers=admin)).status_code == 204
    r = await cloud.client.get(f"{V3}/auth/tokens", headers={**admin, "X-Subject-Token": token})
    assert r.status_code == 404
    await cloud.token("alice", "pw-alice", project="demo", expect=401)
