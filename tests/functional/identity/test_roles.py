"""Roles and implied roles (``/v3/roles``, ``/v3/role_inferences``), as Keystone serves them."""

from __future__ import annotations

from kumotest import Cloud

V3 = "/identity/v3"


async def _role_id(cloud: Cloud, headers: dict[str, str], name: str) -> str:
    r = await cloud.client.get(f"{V3}/roles", params={"name": name}, headers=headers)
    assert r.status_code == 200, r.text
    return str(r.json()["roles"][0]["id"])


async def test_role_crud(cloud: Cloud) -> None:
    admin = await cloud.admin()
    r = await cloud.client.post(f"{V3}/roles", headers=admin, json={"role": {"name": "auditor", "description": "d"}})
    assert r.status_code == 201, r.text
    role = r.json()["role"]
    assert role["name"] == "auditor" and role["domain_id"] is None and role["description"] == "d"
    assert role["links"]["self"] == f"http://kumo.test{V3}/roles/{role['id']}"

    r = await cloud.client.get(f"{V3}/roles/{role['id']}", headers=admin)
    assert r.status_code == 200 and r.json()["role"]["name"] == "auditor"
    r = await cloud.client.get(f"{V3}/roles", params={"name": "auditor"}, headers=admin)
    assert [x["id"] for x in r.json()["roles"]] == [role["id"]]
    assert r.json()["links"]["self"] == f"http://kumo.test{V3}/roles?name=auditor"

    r = await cloud.client.patch(f"{V3}/roles/{role['id']}", headers=admin, json={"role": {"name": "auditor2"}})
    assert r.status_code == 200 and r.json()["role"]["name"] == "auditor2"

    r = await cloud.client.post(f"{V3}/roles", headers=admin, json={"role": {"name": "auditor2"}})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == 409 and r.json()["error"]["title"] == "Conflict"

    for bad in ({"name": 123}, {"name": ""}, {}, {"name": "x", "bogus": 1}):
        r = await cloud.client.post(f"{V3}/roles", headers=admin, json={"role": bad})
        assert r.status_code == 400, (bad, r.text)

    r = await cloud.client.delete(f"{V3}/roles/{role['id']}", headers=admin)
    assert r.status_code == 204
    r = await cloud.client.get(f"{V3}/roles/{role['id']}", headers=admin)
    assert r.status_code == 404
    assert r.json() == {"error": {"code": 404, "title": "Not Found",
                                  "message": f"Could not find role: {role['id']}."}}
    for method in ("PATCH", "DELETE"):
        r = await cloud.client.request(method, f"{V3}/roles/nope", headers=admin,
                                       json={"role": {"name": "x"}} if method == "PATCH" else None)
        assert r.status_code == 404


async def test_domain_specific_roles(cloud: Cloud) -> None:
    admin = await cloud.admin()
    r = await cloud.client.post(f"{V3}/roles", headers=admin, json={"role": {"name": "ops", "domain_id": "default"}})
    assert r.status_code == 201 and r.json()["role"]["domain_id"] == "default"
    global_names = {x["name"] for x in (await cloud.client.get(f"{V3}/roles", headers=admin)).json()["roles"]}
    assert "ops" not in global_names and {"admin", "member", "reader"} <= global_names
    r = await cloud.client.get(f"{V3}/roles", params={"domain_id": "default"}, headers=admin)
    assert [x["name"] for x in r.json()["roles"]] == ["ops"]
    # Keystone: a global role may not imply a domain-specific one.
    admin_id = await _role_id(cloud, admin, "admin")
    r = await cloud.client.put(f"{V3}/roles/{admin_id}/implies/{r.json()['roles'][0]['id']}", headers=admin)
    assert r.status_code == 403


