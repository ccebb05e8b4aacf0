"""The node: roles, heartbeats, `kumo status`, restart without a second bootstrap."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kumo.cli import main
from kumo.core.heartbeat import service_statuses
from kumo.identity.models import Role, User
from kumo.node import Node
from kumotest import make_settings


async def test_unknown_role_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown role"):
        Node(make_settings(tmp_path), ["controller", "hypervisor"])


async def test_heartbeat_and_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(tmp_path)
    node = Node(settings, ["controller", "compute"])
    await node.start()
    try:
        assert node.db is not None
        statuses = await service_statuses(node.db, settings.node.service_down_time)
        assert sorted((s.host, s.binary, s.up) for s in statuses) == [
            ("test-host", "kumo-api", True), ("test-host", "kumo-network-agent", True),
            ("test-host", "nova-compute", True),
            ("test-host", "nova-conductor", True), ("test-host", "nova-scheduler", True)]
        down = await service_statuses(node.db, down_time=0)
        assert not any(s.up for s in down)
    finally:
        await node.stop()
    monkeypatch.setenv("KUMO_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("KUMO_API__PORT", "1")  # nothing listens there: the API shows as down
    code = await asyncio.to_thread(main, ["status"])
    out = capsys.readouterr().out
    assert "kumo-api" in out and "test-host" in out and "API http://127.0.0.1:1: down" in out
    assert "nova-compute" in out and "compute hosts: 1 up of 1" in out
    assert code == 0  # heartbeat is fresh: the service is up


async def test_restart_keeps_data_and_bootstraps_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    for _ in range(2):
        node = Node(settings, ["controller"])
        await node.start()
        assert node.db is not None
        async with node.db.session() as s:
            assert set(await s.scalars(select(User.name))) == {"admin", "kumo"}  # kumo: the service user
            assert await s.scalar(select(func.count()).select_from(Role)) == 4
        await node.stop()
    clouds = (tmp_path / "clouds.yaml").read_text()
    assert "auth_url: http://127.0.0.1:8080/identity/v3" in clouds
    assert (tmp_path / "clouds.yaml").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "fernet-keys").stat().st_mode & 0o777 == 0o700
