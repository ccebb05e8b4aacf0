"""``/v3/domains``: CRUD, filters, errors, and what disabling a domain does."""

from __future__ import annotations

from typing import Any

from kumotest import Cloud

V3 = "/identity/v3"


async def create_domain(cloud: Cloud, admin: dict[str, str], **fields: Any) -> dict[str, Any]:
    r = await cloud.client.post(f"{V3}/domains", headers=admin, json={"domain": fields})
    assert r.status_code == 201, r.text
    return r.json()["domain"]  # type: ignore[no-any-return]


async def test_domain_crud(cloud: Cloud) -> None:
    admin = await cloud.admin()
    r = await cloud.client.post(f"{V3}/domains", headers=admin,
                                json={"domain": {"name": "acme", "description": "Acme Corp"}})
    assert r.status_code == 201
    domain = r.json()["domain"]
    assert domain["name"] == "acme" and domain["description"] == "Acme Corp" and domain["enabled"] is True
    assert domain["links"]["self"] == f"http://kumo.test{V3}/domains/{domain['id']}"

    r = await cloud.client.get(f"{V3}/domains/{domain['id']}", headers=admin)
    assert r.status_code == 200 and r.json()["domain"]["name"] == "acme"

    r = await cloud.client.patch(f"{V3}/domains/{domain['id']}", headers=admin,
                                 json={"domain": {"description": "renamed", "enabled": False}})
    assert r.status_code == 200
    assert r.json()["domain"]["description"] == "renamed" and r.json()["domain"]["enabled"] is False

    assert (await cloud.client.delete(f"{V3}/domains/{domain['id']}", headers=admin)).status_code == 204
    r = await cloud.client.get(f"{V3}/domains/{domain['id']}", headers=admin)
    assert r.status_code == 404
    error = r.json()["error"]
    assert error["code"] == 404 and error["title"] == "Not Found" and domain["id"] in error["message"]

    fixed = await create_domain(cloud, admin, name="fixed", explicit_domain_id="d0f1x3d")
    assert fixed["id"] == "d0f1x3d" and "explicit_domain_id" not in fixed
    assert (await cloud.client.get(f"{V3}/domains/d0f1x3d", headers=admin)).status_code == 200


async def test_list_domains_with_filters(cloud: Cloud) -> None:
    admin = await cloud.admin()
    await create_domain(cloud, admin, name="acme")
    await create_domain(cloud, admin, name="acme-labs", enabled=False)

    async def names(query: str = "") -> set[str]:
        r = await cloud.client.get(f"{V3}/domains?{query}", headers=admin)
        assert r.status_code == 200, r.text
        return {d["name"] for d in r.json()["domains"]}

    assert await names() == {"Default", "acme", "acme-labs"}
    assert await names("name=acme") == {"acme"}
    assert await names("name__startswith=acme") == {"acme", "acme-labs"}
    assert await names("enabled=false") == {"acme-labs"}


async def test_domain_errors(cloud: Cloud) -> None:
    admin = await cloud.admin()
    domain = await create_domain(cloud, admin, name="acme")
    r = await cloud.client.post(f"{V3}/domains", headers=admin, json={"domain": {"name": "acme"}})
    assert r.status_code == 409 and r.json()["error"]["code"] == 409
    for method, body in (("GET", None), ("PATCH", {"domain": {"description": "x"}}), ("DELETE", None)):
        r = await cloud.client.request(method, f"{V3}/domains/nope", headers=admin, json=body)
        assert r.status_code == 404, method
    headers = {**admin, "Content-Type": "application/json"}
    for content in (b'{"domain": {"name": 5}}', b'{"domain": {"description": "x"}}',
                    b'{"domain": {"name": "x", "enabled": "yes"}}', b'{"domain": {"name": "x"}, "y": 1}',
                    b'not json'):
        r = await cloud.client.post(f"{V3}/domains", headers=headers, content=content)
        assert r.status_code == 400, (content, r.text)
    r = await cloud.client.delete(f"{V3}/domains/{domain['id']}", headers=admin)
    assert r.status_code == 403  # Keystone: disable it first
    assert r.json()["error"]["title"] == "Forbidden"


async def test_member_cannot_manage_domains(cloud: Cloud) -> None:
    admin = await cloud.admin()
    domain = await create_domain(cloud, admin, name="acme", enabled=False)
    await cloud.make_user("plain", "pw-plain", project="demo", headers=admin)
    member = {"X-Auth-Token": await cloud.token("plain", "pw-plain", project="demo")}
    assert (await cloud.client.post(f"{V3}/domains", headers=member,
                                    json={"domain": {"name": "mine"}})).status_code == 403
    assert (await cloud.client.delete(f"{V3}/domains/{domain['id']}", headers=member)).status_code == 403
    assert (await cloud.client.get(f"{V3}/domains", headers=member)).status_code == 403
    assert (await cloud.client.get(f"{V3}/domains/{domain['id']}", headers=member)).status_code == 403


async def test_disabling_domain_revokes_its_users_tokens(cloud: Cloud) -> None:
    admin = await cloud.admin()
    domain = await create_domain(cloud, admin, name="acme")
    r = await cloud.client.post(f"{V3}/users", headers=admin,
                                json={"user": {"name": "wile", "domain_id": domain["id"], "password": "pw-wile"}})
    assert r.status_code == 201 and r.json()["user"]["domain_id"] == domain["id"]
    auth = {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": "wile", "domain": {"name": "acme"}, "password": "pw-wile"}}}}}
    r = await cloud.client.post(f"{V3}/auth/tokens", json=auth)
    assert r.status_code == 201
    token = r.headers["X-Subject-Token"]

    r = await cloud.client.patch(f"{V3}/domains/{domain['id']}", headers=admin, json={"domain": {"enabled": False}})
    assert r.status_code == 200
    r = await cloud.client.get(f"{V3}/auth/tokens", headers={**admin, "X-Subject-Token": token})
    assert r.status_code == 404
    assert (await cloud.client.post(f"{V3}/auth/tokens", json=auth)).status_code == 401
