"""Keystone's password expiry: an expired password refuses login but can still be changed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kumotest import Cloud, make_settings, start_cloud


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[Cloud]:
    settings = make_settings(tmp_path, identity__security_compliance__change_password_upon_first_use=True)
    async for c in start_cloud(settings):
        yield c


async def test_first_use_password_must_be_changed_without_a_token(cloud: Cloud) -> None:
    user = await cloud.make_user("newbie", "set-by-admin", project="p")
    body = {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": "newbie", "domain": {"id": "default"}, "password": "set-by-admin"}}}}}
    r = await cloud.client.post("/identity/v3/auth/tokens", json=body)
    assert r.status_code == 401
    assert r.json()["error"]["message"] == f"The password is expired and needs to be changed for user: {user['id']}."
    change = {"user": {"original_password": "set-by-admin", "password": "my-own-pw"}}
    r = await cloud.client.post(f"/identity/v3/users/{user['id']}/password", json={"user": {
        "original_password": "wrong", "password": "x"}})
    assert r.status_code == 401
    r = await cloud.client.post(f"/identity/v3/users/{user['id']}/password", json=change)
    assert r.status_code == 204
    assert await cloud.token("newbie", "my-own-pw", project="p")
