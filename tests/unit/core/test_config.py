"""Config: defaults for all-in-one, TOML file, KUMO_* environment, masked output."""

from __future__ import annotations

from pathlib import Path

import pytest

from kumo.cli import main
from kumo.core.config import load_settings, mask_url, masked_dump


def test_defaults_are_all_in_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUMO_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("KUMO_CONFIG", raising=False)
    s = load_settings()
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path}/kumo.db"
    assert s.bus.url == "memory://"
    assert s.node.roles == ["controller", "compute", "network", "storage"]


def test_toml_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "kumo.toml"
    cfg.write_text('[api]\nport = 9000\nhost = "0.0.0.0"\n[bus]\nurl = "amqp://guest:guest@127.0.0.1:5672/"\n')
    monkeypatch.setenv("KUMO_API__PORT", "9100")
    s = load_settings(cfg)
    assert s.api.port == 9100          # environment wins over the file
    assert s.api.host == "0.0.0.0"     # the file wins over defaults
    assert s.bus.url.startswith("amqp://")


def test_unknown_keys_and_bad_types_are_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "kumo.toml"
    cfg.write_text("[api]\nport = 'eighty'\n")
    with pytest.raises(ValueError):
        load_settings(cfg)
    cfg.write_text("bogus = 1\n")
    with pytest.raises(ValueError):
        load_settings(cfg)
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "missing.toml")


def test_secrets_are_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert mask_url("amqp://guest:hunter2@host:5672/") == "amqp://guest:***@host:5672/"
    assert mask_url("memory://") == "memory://"
    monkeypatch.setenv("KUMO_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("KUMO_DATABASE__URL", "mysql+asyncmy://kumo:dbsecret@db:3306/kumo")
    monkeypatch.setenv("KUMO_IDENTITY__ADMIN_PASSWORD", "adminsecret")
    dumped = masked_dump(load_settings())
    assert dumped["database"]["url"] == "mysql+asyncmy://kumo:***@db:3306/kumo"
    assert dumped["identity"]["admin_password"] == "***"
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "dbsecret" not in out and "adminsecret" not in out
    assert "[database]" in out and "***" in out
