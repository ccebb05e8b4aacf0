"""Roles, implied roles, and grants of roles to users and groups.

A grant is a row (actor, target, role, inherited). What a user may do on a
scope (their *effective* roles) is the union of their own grants, their
groups' grants, grants inherited from the domain and parent projects, and
everything those roles imply (``admin`` -> ``member`` -> ``reader``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.core import errors
from kumo.core.db import utcnow
from kumo.identity.filters import apply_filters
from kumo.identity.models import Assignment, Domain, Group, ImpliedRole, Membership, Project, RevocationEvent, Role, User
from kumo.identity.store import IdentityStore, apply_fields, flush_unique

SYSTEM_TARGET = "system"
PROHIBITED_IMPLIED_ROLES = ("admin",)  # Keystone's [assignment] prohibited_implied_role default
ACTOR_MODELS: dict[str, tuple[type[User] | type[Group], str]] = {"user": (User, "user"), "group": (Group, "group")}
TARGET_MODELS: dict[str, tuple[type[Project] | type[Domain] | None, str]] = {
    "project": (Project, "project"), "domain": (Domain, "domain"), "system": (None, "system")}


def role_dict(row: Role) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "domain_id": row.domain_id or None,
            "description": row.description, "options": dict(row.options or {})}


def assignment_type(actor: str, target: str) -> str:
    return f"{actor.capitalize()}{target.capitalize()}"


class RoleService:
    def __init__(self, store: IdentityStore) -> None:
        self.store = store

    # -- roles -----------------------------------------------------------
    async def create(self, fields: dict[str, Any]) -> dict[str, Any]:
        async with self.store.db.session() as s:
            row = Role(domain_id=fields.pop("domain_id", None) or "", options={})
            apply_fields(row, fields, {"name", "description", "options"}, extra_attr=None)
            s.add(row)
            await flush_unique(s, "role", f"Duplicate entry found with name {row.name}.")
            return role_dict(row)

    async def get(self, role_id: str) -> dict[str, Any]:
        async with self.store.db.session() as s:
            return role_dict(await self.store.get(s, Role, role_id, "role"))

    async def list(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        async with self.store.db.session() as s:
            stmt = apply_filters(select(Role), Role, query, {"name"})
            stmt = stmt.where(Role.domain_id == query.get("domain_id", ""))
            return [role_dict(r) for r in await s.scalars(stmt.order_by(Role.name))]

    async def update(self, role_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        async with self.store.db.session() as s:
            row = await self.store.get(s, Role, role_id, "role")
            if (row.options or {}).get("immutable"):
                # Keystone: an immutable role takes only the update that clears "immutable".
                options = fields.get("options") or {}
                if set(fields) != {"options"} or "immutable" not in options or options["immutable"] not in (False, None):
                    raise errors.Forbidden(f'Unable to update immutable role resource: `{role_id}`. Set resource '
                                           f'option "immutable" to false first.')
            fields.pop("domain_id", None)
            if fields.get("options") is not None:  # options merge; a None value removes one (Keystone)
                merged = {**(row.options or {}), **fields["options"]}
                fields["options"] = {k: v for k, v in merged.items() if v is not None}
            apply_fields(row, fields, {"name", "description", "options"}, extra_attr=None)
            await flush_unique(s, "role", f"Duplicate entry found with name {row.name}.")
            await self.store.bump_revision(s)
            result = role_dict(row)
        await self.store.changed()
        return result

    async def delete(self, role_id: str) -> None:
        async with self.store.db.session() as s:
            row = await self.store.get(s, Role, role_id, "role")
            if (row.options or {}).get("immutable"):
                raise errors.Forbidden(f'Unable to delete immutable role resource: `{role_id}`. Ensure resource '
                                       f'option "immutable" is set to false first.')
            holders = await s.scalars(select(Assignment.actor_id).where(Assignment.role_id == role_id))
            for actor in set(holders):
                s.add(RevocationEvent(user_id=actor, issued_before=utcnow()))
            await s.execute(delete(Assignment).where(Assignment.role_id == role_id))
            await s.execute(delete(ImpliedRole).where(
                (ImpliedRole.prior_role_id == role_id) | (ImpliedRole.implied_role_id == role_id)))
            await s.delete(row)
            await self.store.bump_revision(s)
        await self.store.changed()

    # -- implied roles ----------------------------------------------------
    async def create_implied(self, prior_id: str, implied_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        async with self.store.db.session() as s:
            prior = await self.store.get(s, Role, prior_id, "role")
            implied = await self.store.get(s, Role, implied_id, "role")
            if implied.name in PROHIBITED_IMPLIED_ROLES and not implied.domain_id:
                raise errors.Forbidden(f"{implied_id} is not a valid implied role: the role {implied.name} "
                                       f"may not be implied.")
            if not prior.domain_id and implied.domain_id:
                raise errors.Forbidden(f"{implied_id} is not a valid implied role: "
                                       f"a global role cannot imply a domain-specific role.")
            if prior_id in await self._implied_closure(s, {implied_id}):
                raise errors.Forbidden(f"Implied role {implied_id} would create a loop with {prior_id}.")
            if await s.get(ImpliedRole, (prior_id, implied_id)) is None:
                s.add(ImpliedRole(prior_role_id=prior_id, implied_role_id=implied_id))
                await self.store.bump_revision(s)
            result = role_dict(prior), role_dict(implied)
        await self.store.changed()
        return result

    async def get_implied(self, prior_id: str, implied_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        async with self.store.db.session() as s:
            prior = await self.store.get(s, Role, prior_id, "role")
            implied = await self.store.get(s, Role, implied_id, "role")
            if await s.get(ImpliedRole, (prior_id, implied_id)) is None:
                raise errors.NotFound(f"Could not find implied role: {prior_id} implies {implied_id}.")
            return role_dict(prior), role_dict(implied)

    async def delete_implied(self, prior_id: str, implied_id: str) -> None:
        await self.get_implied(prior_id, implied_id)
        async with self.store.db.session() as s:
            await s.execute(delete(ImpliedRole).where(
                ImpliedRole.prior_role_id == prior_id, ImpliedRole.implied_role_id == implied_id))
            await self.store.bump_revision(s)
        await self.store.changed()

    async def list_implied(self, prior_id: str | None = None) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """``[(prior_role, [implied roles])]`` for one prior role or all of them."""
        async with self.store.db.session() as s:
            if prior_id is not None:
                await self.store.get(s, Role, prior_id, "role")
            stmt = select(ImpliedRole)
            if prior_id is not None:
                stmt = stmt.where(ImpliedRole.prior_role_id == prior_id)
            grouped: dict[str, list[str]] = {}
            for rule in await s.scalars(stmt):
                grouped.setdefault(rule.prior_role_id, []).append(rule.implied_role_id)
            if prior_id is not None:
                grouped.setdefault(prior_id, [])
            roles = {r.id: r for r in await s.scalars(select(Role))}
            return [(role_dict(roles[p]), [role_dict(roles[i]) for i in sorted(imps)]) for p, imps in grouped.items()]

    async def _implied_closure(self, s: AsyncSession, role_ids: Iterable[str]) -> set[str]:
        result = set(role_ids)
        rules: dict[str, list[str]] = {}
        for rule in await s.scalars(select(ImpliedRole)):
            rules.setdefault(rule.prior_role_id, []).append(rule.implied_role_id)
        frontier = list(result)
        while frontier:
            for implied in rules.get(frontier.pop(), []):
                if implied not in result:
                    result.add(implied)
                    frontier.append(implied)
        return result

    # -- grants ------------------------------------------------------------
    async def _check_grant_parts(self, s: AsyncSession, actor: str, actor_id: str, target: str, target_id: str,
                                 role_id: str | None) -> None:
        model, kind = ACTOR_MODELS[actor]
        await self.store.get(s, model, actor_id, kind)
        tmodel, tkind = TARGET_MODELS[target]
        if tmodel is not None:
            await self.store.get(s, tmodel, target_id, tkind)
        if role_id is not None:
            await self.store.get(s, Role, role_id, "role")

    async def grant(self, actor: str, actor_id: str, target: str, target_id: str, role_id: str,
                    inherited: bool = False) -> None:
        async with self.store.db.session() as s:
            await self._check_grant_parts(s, actor, actor_id, target, target_id, role_id)
            key = (assignment_type(actor, target), actor_id, target_id, role_id, inherited)
            if await s.get(Assignment, key) is None:
                s.add(Assignment(type=key[0], actor_id=actor_id, target_id=target_id, role_id=role_id,
                                 inherited=inherited))
                await self.store.bump_revision(s)
        await self.store.changed()

    async def check_grant(self, actor: str, actor_id: str, target: str, target_id: str, role_id: str,
                          inherited: bool = False) -> None:
        async with self.store.db.session() as s:
            await self._check_grant_parts(s, actor, actor_id, target, target_id, role_id)
            key = (assignment_type(actor, target), actor_id, target_id, role_id, inherited)
            if await s.get(Assignment, key) is None:
                raise errors.NotFound(f"Could not find role assignment with role: {role_id}, {actor}: {actor_id}, "
                                      f"{target}: {target_id}.")

    async def revoke(self, actor: str, actor_id: str, target: str, target_id: str, role_id: str,
                     inherited: bool = False) -> None:
        await self.check_grant(actor, actor_id, target, target_id, role_id, inherited)
        async with self.store.db.session() as s:
            await s.execute(delete(Assignment).where(
                Assignment.type == assignment_type(actor, target), Assignment.actor_id == actor_id,
                Assignment.target_id == target_id, Assignment.role_id == role_id, Assignment.inherited == inherited))
            users = [actor_id] if actor == "user" else list(
                await s.scalars(select(Membership.user_id).where(Membership.group_id == actor_id)))
            scope = {} if inherited else {"project": {"project_id": target_id}, "domain": {"domain_id": target_id},
                                          "system": {}}[target]
            for user_id in users:
                s.add(RevocationEvent(user_id=user_id, issued_before=utcnow(), **scope))
            await self.store.bump_revision(s)
        await self.store.changed()

    async def list_grants(self, actor: str, actor_id: str, target: str, target_id: str,
                          inherited: bool = False) -> list[dict[str, Any]]:
        async with self.store.db.session() as s:
            await self._check_grant_parts(s, actor, actor_id, target, target_id, None)
            stmt = select(Role).join(Assignment, Assignment.role_id == Role.id).where(
                Assignment.type == assignment_type(actor, target), Assignment.actor_id == actor_id,
                Assignment.target_id == target_id, Assignment.inherited == inherited)
            return [role_dict(r) for r in await s.scalars(stmt.order_by(Role.name))]
