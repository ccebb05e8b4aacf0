"""Operators override policy rules from a YAML file in the state directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kumotest import Cloud, make_settings, start_cloud


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[Cloud]:
    (tmp_path / "policy.yaml").write_text('"identity:list_users": "role:reader"\n')
    async for c in start_cloud(make_settings(tmp_path)):
        yield c


async def test_override_lets_readers_list_users(cloud: Cloud) -> None:
    await cloud.make_user("rita", "rita-pw", project="reading", role="reader")
    token = await cloud.token("rita", "rita-pw", project="reading")
    h = {"X-Auth-Token": token}
    assert (await cloud.client.get("/identity/v3/users", headers=h)).status_code == 200
    # rules that were not overridden keep their defaults
    assert (await cloud.client.get("/identity/v3/groups", headers=h)).status_code == 403


async def test_secrets_never_reach_the_log(cloud: Cloud, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    await cloud.make_user("sam", "sam-very-secret-pw", project="p1")
    await cloud.token("sam", "sam-very-secret-pw", project="p1")
    await cloud.token("sam", "wrong-secret-guess", project="p1", expect=401)
    text = caplog.text
    assert "sam-very-secret-pw" not in text and "wrong-secret-guess" not in text
    assert cloud.admin_password not in text
