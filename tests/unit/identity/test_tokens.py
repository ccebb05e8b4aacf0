"""Fernet tokens: round trip, tamper detection, key rotation."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest

from kumo.core import errors
from kumo.identity.tokens import KeyRepository, TokenCodec, TokenPayload, new_audit_id


def payload(**kw: object) -> TokenPayload:
    now = dt.datetime.now(dt.UTC)
    base = dict(user_id=uuid.uuid4().hex, methods=("password",), expires_at=now + dt.timedelta(hours=1),
                audit_ids=(new_audit_id(),), project_id=uuid.uuid4().hex, issued_at=now)
    base.update(kw)
    return TokenPayload(**base)  # type: ignore[arg-type]


def test_round_trip_all_scopes(tmp_path: Path) -> None:
    repo = KeyRepository(tmp_path / "keys")
    repo.ensure()
    codec = TokenCodec(repo.load())
    for p in (payload(), payload(project_id=None, domain_id="default"), payload(project_id=None, system="all"),
              payload(methods=("application_credential",), app_cred_id=uuid.uuid4().hex),
              payload(methods=("password", "token"), audit_ids=(new_audit_id(), new_audit_id()))):
        token = codec.encode(p)
        back = codec.decode(token)
        assert back.user_id == p.user_id and back.project_id == p.project_id and back.domain_id == p.domain_id
        assert back.system == p.system and back.app_cred_id == p.app_cred_id
        assert back.methods == p.methods and back.audit_ids == p.audit_ids
        assert abs((back.expires_at - p.expires_at).total_seconds()) < 1e-3
        assert len(token) < 260  # short enough for any header


def test_tampered_or_foreign_tokens_are_not_found(tmp_path: Path) -> None:
    repo = KeyRepository(tmp_path / "keys")
    repo.ensure()
    token = TokenCodec(repo.load()).encode(payload())
    other = KeyRepository(tmp_path / "other")
    other.ensure()
    for bad in (token[:-3] + "AAA", "not-a-token", ""):
        with pytest.raises(errors.NotFound):
            TokenCodec(repo.load()).decode(bad)
    with pytest.raises(errors.NotFound):
        TokenCodec(other.load()).decode(token)


def test_rotation_keeps_tokens_until_their_key_is_dropped(tmp_path: Path) -> None:
    repo = KeyRepository(tmp_path / "keys", max_active_keys=3)
    repo.ensure()
    token = TokenCodec(repo.load()).encode(payload())
    repo.rotate()   # old primary becomes a secondary: still decrypts
    TokenCodec(repo.load()).decode(token)
    repo.rotate()   # now it falls off (staged + primary + one secondary)
    with pytest.raises(errors.NotFound):
        TokenCodec(repo.load()).decode(token)
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["0", "2", "3"]


def test_staged_key_decrypts_before_promotion(tmp_path: Path) -> None:
    """A node that has the new staged key accepts tokens from a node that already rotated."""
    repo = KeyRepository(tmp_path / "keys")
    repo.ensure()
    before = TokenCodec(repo.load())
    repo.rotate()
    token = TokenCodec(repo.load()).encode(payload())   # encrypted with the promoted staged key
    before.decode(token)  # the old key set included that key as staged
