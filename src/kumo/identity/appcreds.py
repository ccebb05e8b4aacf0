"""Application credentials: a user's delegated, project-bound secret.

The secret is shown once, at creation, and stored only as an argon2 hash.
The credential carries a subset of the creating token's roles; a token made
from it gets those roles, intersected with what the user still holds (so
revoking the user's role also takes it from the credential). A *restricted*
credential (the default) cannot be used to create more credentials.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from kumo.core import errors
from kumo.core.auth import AuthContext
from kumo.core.db import utcnow
from kumo.identity.models import ApplicationCredential, RevocationEvent, Role, User
from kumo.identity.store import IdentityStore, flush_unique
from kumo.identity.users import iso


def appcred_dict(row: ApplicationCredential, roles: list[Role]) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "description": row.description, "user_id": row.user_id,
            "project_id": row.project_id, "system": row.system, "expires_at": iso(row.expires_at),
            "unrestricted": row.unrestricted, "access_rules": [],
            "roles": [{"id": r.id, "name": r.name, "domain_id": r.domain_id or None} for r in roles]}


class AppCredService:
    def __init__(self, store: IdentityStore) -> None:
        self.store = store

    async def create(self, ctx: AuthContext, user_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        if ctx.user_id != user_id:
            raise errors.Forbidden("Application credentials can only be created for yourself.")
        if ctx.app_cred_id and ctx.app_cred_restricted:
            raise errors.Forbidden("Using method 'application_credential' is not allowed for managing "
                                   "additional application credentials.")
        if ctx.project_id is None and ctx.system_scope is None:
            raise errors.ValidationError("An application credential needs a project-scoped token.")
        expires_at: dt.datetime | None = fields.get("expires_at")
        if expires_at is not None and expires_at <= utcnow():
            raise errors.ValidationError("The expiration date of an application credential must be in the future.")
        async with self.store.db.session() as s:
            available = {r.id: r for r in await s.scalars(select(Role).where(Role.id.in_(ctx.role_ids)))}
            wanted = fields.get("roles")
            if wanted:
                chosen = []
                for ref in wanted:
                    match = [r for r in available.values()
                             if (ref.get("id") and r.id == ref["id"]) or (ref.get("name") and r.name == ref["name"])]
                    if not match:
                        raise errors.Forbidden(f"Role {ref.get('id') or ref.get('name')} is not one of the "
                                               f"roles of the token that creates this application credential.")
                    chosen.append(match[0])
            else:
                chosen = list(available.values())
            secret = fields.get("secret") or base64.urlsafe_b64encode(secrets.token_bytes(64)).rstrip(b"=").decode()
            row = ApplicationCredential(
                name=fields["name"], user_id=user_id, project_id=ctx.project_id,
                system=ctx.system_scope if ctx.project_id is None else None,
                secret_hash=await self.store.hasher.hash(secret), description=fields.get("description"),
                expires_at=expires_at, unrestricted=bool(fields.get("unrestricted")),
                role_ids=sorted({r.id for r in chosen}))
            s.add(row)
            await flush_unique(s, "application_credential", f"Duplicate entry found with name {row.name}.")
            result = appcred_dict(row, sorted(chosen, key=lambda r: r.name))
        result["secret"] = secret
        return result

    async def _roles(self, s: Any, row: ApplicationCredential) -> list[Role]:
        if not row.role_ids:
            return []
        return list(await s.scalars(select(Role).where(Role.id.in_(row.role_ids)).order_by(Role.name)))

    async def get(self, user_id: str, cred_id: str) -> dict[str, Any]:
        async with self.store.db.session() as s:
            row = await s.get(ApplicationCredential, cred_id)
            if row is None or row.user_id != user_id:
                raise errors.NotFound(f"Could not find Application Credential: {cred_id}.")
            return appcred_dict(row, await self._roles(s, row))

    async def list(self, user_id: str, query: Mapping[str, str]) -> list[dict[str, Any]]:
        async with self.store.db.session() as s:
            await self.store.get(s, User, user_id, "user")
            stmt = select(ApplicationCredential).where(ApplicationCredential.user_id == user_id)
            if "name" in query:
                stmt = stmt.where(ApplicationCredential.name == query["name"])
            rows = list(await s.scalars(stmt.order_by(ApplicationCredential.name)))
            return [appcred_dict(r, await self._roles(s, r)) for r in rows]

    async def delete(self, ctx: AuthContext, user_id: str, cred_id: str) -> None:
        if ctx.app_cred_id and ctx.app_cred_restricted:
            raise errors.Forbidden("Using method 'application_credential' is not allowed for managing "
                                   "additional application credentials.")
        async with self.store.db.session() as s:
            row = await s.get(ApplicationCredential, cred_id)
            if row is None or row.user_id != user_id:
                raise errors.NotFound(f"Could not find Application Credential: {cred_id}.")
            await s.delete(row)
            s.add(RevocationEvent(app_cred_id=cred_id, issued_before=utcnow()))
            await self.store.bump_revision(s)
        await self.store.changed()

    async def lookup(self, s: Any, *, cred_id: str | None, name: str | None, user_id: str | None
                     ) -> ApplicationCredential | None:
        if cred_id:
            return await s.get(ApplicationCredential, cred_id)
        if name and user_id:
            return await s.scalar(select(ApplicationCredential).where(
                ApplicationCredential.name == name, ApplicationCredential.user_id == user_id))
        return None
