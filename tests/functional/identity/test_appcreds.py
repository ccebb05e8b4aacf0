"""``/v3/users/{id}/application_credentials`` and authenticating with one."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kumotest import Cloud

V3 = "/identity/v3"


def appcred_auth(cred_id: str, secret: str) -> dict[str, Any]:
    return {"auth": {"identity": {"methods": ["application_credential"],
                                  "application_credential": {"id": cred_id, "secret": secret}}}}


async def member(cloud: Cloud) -> tuple[dict[str, Any], dict[str, str]]:
    """A user with the member role on project ``demo``, and a token scoped to it."""
    user = await cloud.make_user("dev", "pw-dev", project="demo")
    return user, {"X-Auth-Token": await cloud.token("dev", "pw-dev", project="demo")}


async def create_cred(cloud: Cloud, user_id: str, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    r = await cloud.client.post(f"{V3}/users/{user_id}/application_credentials", headers=headers,
                                json={"application_credential": fields})
    assert r.status_code == 201, r.text
    return r.json()["application_credential"]  # type: ignore[no-any-return]


async def test_create_list_get_delete(cloud: Cloud) -> None:
    user, headers = await member(cloud)
    base = f"{V3}/users/{user['id']}/application_credentials"
    cred = await create_cred(cloud, user["id"], headers, name="backup", description="nightly")
    assert cred["name"] == "backup" and cred["description"] == "nightly" and cred["unrestricted"] is False
    assert cred["secret"] and cred["expires_at"] is None
    assert cred["links"]["self"] == f"http://kumo.test{base}/{cred['id']}"
    assert {r["name"] for r in cred["roles"]} == {"member", "reader"}
    demo = (await cloud.client.get(f"{V3}/auth/projects", headers=headers)).json()["projects"][0]
    assert cred["project_id"] == demo["id"]

    own = await create_cred(cloud, user["id"], headers, name="mine", secret="chosen-secret")
    assert own["secret"] == "chosen-secret"

    r = await cloud.client.get(base, headers=headers)
    assert r.status_code == 200
    assert [c["name"] for c in r.json()["application_credentials"]] == ["backup", "mine"]
    assert "secret" not in r.text and cred["secret"] not in r.text
    r = await cloud.client.get(f"{base}?name=mine", headers=headers)
    assert [c["id"] for c in r.json()["application_credentials"]] == [own["id"]]

    r = await cloud.client.get(f"{base}/{cred['id']}", headers=headers)
    assert r.status_code == 200
    assert r.json()["application_credential"]["name"] == "backup" and "secret" not in r.json()["application_credential"]

    assert (await cloud.client.delete(f"{base}/{cred['id']}", headers=headers)).status_code == 204
    r = await cloud.client.get(f"{base}/{cred['id']}", headers=headers)
    assert r.status_code == 404 and r.json()["error"]["title"] == "Not Found"
    assert (await cloud.client.delete(f"{base}/{cred['id']}", headers=headers)).status_code == 404


async def test_create_errors(cloud: Cloud) -> None:
    user, headers = await member(cloud)
    base = f"{V3}/users/{user['id']}/application_credentials"
    await create_cred(cloud, user["id"], headers, name="backup")
    r = await cloud.client.post(base, headers=headers, json={"application_credential": {"name": "backup"}})
    assert r.status_code == 409
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    r = await cloud.client.post(base, headers=headers,
                                json={"application_credential": {"name": "old", "expires_at": past}})
    assert r.status_code == 400
    for body in ({"application_credential": {"name": 5}}, {"application_credential": {}},
                 {"application_credential": {"name": "x", "unknown": 1}},
                 {"application_credential": {"name": "x"}, "y": 1}):
        r = await cloud.client.post(base, headers=headers, json=body)
        assert r.status_code == 400, (body, r.text)
    r = await cloud.client.post(base, headers={**headers, "Content-Type": "application/json"}, content=b"{")
    assert r.status_code == 400


async def test_only_the_owner_creates(cloud: Cloud) -> None:
    user, headers = await member(cloud)
    admin = await cloud.admin()
    admin_id = (await cloud.client.get(f"{V3}/users?name=admin", headers=admin)).json()["users"][0]["id"]
    r = await cloud.client.post(f"{V3}/users/{admin_id}/application_credentials", headers=headers,
                                json={"application_credential": {"name": "steal"}})
    assert r.status_code == 403
    r = await cloud.client.get(f"{V3}/users/{admin_id}/application_credentials", headers=headers)
    assert r.status_code == 403
    r = await cloud.client.post(f"{V3}/users/{user['id']}/application_credentials", headers=admin,
                                json={"application_credential": {"name": "for-you"}})
    assert r.status_code == 403
    cred = await create_cred(cloud, user["id"], headers, name="backup")
    r = await cloud.client.get(f"{V3}/users/{user['id']}/application_credentials/{cred['id']}", headers=admin)
    assert r.status_code == 200  # an admin may read them


async def test_authenticate_with_appcred(cloud: Cloud) -> None:
    user, headers = await member(cloud)
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).replace(tzinfo=None).isoformat()
    cred = await create_cred(cloud, user["id"], headers, name="ro", roles=[{"name": "reader"}], expires_at=future)
    assert [r["name"] for r in cred["roles"]] == ["reader"]
    assert cred["expires_at"].startswith(future[:19])

    r = await cloud.client.post(f"{V3}/auth/tokens", json=appcred_auth(cred["id"], cred["secret"]))
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert token["methods"] == ["application_credential"]
    assert token["project"]["id"] == cred["project_id"] and token["user"]["id"] == user["id"]
    assert [x["name"] for x in token["roles"]] == ["reader"]
    assert token["application_credential"] == {"id": cred["id"], "name": "ro", "restricted": True}

    r = await cloud.client.post(f"{V3}/auth/tokens", json=appcred_auth(cred["id"], "wrong"))
    assert r.status_code == 401 and r.json()["error"]["code"] == 401
    r = await cloud.client.post(f"{V3}/auth/tokens", json=appcred_auth("nope", cred["secret"]))
    assert r.status_code == 401


async def test_restricted_appcred_cannot_make_more(cloud: Cloud) -> None:
    user, headers = await member(cloud)
    base = f"{V3}/users/{user['id']}/application_credentials"
    cred = await create_cred(cloud, user["id"], headers, name="app")
    r = await cloud.client.post(f"{V3}/auth/tokens", json=appcred_auth(cred["id"], cred["secret"]))
    cred_token = {"X-Auth-Token": r.headers["X-Subject-Token"]}
    r = await cloud.client.post(base, headers=cred_token, json={"application_credential": {"name": "child"}})
    assert r.status_code == 403
    assert (await cloud.client.delete(f"{base}/{cred['id']}", headers=cred_token)).status_code == 403
    assert (await cloud.client.get(base, headers=cred_token)).status_code == 200


async def test_deleting_appcred_revokes_its_tokens(cloud: Cloud) -> None:
    user, headers = await member(cloud)
    admin = await cloud.admin()
    cred = await create_cred(cloud, user["id"], headers, name="app")
    r = await cloud.client.post(f"{V3}/auth/tokens", json=appcred_auth(cred["id"], cred["secret"]))
    cred_token = r.headers["X-Subject-Token"]
    check = {**admin, "X-Subject-Token": cred_token}
    assert (await cloud.client.get(f"{V3}/auth/tokens", headers=check)).status_code == 200
    r = await cloud.client.delete(f"{V3}/users/{user['id']}/application_credentials/{cred['id']}", headers=headers)
    assert r.status_code == 204
    assert (await cloud.client.get(f"{V3}/auth/tokens", headers=check)).status_code == 404
    r = await cloud.client.post(f"{V3}/auth/tokens", json=appcred_auth(cred["id"], cred["secret"]))
    assert r.status_code == 401
