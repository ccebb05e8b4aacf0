"""Key pairs: SSH public keys (or X.509 certificates) a user injects into servers (Nova).

Key pairs belong to a user, not a project; names are unique per user. As
Nova's ``KeypairAPI``: an imported key must parse (else 400 "Keypair data is
invalid"), its fingerprint is the colon-separated MD5 of the key blob (SHA-1
of the certificate for x509), and the user's count is held to the
``key_pairs`` quota of the caller's project. Generated keys (API versions
below 2.92) are RSA 2048 like Nova's, made with ``cryptography``; the private
key is returned once and never stored.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.compute import quotas
from kumo.compute.models import KeyPair
from kumo.core import errors
from kumo.core.db import Database, utcnow

KEYPAIR_TYPES = ("ssh", "x509")
# The UPN of a generated x509 key pair's certificate (Nova's generate_winrm_x509_cert).
_UPN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")


@dataclass(frozen=True)
class KeypairRecord:
    id: int
    user_id: str
    name: str
    type: str
    public_key: str
    fingerprint: str
    created_at: dt.datetime
    updated_at: dt.datetime | None


def _record(row: KeyPair) -> KeypairRecord:
    return KeypairRecord(id=row.id, user_id=row.user_id, name=row.name, type=row.type, public_key=row.public_key,
                         fingerprint=row.fingerprint, created_at=row.created_at, updated_at=row.updated_at)


def _colon_hex(digest: str) -> str:
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def ssh_fingerprint(public_key: str) -> str:
    """Nova's ``crypto.generate_fingerprint``: the key must load; MD5 of its base64 blob."""
    try:
        serialization.load_ssh_public_key(public_key.encode("utf-8"))
        blob = base64.b64decode(public_key.split(" ")[1])
    except (ValueError, IndexError, UnicodeError, binascii.Error, TypeError, UnsupportedAlgorithm) as exc:
        raise errors.BadRequest("Keypair data is invalid: failed to generate fingerprint") from exc
    return _colon_hex(hashlib.md5(blob, usedforsecurity=False).hexdigest())


def x509_fingerprint(pem: str) -> str:
    """Nova's ``generate_x509_fingerprint``: SHA-1 of the PEM certificate, colon-separated."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("utf-8"))
    except (ValueError, TypeError, UnicodeError, UnsupportedAlgorithm) as exc:
        raise errors.BadRequest(f"Keypair data is invalid: failed to generate X509 fingerprint. "
                                f"Error message: {exc}") from exc
    return _colon_hex(cert.fingerprint(hashes.SHA1()).hex())


def fingerprint(public_key: str, key_type: str) -> str:
    return x509_fingerprint(public_key) if key_type == "x509" else ssh_fingerprint(public_key)


def generate_ssh_keypair() -> tuple[str, str]:
    """``(private PEM, public "ssh-rsa ... Generated-by-Nova")``, as Nova's paramiko-made keys."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode("ascii")
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode("ascii")
    return private, f"{public} Generated-by-Nova"


def _der_utf8(text: str) -> bytes:
    """``text`` as a DER UTF8String (short form: user ids are far below 128 bytes)."""
    data = text.encode("utf-8")
    if len(data) > 127:
        raise errors.BadRequest("User id too long for an x509 key pair.")
    return b"\x0c" + bytes([len(data)]) + data


def generate_x509_keypair(user_id: str) -> tuple[str, str]:
    """``(base64 PKCS#12 bundle, PEM certificate)`` for WinRM client auth, as Nova's openssl calls."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id)])
    now = dt.datetime.now(dt.UTC)
    upn = x509.OtherName(_UPN_OID, _der_utf8(f"{user_id}@localhost"))
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([upn]), critical=False)
            .sign(key, hashes.SHA256()))
    bundle = pkcs12.serialize_key_and_certificates(None, key, cert, None, serialization.NoEncryption())
    return base64.b64encode(bundle).decode("ascii"), cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


class KeypairService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(self, user_id: str, limit: int | None = None, marker: str | None = None) -> list[KeypairRecord]:
        """A user's key pairs by name; ``marker`` is the last name seen (2.35 paging)."""
        stmt = select(KeyPair).where(KeyPair.user_id == user_id).order_by(KeyPair.name, KeyPair.id)
        async with self.db.session() as s:
            if marker is not None:
                if await s.scalar(select(KeyPair.id).where(KeyPair.user_id == user_id,
                                                           KeyPair.name == marker)) is None:
                    raise errors.BadRequest(f"Marker {marker} could not be found.")
                stmt = stmt.where(KeyPair.name > marker)
            if limit is not None:
                stmt = stmt.limit(limit)
            return [_record(r) for r in await s.scalars(stmt)]

    async def get(self, user_id: str, name: str) -> KeypairRecord:
        async with self.db.session() as s:
            return _record(await self._load(s, user_id, name))

    async def _load(self, s: AsyncSession, user_id: str, name: str) -> KeyPair:
        row = await s.scalar(select(KeyPair).where(KeyPair.user_id == user_id, KeyPair.name == name))
        if row is None:
            raise errors.NotFound(f"Keypair {name} not found for user {user_id}")
        return row

    async def import_keypair(self, project_id: str | None, user_id: str, name: str, public_key: str,
                             key_type: str = "ssh") -> KeypairRecord:
        """Store a public key the user already has (``POST /os-keypairs`` with ``public_key``)."""
        print_ = fingerprint(public_key, key_type)
        return await self._store(project_id, user_id, name, key_type, public_key, print_)

    async def generate_keypair(self, project_id: str | None, user_id: str, name: str,
                               key_type: str = "ssh") -> tuple[KeypairRecord, str]:
        """Make a new key pair (below 2.92); returns the record and the private key, shown once."""
        async with self.db.session() as s:
            await self._check_quota(s, project_id, user_id)
        if key_type == "x509":
            private, public = await asyncio.to_thread(generate_x509_keypair, user_id)
        else:
            private, public = await asyncio.to_thread(generate_ssh_keypair)
        record = await self._store(project_id, user_id, name, key_type, public, fingerprint(public, key_type))
        return record, private

    async def _store(self, project_id: str | None, user_id: str, name: str, key_type: str, public_key: str,
                     print_: str) -> KeypairRecord:
        row = KeyPair(user_id=user_id, name=name, type=key_type, public_key=public_key, fingerprint=print_,
                      created_at=utcnow(), updated_at=None)
        try:
            async with self.db.session() as s:
                await self._check_quota(s, project_id, user_id)
                if await s.scalar(select(KeyPair.id).where(KeyPair.user_id == user_id,
                                                           KeyPair.name == name)) is not None:
                    raise errors.Conflict(f"Key pair '{name}' already exists.")
                s.add(row)
        except IntegrityError as exc:  # a concurrent request made the same name first
            raise errors.Conflict(f"Key pair '{name}' already exists.") from exc
        return _record(row)

    async def _check_quota(self, s: AsyncSession, project_id: str | None, user_id: str) -> None:
        """Nova's ``_check_key_pair_quotas``: 403 "Quota exceeded, too many key pairs."."""
        limit = await quotas.limit_for(s, project_id, "key_pairs")
        in_use = await s.scalar(select(func.count()).select_from(KeyPair).where(KeyPair.user_id == user_id))
        if quotas.exceeds(limit, int(in_use or 0)):
            raise errors.OverQuota("Quota exceeded, too many key pairs.")

    async def delete(self, user_id: str, name: str) -> None:
        async with self.db.session() as s:
            await s.delete(await self._load(s, user_id, name))
