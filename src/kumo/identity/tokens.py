"""Fernet tokens: self-validating, encrypted, rotatable keys.

A token is a Fernet message (AES-128-CBC + HMAC-SHA256, the ``cryptography``
library's implementation) around a msgpack payload: who, how, which scope,
when it expires, and its audit id. Nothing is stored when a token is issued,
so any API node with the keys can validate any token.

Keys live in ``<state_dir>/fernet-keys/`` as Keystone lays them out: file
``0`` is the staged key, the highest number is the primary (used to
encrypt), the rest only decrypt. :meth:`KeyRepository.rotate` promotes the
staged key to primary and stages a new one, so tokens issued under the old
primary keep validating until their key falls off the end.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import msgpack
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from kumo.core import errors

PAYLOAD_VERSION = 1
METHOD_BITS = {"password": 1, "token": 2, "application_credential": 4, "totp": 8}


@dataclass(frozen=True, slots=True)
class TokenPayload:
    user_id: str
    methods: tuple[str, ...]
    expires_at: dt.datetime
    audit_ids: tuple[str, ...]
    project_id: str | None = None
    domain_id: str | None = None
    system: str | None = None
    app_cred_id: str | None = None
    issued_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


def new_audit_id() -> str:
    """Keystone's audit id: 16 random bytes, urlsafe base64 without padding."""
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()


def _pack_id(value: str | None) -> bytes | str | None:
    """32-hex ids travel as 16 raw bytes to keep tokens short; others as text."""
    if value is None:
        return None
    if len(value) == 32:
        try:
            return uuid.UUID(hex=value).bytes
        except ValueError:
            pass
    return value


def _unpack_id(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return uuid.UUID(bytes=value).hex
    return value


def _methods_to_int(methods: tuple[str, ...]) -> int:
    return sum(METHOD_BITS[m] for m in set(methods))


def _int_to_methods(bits: int) -> tuple[str, ...]:
    return tuple(m for m, b in METHOD_BITS.items() if bits & b)


class KeyRepository:
    """The Fernet key directory."""

    def __init__(self, directory: Path, max_active_keys: int = 3) -> None:
        self.directory = directory
        self.max_active_keys = max(max_active_keys, 2)

    def ensure(self) -> None:
        """Create the directory with a staged and a primary key if empty."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self._indexes():
            self._write(0)
            self._write(1)

    def _indexes(self) -> list[int]:
        if not self.directory.is_dir():
            return []
        return sorted(int(p.name) for p in self.directory.iterdir() if p.name.isdigit())

    def _write(self, index: int) -> None:
        path = self.directory / str(index)
        tmp = self.directory / f".{index}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(Fernet.generate_key())
        os.replace(tmp, path)

    def load(self) -> list[bytes]:
        """Keys, primary first (MultiFernet encrypts with the first)."""
        indexes = self._indexes()
        if not indexes:
            raise RuntimeError(f"no Fernet keys in {self.directory}; run `kumo up` or `kumo identity rotate-keys`")
        return [(self.directory / str(i)).read_bytes().strip() for i in sorted(indexes, reverse=True)]

    def rotate(self) -> int:
        """Promote the staged key, stage a new one, drop the oldest beyond the limit.

        Returns the new primary's index.
        """
        self.ensure()
        indexes = self._indexes()
        new_primary = max(indexes) + 1
        os.replace(self.directory / "0", self.directory / str(new_primary))
        self._write(0)
        secondaries = [i for i in self._indexes() if i not in (0, new_primary)]
        excess = len(secondaries) - (self.max_active_keys - 2)
        for index in sorted(secondaries)[: max(excess, 0)]:
            (self.directory / str(index)).unlink()
        return new_primary


class TokenCodec:
    """Encrypts payloads into token strings and back."""

    def __init__(self, keys: list[bytes]) -> None:
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def encode(self, payload: TokenPayload) -> str:
        data = [
            PAYLOAD_VERSION,
            _pack_id(payload.user_id),
            _methods_to_int(payload.methods),
            payload.expires_at.timestamp(),
            [base64.urlsafe_b64decode(a + "==") for a in payload.audit_ids],
            _pack_id(payload.project_id),
            _pack_id(payload.domain_id),
            payload.system,
            _pack_id(payload.app_cred_id),
            payload.issued_at.timestamp(),
        ]
        token = self._fernet.encrypt(msgpack.packb(data, use_bin_type=True))
        return token.rstrip(b"=").decode()

    def decode(self, token: str) -> TokenPayload:
        """The payload of a token this cloud issued, or NotFound (as Keystone: 404)."""
        padded = token + "=" * (-len(token) % 4)
        try:
            raw = self._fernet.decrypt(padded.encode())
            data = msgpack.unpackb(raw, raw=False)
            if data[0] != PAYLOAD_VERSION:
                raise ValueError("unknown payload version")
            audit_ids = tuple(base64.urlsafe_b64encode(a).rstrip(b"=").decode() for a in data[4])
            return TokenPayload(
                user_id=_unpack_id(data[1]) or "",
                methods=_int_to_methods(data[2]),
                expires_at=dt.datetime.fromtimestamp(data[3], dt.UTC),
                audit_ids=audit_ids,
                project_id=_unpack_id(data[5]),
                domain_id=_unpack_id(data[6]),
                system=data[7],
                app_cred_id=_unpack_id(data[8]),
                issued_at=dt.datetime.fromtimestamp(data[9], dt.UTC),
            )
        except (InvalidToken, ValueError, TypeError, IndexError, msgpack.UnpackException) as exc:
            raise errors.NotFound("Failed to validate token") from exc
