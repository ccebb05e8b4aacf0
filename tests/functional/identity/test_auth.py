"""``/v3/auth/*``: issuing, validating, checking and revoking tokens, as Keystone does."""

from __future__ import annotations

from typing import Any

from kumotest import Cloud

TOKENS = "/identity/v3/auth/tokens"


def password_body(user: str, password: str, scope: Any = None, domain: str = "default") -> dict[str, Any]:
    body: dict[str, Any] = {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": user, "domain": {"id": domain}, "password": password}}}}}
    if scope is not None:
        body["auth"]["scope"] = scope
    return body


async def test_project_token_body_matches_keystone(cloud: Cloud) -> None:
    r = await cloud.client.post(TOKENS, json=password_body("admin", cloud.admin_password,
                                                           {"project": {"name": "admin", "domain": {"name": "Default"}}}))
    assert r.status_code == 201
    token = r.json()["token"]
    assert len(r.headers["X-Subject-Token"]) > 100
    assert token["methods"] == ["password"]
    assert token["user"]["name"] == "admin" and token["user"]["domain"] == {"id": "default", "name": "Default"}
    assert token["project"]["name"] == "admin" and token["project"]["domain"]["id"] == "default"
    assert {r["name"] for r in token["roles"]} == {"admin", "member", "reader"}
    assert token["expires_at"].endswith("Z") and token["issued_at"].endswith("Z")
    assert len(token["audit_ids"]) == 1
    [identity] = [entry for entry in token["catalog"] if entry["type"] == "identity"]
    assert {e["interface"] for e in identity["endpoints"]} == {"public", "internal", "admin"}


async def test_nocatalog_and_unscoped(cloud: Cloud) -> None:
    r = await cloud.client.post(f"{TOKENS}?nocatalog", json=password_body("admin", cloud.admin_password,
                                                                          {"project": {"name": "admin",
                                                                                       "domain": {"id": "default"}}}))
    assert r.status_code == 201 and "catalog" not in r.json()["token"]
    r = await cloud.client.post(TOKENS, json=password_body("admin", cloud.admin_password, "unscoped"))
    assert r.status_code == 201
    token = r.json()["token"]
    assert "project" not in token and "roles" not in token and "catalog" not in token


async def test_default_project_scope(cloud: Cloud) -> None:
    """Without a scope, Keystone scopes to the user's default project when it can."""
    r = await cloud.client.post(TOKENS, json=password_body("admin", cloud.admin_password))
    assert r.status_code == 201
    assert r.json()["token"]["project"]["name"] == "admin"


async def test_domain_and_system_scope(cloud: Cloud) -> None:
    r = await cloud.client.post(TOKENS, json=password_body("admin", cloud.admin_password, {"system": {"all": True}}))
    assert r.status_code == 201
    assert r.json()["token"]["system"] == {"all": True}
    # admin has no domain grant: domain scope is refused with 401
    r = await cloud.client.post(TOKENS, json=password_body("admin", cloud.admin_password, {"domain": {"id": "default"}}))
    assert r.status_code == 401


async def test_validate_check_revoke(cloud: Cloud) -> None:
    admin = await cloud.token()
    subject = await cloud.token()
    h = {"X-Auth-Token": admin, "X-Subject-Token": subject}
    r = await cloud.client.get(TOKENS, headers=h)
    assert r.status_code == 200 and r.headers["X-Subject-Token"] == subject
    assert r.json()["token"]["project"]["name"] == "admin"
    r = await cloud.client.head(TOKENS, headers=h)
    assert r.status_code == 200
    r = await cloud.client.delete(TOKENS, headers=h)
    assert r.status_code == 204
    r = await cloud.client.get(TOKENS, headers=h)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == 404
    r = await cloud.client.get("/identity/v3/projects", headers={"X-Auth-Token": subject})
    assert r.status_code == 401
    # the admin token itself is untouched
    r = await cloud.client.get("/identity/v3/projects", headers={"X-Auth-Token": admin})
    assert r.status_code == 200


async def test_token_method_rescopes_unscoped_token(cloud: Cloud) -> None:
    r = await cloud.client.post(TOKENS, json=password_body("admin", cloud.admin_password, "unscoped"))
    unscoped = r.headers["X-Subject-Token"]
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped}},
                     "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    r = await cloud.client.post(TOKENS, json=body)
    assert r.status_code == 201
    token = r.json()["token"]
    assert token["methods"] == ["password", "token"]
    assert token["project"]["name"] == "admin"
    assert len(token["audit_ids"]) == 2


async def test_wrong_password_gives_no_hint(cloud: Cloud) -> None:
    wrong_pw = await cloud.client.post(TOKENS, json=password_body("admin", "nope"))
    no_user = await cloud.client.post(TOKENS, json=password_body("ghost", "nope"))
    assert wrong_pw.status_code == no_user.status_code == 401
    assert wrong_pw.json() == no_user.json()
    assert wrong_pw.json()["error"]["message"] == "The request you have made requires authentication."
    assert wrong_pw.headers["WWW-Authenticate"] == 'Keystone uri="http://kumo.test/identity"'