async def test_bootstrap_roles_and_inferences(cloud: Cloud) -> None:
    admin = await cloud.admin()
    ids = {n: await _role_id(cloud, admin, n) for n in ("admin", "member", "reader")}
    r = await cloud.client.get(f"{V3}/role_inferences", headers=admin)
    assert r.status_code == 200
    rules = {i["prior_role"]["name"]: [x["name"] for x in i["implies"]] for i in r.json()["role_inferences"]}
    assert rules["admin"] == ["member"] and rules["member"] == ["reader"]
    assert r.json()["links"]["self"] == f"http://kumo.test{V3}/role_inferences"

    r = await cloud.client.get(f"{V3}/roles/{ids['admin']}/implies", headers=admin)
    assert r.status_code == 200
    inference = r.json()["role_inference"]
    assert inference["prior_role"]["id"] == ids["admin"]
    assert inference["implies"] == [{"id": ids["member"], "name": "member",
                                     "links": {"self": f"http://kumo.test{V3}/roles/{ids['member']}"}}]
    r = await cloud.client.head(f"{V3}/roles/{ids['member']}/implies/{ids['reader']}", headers=admin)
    assert r.status_code == 204
    r = await cloud.client.head(f"{V3}/roles/{ids['reader']}/implies/{ids['member']}", headers=admin)
    assert r.status_code == 404
    # Bootstrap roles are immutable, as keystone-manage bootstrap makes them.
    r = await cloud.client.delete(f"{V3}/roles/{ids['reader']}", headers=admin)
    assert r.status_code == 403
    r = await cloud.client.patch(f"{V3}/roles/{ids['reader']}", headers=admin, json={"role": {"name": "x"}})
    assert r.status_code == 403
    # ...until the one update an immutable role accepts clears the option.
    r = await cloud.client.patch(f"{V3}/roles/{ids['reader']}", headers=admin,
                                 json={"role": {"options": {"immutable": False}}})
    assert r.status_code == 200 and r.json()["role"]["options"] == {"immutable": False}
    r = await cloud.client.patch(f"{V3}/roles/{ids['reader']}", headers=admin, json={"role": {"description": "r"}})
    assert r.status_code == 200 and r.json()["role"]["description"] == "r"


async def test_implied_role_lifecycle_and_loop(cloud: Cloud) -> None:
    admin = await cloud.admin()
    a = (await cloud.client.post(f"{V3}/roles", headers=admin, json={"role": {"name": "a"}})).json()["role"]
    b = (await cloud.client.post(f"{V3}/roles", headers=admin, json={"role": {"name": "b"}})).json()["role"]
    url = f"{V3}/roles/{a['id']}/implies/{b['id']}"
    r = await cloud.client.put(url, headers=admin)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["role_inference"]["prior_role"] == {"id": a["id"], "name": "a", "links": {"self": a["links"]["self"]}}
    assert body["role_inference"]["implies"]["name"] == "b"
    assert body["links"]["self"] == f"http://kumo.test{url}"
    r = await cloud.client.get(url, headers=admin)
    assert r.status_code == 200 and r.json() == body

    r = await cloud.client.put(f"{V3}/roles/{b['id']}/implies/{a['id']}", headers=admin)
    assert r.status_code == 403  # a -> b -> a would be a loop
    r = await cloud.client.put(f"{V3}/roles/{a['id']}/implies/nope", headers=admin)
    assert r.status_code == 404
    r = await cloud.client.put(f"{V3}/roles/{a['id']}/implies/{await _role_id(cloud, admin, 'admin')}", headers=admin)
    assert r.status_code == 403  # Keystone's prohibited_implied_role: nothing may imply admin

    assert (await cloud.client.delete(url, headers=admin)).status_code == 204
    assert (await cloud.client.get(url, headers=admin)).status_code == 404
    assert (await cloud.client.delete(url, headers=admin)).status_code == 404


async def test_member_token_carries_implied_roles_only(cloud: Cloud) -> None:
    await cloud.make_user("alice", "alice-pw", project="demo", role="member")
    token = await cloud.token("alice", "alice-pw", project="demo")
    r = await cloud.client.get(f"{V3}/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token})
    assert r.status_code == 200, r.text
    names = {role["name"] for role in r.json()["token"]["roles"]}
    assert names == {"member", "reader"}


async def test_member_cannot_manage_roles(cloud: Cloud) -> None:
    admin = await cloud.admin()
    user = await cloud.make_user("bob", "bob-pw", project="demo", role="member", headers=admin)
    member = {"X-Auth-Token": await cloud.token("bob", "bob-pw", project="demo")}
    r = await cloud.client.post(f"{V3}/roles", headers=member, json={"role": {"name": "mine"}})
    assert r.status_code == 403
    assert r.json()["error"]["title"] == "Forbidden"
    admin_id = await _role_id(cloud, admin, "admin")
    project_id = (await cloud.client.get(f"{V3}/projects", params={"name": "demo"}, headers=admin)).json()[
        "projects"][0]["id"]
    r = await cloud.client.put(f"{V3}/projects/{project_id}/users/{user['id']}/roles/{admin_id}", headers=member)
    assert r.status_code == 403
    r = await cloud.client.delete(f"{V3}/roles/{admin_id}/implies/{await _role_id(cloud, admin, 'member')}",
                                  headers=member)
    assert r.status_code == 403
