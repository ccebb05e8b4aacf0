"""Users and their passwords, with Keystone's security-compliance rules.

Password rules (all off unless ``[identity.security_compliance]`` enables
them, as in Keystone): a regex the password must match, no reuse of the last
N passwords, a minimum age between self-service changes, and an expiry date.
Every password change records a revocation event for the user, so tokens
issued with the old password stop validating.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.core import errors
from kumo.core.db import utcnow
from kumo.identity.filters import apply_filters
from kumo.identity.models import Assignment, Domain, Password, RevocationEvent, User
from kumo.identity.resources import DEFAULT_DOMAIN_ID
from kumo.identity.store import IdentityStore, apply_fields, flush_unique

USER_COLUMNS = {"name", "enabled", "default_project_id", "description", "options"}
KNOWN_OPTIONS = {
    "ignore_change_password_upon_first_use", "ignore_password_expiry", "ignore_lockout_failure_attempts",
    "lock_password", "multi_factor_auth_enabled", "multi_factor_auth_rules", "ignore_user_inactivity",
}


def iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") if value else None


def user_dict(row: User, password: Password | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {**(row.extra or {}), "id": row.id, "name": row.name, "domain_id": row.domain_id,
                            "enabled": row.enabled, "password_expires_at": None, "options": dict(row.options or {})}
    if row.default_project_id:
        data["default_project_id"] = row.default_project_id
    if row.description is not None:
        data["description"] = row.description
    if password is not None and password.expires_at and not (row.options or {}).get("ignore_password_expiry"):
        data["password_expires_at"] = iso(password.expires_at)
    return data


class UserService:
    def __init__(self, store: IdentityStore) -> None:
        self.store = store

    @property
    def rules(self):  # type: ignore[no-untyped-def]
        return self.store.settings.identity.security_compliance

    async def current_password(self, s: AsyncSession, user_id: str) -> Password | None:
        stmt = select(Password).where(Password.user_id == user_id).order_by(Password.id.desc()).limit(1)
        return await s.scalar(stmt)

    def _check_options(self, options: Any) -> dict[str, Any]:
        if not isinstance(options, dict):
            raise errors.ValidationError("Invalid input for field 'options': must be an object.")
        unknown = set(options) - KNOWN_OPTIONS
        if unknown:
            raise errors.ValidationError(f"Invalid user option(s): {', '.join(sorted(unknown))}.")
        return options

    def _check_password_rules(self, password: str) -> None:
        if self.rules.password_regex and not re.match(self.rules.password_regex, password):
            detail = self.rules.password_regex_description or "it does not meet the password requirements"
            raise errors.ValidationError(f"Password validation error: The password does not meet the requirements: {detail}.")

    async def _set_password(self, s: AsyncSession, row: User, password: str, *, self_service: bool) -> None:
        self._check_password_rules(password)
        keep = self.rules.unique_last_password_count
        if keep > 1:
            recent = await s.scalars(
                select(Password.hash).where(Password.user_id == row.id).order_by(Password.id.desc()).limit(keep))
            for old in recent:
                if await self.store.hasher.verify(old, password):
                    raise errors.ValidationError(
                        f"Password validation error: The new password cannot be identical to a previous password. "
                        f"The total number which includes the new password must be unique is {keep}.")
        expires_at = None
        if self.rules.password_expires_days and not (row.options or {}).get("ignore_password_expiry"):
            expires_at = utcnow() + dt.timedelta(days=self.rules.password_expires_days)
        if (not self_service and self.rules.change_password_upon_first_use
                and not (row.options or {}).get("ignore_change_password_upon_first_use")):
            expires_at = utcnow()  # an admin-set password must be changed at first use
        s.add(Password(user_id=row.id, hash=await self.store.hasher.hash(password), expires_at=expires_at,
                       self_service=self_service))

    async def create(self, fields: dict[str, Any]) -> dict[str, Any]:
        password = fields.pop("password", None)
        async with self.store.db.session() as s:
            domain_id = fields.pop("domain_id", None) or DEFAULT_DOMAIN_ID
            await self.store.get(s, Domain, domain_id, "domain")
            row = User(domain_id=domain_id, options={})
            if "options" in fields:
                fields["options"] = self._check_options(fields["options"])
            apply_fields(row, fields, USER_COLUMNS)
            s.add(row)
            await flush_unique(s, "user", f"Duplicate entry found with name {row.name} at domain ID {domain_id}.")
            pw = None
            if password is not None:
                await self._set_password(s, row, password, self_service=False)
                await s.flush()
                pw = await self.current_password(s, row.id)
            return user_dict(row, pw)

    async def get(self, user_id: str) -> dict[str, Any]:
        async with self.store.db.session() as s:
            row = await self.store.get(s, User, user_id, "user")
            return user_dict(row, await self.current_password(s, user_id))

    async def list(self, query: Mapping[str, str], ids: set[str] | None = None) -> list[dict[str, Any]]:
        async with self.store.db.session() as s:
            stmt = apply_filters(select(User), User, query, {"name", "enabled", "domain_id"})
            if ids is not None:
                stmt = stmt.where(User.id.in_(ids))
            rows = list(await s.scalars(stmt.order_by(User.name)))
            return [user_dict(r) for r in rows]

    async def update(self, user_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        password = fields.pop("password", None)
        async with self.store.db.session() as s:
            row = await self.store.get(s, User, user_id, "user")
            if "domain_id" in fields and fields.pop("domain_id") != row.domain_id:
                raise errors.ValidationError("Update of `domain_id` is not allowed.")
            if "options" in fields:
                fields["options"] = {**(row.options or {}), **self._check_options(fields["options"])}
                fields["options"] = {k: v for k, v in fields["options"].items() if v is not None}
            was_enabled = row.enabled
            apply_fields(row, fields, USER_COLUMNS)
            await flush_unique(s, "user", f"Duplicate entry found with name {row.name} at domain ID {row.domain_id}.")
            if password is not None:
                await self._set_password(s, row, password, self_service=False)
            if password is not None or (was_enabled and not row.enabled):
                s.add(RevocationEvent(user_id=user_id, issued_before=utcnow()))
            if row.enabled and not was_enabled:
                row.failed_auth_count = 0
            await self.store.bump_revision(s)
            await s.flush()
            result = user_dict(row, await self.current_password(s, user_id))
        await self.store.changed()
        return result

    async def change_own_password(self, user_id: str, original: str, new: str) -> None:
        """``POST /v3/users/{id}/password``: the user proves the old password first."""
        async with self.store.db.session() as s:
            row = await self.store.get(s, User, user_id, "user")
            current = await self.current_password(s, user_id)
            if not await self.store.hasher.verify(current.hash if current else None, original):
                raise errors.Unauthorized("The request you have made requires authentication.")
            if (row.options or {}).get("lock_password"):
                raise errors.Forbidden("You are not allowed to change the password of this user.")
            min_days = self.rules.minimum_password_age
            if min_days and current is not None and current.self_service:
                ready = current.created_at + dt.timedelta(days=min_days)
                if utcnow() < ready:
                    raise errors.Forbidden(
                        f"You cannot change your password at this time due to the minimum password age. "
                        f"Once you change your password, it must be used for {min_days} day(s) before it can be "
                        f"changed. Please try again in {(ready - utcnow()).days + 1} day(s) or contact your administrator "
                        f"to reset your password.")
            await self._set_password(s, row, new, self_service=True)
            s.add(RevocationEvent(user_id=user_id, issued_before=utcnow()))
            await self.store.bump_revision(s)
        await self.store.changed()

    async def delete(self, user_id: str) -> None:
        async with self.store.db.session() as s:
            row = await self.store.get(s, User, user_id, "user")
            await s.execute(delete(Assignment).where(Assignment.actor_id == user_id))
            await s.execute(delete(Password).where(Password.user_id == user_id))
            s.add(RevocationEvent(user_id=user_id, issued_before=utcnow()))
            await s.delete(row)
            await self.store.bump_revision(s)
        await self.store.changed()
