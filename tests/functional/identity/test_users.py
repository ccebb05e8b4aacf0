"""``/v3/users``: CRUD, filters, errors, self-service and what revokes a user's tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kumotest import MARIADB_SERVER, Cloud, create_mariadb_database, drop_mariadb_database, make_settings, \
    require_service, start_cloud

V3 = "/identity/v3"


def password_auth(name: str, password: str) -> dict[str, Any]:
    return {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": name, "domain": {"id": "default"}, "password": password}}}}}


async def login(cloud: Cloud, name: str, password: str) -> Any:
    return await cloud.client.post(f"{V3}/auth/tokens", json=password_auth(name, password))


async def token_status(cloud: Cloud, admin: dict[str, str], token: str) -> int:
    r = await cloud.client.get(f"{V3}/auth/tokens", headers={**admin, "X-Subject-Token": token})
    return r.status_code


async def create_user(cloud: Cloud, admin: dict[str, str], **fields: Any) -> dict[str, Any]:
    r = await cloud.client.post(f"{V3}/users", headers=admin, json={"user": fields})
    assert r.status_code == 201, r.text
    return r.json()["user"]  # type: ignore[no-any-return]


async def test_user_crud(cloud: Cloud) -> None:
    admin = await cloud.admin()
    r = await cloud.client.post(f"{V3}/users", headers=admin, json={"user": {
        "name": "alice", "password": "pw-alice-1", "description": "first", "email": "a@example.org"}})
    assert r.status_code == 201
    user = r.json()["user"]
    assert user["name"] == "alice" and user["domain_id"] == "default" and user["enabled"] is True
    assert user["description"] == "first" and user["email"] == "a@example.org"
    assert user["links"]["self"] == f"http://kumo.test{V3}/users/{user['id']}"
    assert "password" not in user and "pw-alice-1" not in r.text

    r = await cloud.client.get(f"{V3}/users/{user['id']}", headers=admin)
    assert r.status_code == 200
    assert r.json()["user"]["name"] == "alice" and "password" not in r.json()["user"]

    r = await cloud.client.patch(f"{V3}/users/{user['id']}", headers=admin,
                                 json={"user": {"description": "second", "password": "pw-alice-2"}})
    assert r.status_code == 200
    assert r.json()["user"]["description"] == "second" and "pw-alice-2" not in r.text
    assert (await login(cloud, "alice", "pw-alice-2")).status_code == 201

    r = await cloud.client.delete(f"{V3}/users/{user['id']}", headers=admin)
    assert r.status_code == 204
    r = await cloud.client.get(f"{V3}/users/{user['id']}", headers=admin)
    assert r.status_code == 404


async def test_list_users_with_filters(cloud: Cloud) -> None:
    admin = await cloud.admin()
    for name in ("alice", "alex", "bob"):
        await create_user(cloud, admin, name=name, enabled=name != "bob")
    r = await cloud.client.get(f"{V3}/users", headers=admin)
    assert r.status_code == 200
    assert {u["name"] for u in r.json()["users"]} >= {"admin", "alice", "alex", "bob"}
    assert r.json()["links"]["self"] == f"http://kumo.test{V3}/users"

    async def names(query: str) -> set[str]:
        r = await cloud.client.get(f"{V3}/users?{query}", headers=admin)
        assert r.status_code == 200, r.text
        return {u["name"] for u in r.json()["users"]}

    assert await names("name=alice") == {"alice"}
    assert await names("name__contains=al") == {"alice", "alex"}
    assert await names("name__startswith=b") == {"bob"}
    assert await names("enabled=false") == {"bob"}
    assert "bob" not in await names("enabled=true")
    assert await names("domain_id=nowhere") == set()


BAD_BODIES = [
    b'{"user": {"name": 5}}',
    b'{"user": {"description": "no name"}}',
    b'{"user": {"name": "dave", "enabled": "yes"}}',
    b'{"user": {"name": "dave"}, "extra": 1}',
    b'{"user": {"name": ',
    b'{}',
]


async def test_user_errors(cloud: Cloud) -> None:
    admin = await cloud.admin()
    for method, body in (("GET", None), ("PATCH", {"user": {"description": "x"}}), ("DELETE", None)):
        r = await cloud.client.request(method, f"{V3}/users/nope", headers=admin, json=body)
        assert r.status_code == 404, method
        error = r.json()["error"]
        assert error["code"] == 404 and error["title"] == "Not Found" and "nope" in error["message"]

    await create_user(cloud, admin, name="carol")
    r = await cloud.client.post(f"{V3}/users", headers=admin, json={"user": {"name": "carol"}})
    assert r.status_code == 409 and r.json()["error"]["code"] == 409

    headers = {**admin, "Content-Type": "application/json"}
    for content in BAD_BODIES:
        r = await cloud.client.post(f"{V3}/users", headers=headers, content=content)
        assert r.status_code == 400, (content, r.text)
        assert r.json()["error"]["code"] == 400
    r = await cloud.client.get(f"{V3}/users?name=dave", headers=admin)
    assert r.json()["users"] == []


async def test_member_cannot_manage_users(cloud: Cloud) -> None:
    admin = await cloud.admin()
    other = await create_user(cloud, admin, name="other")
    await cloud.make_user("plain", "pw-plain", project="demo", headers=admin)
    member = {"X-Auth-Token": await cloud.token("plain", "pw-plain", project="demo")}
    r = await cloud.client.post(f"{V3}/users", headers=member, json={"user": {"name": "sneaky"}})
    assert r.status_code == 403
    assert r.json()["error"]["title"] == "Forbidden"
    assert (await cloud.client.delete(f"{V3}/users/{other['id']}", headers=member)).status_code == 403
    assert (await cloud.client.get(f"{V3}/users", headers=member)).status_code == 403


async def test_user_sees_self_but_not_others(cloud: Cloud) -> None:
    admin = await cloud.admin()
    other = await create_user(cloud, admin, name="other")
    me = await create_user(cloud, admin, name="me", password="pw-me")
    mine = {"X-Auth-Token": await cloud.token("me", "pw-me", project=None)}
    r = await cloud.client.get(f"{V3}/users/{me['id']}", headers=mine)
    assert r.status_code == 200 and r.json()["user"]["name"] == "me"
    assert (await cloud.client.get(f"{V3}/users/{other['id']}", headers=mine)).status_code == 403
    assert (await cloud.client.get(f"{V3}/users/{other['id']}/groups", headers=mine)).status_code == 403
    assert (await cloud.client.get(f"{V3}/users/{me['id']}/groups", headers=mine)).status_code == 200


async def test_change_own_password(cloud: Cloud) -> None:
    admin = await cloud.admin()
    me = await create_user(cloud, admin, name="me", password="old-pw")
    old_token = await cloud.token("me", "old-pw", project=None)
    url = f"{V3}/users/{me['id']}/password"

    r = await cloud.client.post(url, headers={"X-Auth-Token": old_token},
                                json={"user": {"original_password": "wrong", "password": "new-pw"}})
    assert r.status_code == 401

    r = await cloud.client.post(url, headers={"X-Auth-Token": old_token},
                                json={"user": {"original_password": "old-pw", "password": "new-pw"}})
    assert r.status_code == 204
    assert await token_status(cloud, admin, old_token) == 404
    assert (await login(cloud, "me", "new-pw")).status_code == 201
    r = await login(cloud, "me", "old-pw")
    assert r.status_code == 401 and r.json()["error"]["code"] == 401

    # As in Keystone, the original password is the proof, not the token: another
    # user's token cannot change a password it does not know.
    victim = await create_user(cloud, admin, name="victim", password="pw-victim")
    mine = {"X-Auth-Token": await cloud.token("me", "new-pw", project=None)}
    r = await cloud.client.post(f"{V3}/users/{victim['id']}/password", headers=mine,
                                json={"user": {"original_password": "a-guess", "password": "mine-now"}})
    assert r.status_code == 401
    assert (await login(cloud, "victim", "pw-victim")).status_code == 201
    r = await cloud.client.post(url, headers=mine, json={"user": {"password": "no-original"}})
    assert r.status_code == 400


async def test_disabling_user_revokes_tokens_and_login(cloud: Cloud) -> None:
    admin = await cloud.admin()
    me = await create_user(cloud, admin, name="me", password="pw-me")
    token = await cloud.token("me", "pw-me", project=None)
    assert await token_status(cloud, admin, token) == 200
    r = await cloud.client.patch(f"{V3}/users/{me['id']}", headers=admin, json={"user": {"enabled": False}})
    assert r.status_code == 200 and r.json()["user"]["enabled"] is False
    assert await token_status(cloud, admin, token) == 404
    assert (await login(cloud, "me", "pw-me")).status_code == 401
    assert (await cloud.client.get(f"{V3}/users/{me['id']}", headers={"X-Auth-Token": token})).status_code == 401


async def test_deleting_user_revokes_tokens(cloud: Cloud) -> None:
    admin = await cloud.admin()
    me = await create_user(cloud, admin, name="me", password="pw-me")
    token = await cloud.token("me", "pw-me", project=None)
    assert (await cloud.client.delete(f"{V3}/users/{me['id']}", headers=admin)).status_code == 204
    assert await token_status(cloud, admin, token) == 404
    assert (await login(cloud, "me", "pw-me")).status_code == 401


async def test_users_projects(cloud: Cloud) -> None:
    admin = await cloud.admin()
    me = await cloud.make_user("me", "pw-me", project="demo", headers=admin)
    mine = {"X-Auth-Token": await cloud.token("me", "pw-me", project=None)}
    r = await cloud.client.get(f"{V3}/users/{me['id']}/projects", headers=mine)
    assert r.status_code == 200
    assert [p["name"] for p in r.json()["projects"]] == ["demo"]
    admin_id = (await cloud.client.get(f"{V3}/users?name=admin", headers=admin)).json()["users"][0]["id"]
    assert (await cloud.client.get(f"{V3}/users/{admin_id}/projects", headers=mine)).status_code == 403
    assert (await cloud.client.get(f"{V3}/users/nope/projects", headers=admin)).status_code == 404


# -- security compliance ----------------------------------------------------------
@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
async def strict_cloud(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cloud]:
    """A cloud with lockout after 2 failures and no reuse of the last 2 passwords."""
    rules = {"identity__security_compliance__lockout_failure_attempts": 2,
             "identity__security_compliance__unique_last_password_count": 2}
    if request.param == "sqlite":
        async for c in start_cloud(make_settings(tmp_path, **rules)):
            yield c
        return
    require_service("MariaDB", "127.0.0.1", 3306)
    name = await create_mariadb_database()
    try:
        async for c in start_cloud(make_settings(tmp_path, database__url=f"{MARIADB_SERVER}/{name}", **rules)):
            yield c
    finally:
        await drop_mariadb_database(name)


async def test_lockout_after_failed_logins(strict_cloud: Cloud) -> None:
    cloud = strict_cloud
    admin = await cloud.admin()
    await create_user(cloud, admin, name="me", password="pw-me")
    for _ in range(2):
        assert (await login(cloud, "me", "wrong")).status_code == 401
    r = await login(cloud, "me", "pw-me")
    assert r.status_code == 401
    assert "locked" in r.json()["error"]["message"]


async def test_password_reuse_is_refused(strict_cloud: Cloud) -> None:
    cloud = strict_cloud
    admin = await cloud.admin()
    me = await create_user(cloud, admin, name="me", password="first-pw")
    url = f"{V3}/users/{me['id']}/password"
    token = await cloud.token("me", "first-pw", project=None)
    r = await cloud.client.post(url, headers={"X-Auth-Token": token},
                                json={"user": {"original_password": "first-pw", "password": "second-pw"}})
    assert r.status_code == 204
    token = await cloud.token("me", "second-pw", project=None)
    r = await cloud.client.post(url, headers={"X-Auth-Token": token},
                                json={"user": {"original_password": "second-pw", "password": "first-pw"}})
    assert r.status_code == 400
    assert "previous password" in r.json()["error"]["message"]