async def test_missing_and_garbage_tokens(cloud: Cloud) -> None:
    r = await cloud.client.get("/identity/v3/users")
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers
    assert r.json()["error"]["title"] == "Unauthorized"
    r = await cloud.client.get("/identity/v3/users", headers={"X-Auth-Token": "garbage"})
    assert r.status_code == 401
    admin = await cloud.token()
    r = await cloud.client.get(TOKENS, headers={"X-Auth-Token": admin, "X-Subject-Token": "garbage"})
    assert r.status_code == 404


async def test_bad_auth_bodies(cloud: Cloud) -> None:
    cases = [
        b"{not json",
        b"",
        b'{"auth": {}}',
        b'{"auth": {"identity": {"methods": "password"}}}',
        b'{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": 5, "password": "x"}}}}}',
        b'{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "password": "x"}}}}}',
        b'{"auth": {"identity": {"methods": ["password"]}, "scope": {"project": {}}}}',
        b'{"auth": {"identity": {"methods": ["token"]}}, "extra": 1}',
    ]
    for body in cases:
        r = await cloud.client.post(TOKENS, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (body, r.status_code, r.text)
        err = r.json()["error"]
        assert err["code"] == 400 and err["title"] == "Bad Request" and err["message"]
    r = await cloud.client.post(TOKENS, json={"auth": {"identity": {"methods": ["totp"], "totp": {}}}})
    assert r.status_code == 401


async def test_oversize_body_is_413_and_server_keeps_serving(cloud: Cloud) -> None:
    huge = b'{"auth": "' + b"x" * 200_000 + b'"}'
    r = await cloud.client.post(TOKENS, content=huge, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == 413
    assert await cloud.token()


async def test_member_has_no_admin_rights(cloud: Cloud) -> None:
    await cloud.make_user("alice", "alice-pw", project="demo", role="member")
    token = await cloud.token("alice", "alice-pw", project="demo")
    r = await cloud.client.post("/identity/v3/projects", headers={"X-Auth-Token": token},
                                json={"project": {"name": "mine"}})
    assert r.status_code == 403
    assert r.json()["error"]["message"] == \
        "You are not authorized to perform the requested action: identity:create_project."
    # alice cannot scope to a project she has no role on
    await cloud.token("alice", "alice-pw", project="admin", expect=401)


async def test_auth_projects_domains_system_catalog(cloud: Cloud) -> None:
    await cloud.make_user("bob", "bob-pw", project="bobs", role="reader")
    token = await cloud.token("bob", "bob-pw", project="bobs")
    h = {"X-Auth-Token": token}
    r = await cloud.client.get("/identity/v3/auth/projects", headers=h)
    assert [p["name"] for p in r.json()["projects"]] == ["bobs"]
    r = await cloud.client.get("/identity/v3/auth/domains", headers=h)
    assert r.json()["domains"] == []
    r = await cloud.client.get("/identity/v3/auth/system", headers=h)
    assert r.json()["system"] == []
    r = await cloud.client.get("/identity/v3/auth/catalog", headers=h)
    assert "identity" in [entry["type"] for entry in r.json()["catalog"]]
    admin = await cloud.admin()
    r = await cloud.client.get("/identity/v3/auth/system", headers=admin)
    assert r.json()["system"] == [{"all": True}]


async def test_token_validation_is_cached_and_invalidated(cloud: Cloud) -> None:
    token = await cloud.token()
    h = {"X-Auth-Token": token}
    validator = cloud.identity.validator
    await cloud.client.get("/identity/v3/projects", headers=h)
    hits = validator.hits
    await cloud.client.get("/identity/v3/projects", headers=h)
    assert validator.hits == hits + 1
    r = await cloud.client.post("/identity/v3/projects", headers=h, json={"project": {"name": "p2"}})
    assert r.status_code == 201
    await cloud.client.get("/identity/v3/projects", headers=h)
    assert validator.hits == hits + 3  # creating a project cannot change any token: cache kept
    r = await cloud.client.patch(f"/identity/v3/projects/{r.json()['project']['id']}", headers=h,
                                 json={"project": {"enabled": False}})
    assert r.status_code == 200
    misses = validator.misses
    await cloud.client.get("/identity/v3/projects", headers=h)
    assert validator.misses == misses + 1  # disabling a project dropped the cache


async def test_key_rotation_keeps_live_tokens(cloud: Cloud) -> None:
    before = await cloud.token()
    cloud.identity.keys.rotate()
    cloud.identity.reload_keys()
    cloud.identity.validator.invalidate()
    after = await cloud.token()
    for token in (before, after):
        r = await cloud.client.get("/identity/v3/projects", headers={"X-Auth-Token": token})
        assert r.status_code == 200
    # rotate until the key of `before` falls off (max_active_keys = 3)
    for _ in range(3):
        cloud.identity.keys.rotate()
    cloud.identity.reload_keys()
    cloud.identity.validator.invalidate()
    r = await cloud.client.get("/identity/v3/projects", headers={"X-Auth-Token": before})
    assert r.status_code == 401


async def test_expired_token_is_refused(cloud: Cloud) -> None:
    cloud.node.settings.identity.token_expiration = 1
    token = await cloud.token()
    import asyncio

    await asyncio.sleep(1.1)
    r = await cloud.client.get("/identity/v3/projects", headers={"X-Auth-Token": token})
    assert r.status_code == 401
