"""Domains, projects and groups: Keystone's resource and group backends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.core import errors
from kumo.identity.filters import apply_filters
from kumo.identity.models import Assignment, Domain, Group, Membership, Project, RevocationEvent, User
from kumo.identity.store import IdentityStore, apply_fields, flush_unique
from kumo.core.db import utcnow

DEFAULT_DOMAIN_ID = "default"


def domain_dict(row: Domain) -> dict[str, Any]:
    return {**(row.extra or {}), "id": row.id, "name": row.name, "description": row.description,
            "enabled": row.enabled, "tags": (row.extra or {}).get("tags", []), "options": {}}


def project_dict(row: Project) -> dict[str, Any]:
    return {**(row.extra or {}), "id": row.id, "name": row.name, "domain_id": row.domain_id,
            "parent_id": row.parent_id or row.domain_id, "description": row.description,
            "enabled": row.enabled, "is_domain": False, "tags": list(row.tags or []), "options": {}}


def group_dict(row: Group) -> dict[str, Any]:
    return {**(row.extra or {}), "id": row.id, "name": row.name, "domain_id": row.domain_id,
            "description": row.description}


class DomainService:
    def __init__(self, store: IdentityStore) -> None:
        self.store = store

    async def create(self, fields: dict[str, Any]) -> dict[str, Any]:
        async with self.store.db.session() as s:
            row = Domain(id=fields.pop("id", None) or None)
            apply_fields(row, fields, {"name", "description", "enabled"})
            s.add(row)
            await flush_unique(s, "domain", f"Duplicate entry found with name {row.name}.")
            return domain_dict(row)

    async def get(self, domain_id: str) -> dict[str, Any]:
        async with self.store.db.session() as s:
            return domain_dict(await self.store.get(s, Domain, domain_id, "domain"))

    async def list(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        async with self.store.db.session() as s:
            stmt = apply_filters(select(Domain), Domain, query, {"name", "enabled"}).order_by(Domain.name)
            return [domain_dict(r) for r in await s.scalars(stmt)]

    async def update(self, domain_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        async with self.store.db.session() as s:
            row = await self.store.get(s, Domain, domain_id, "domain")
            if domain_id == DEFAULT_DOMAIN_ID and fields.get("enabled") is False:
                raise errors.Forbidden("The default domain cannot be disabled.")
            apply_fields(row, fields, {"name", "description", "enabled"})
            await flush_unique(s, "domain", f"Duplicate entry found with name {row.name}.")
            await self.store.bump_revision(s)
            result = domain_dict(row)
        await self.store.changed()
        return result

    async def delete(self, domain_id: str) -> None:
        async with self.store.db.session() as s:
            row = await self.store.get(s, Domain, domain_id, "domain")
            if row.enabled:
                raise errors.Forbidden("Cannot delete a domain that is enabled, please disable it first.")
            for model in (Project, User, Group):
                if await s.scalar(select(model.id).where(model.domain_id == domain_id).limit(1)):
                    raise errors.Conflict(f"Cannot delete domain {domain_id}: it still owns {model.__tablename__[9:]}.")
            await s.execute(delete(Assignment).where(Assignment.target_id == domain_id))
            await s.delete(row)
            await self.store.bump_revision(s)
        await self.store.changed()


class ProjectService:
    def __init__(self, store: IdentityStore) -> None:
        self.store = store

    async def _resolve_parent(self, s: AsyncSession, domain_id: str, parent_id: str | None) -> str | None:
        if parent_id is None or parent_id == domain_id:
            return None
        parent = await s.get(Project, parent_id)
        if parent is None:
            raise errors.ValidationError(f"Could not find project: {parent_id}.")
        if parent.domain_id != domain_id:
            raise errors.ValidationError("Cannot create project: the parent project is in another domain.")
        return parent.id

    async def create(self, fields: dict[str, Any]) -> dict[str, Any]:
        async with self.store.db.session() as s:
            domain_id = fields.pop("domain_id", None) or DEFAULT_DOMAIN_ID
            await self.store.get(s, Domain, domain_id, "domain")
            parent_id = await self._resolve_parent(s, domain_id, fields.pop("parent_id", None))
            fields.pop("is_domain", None)
            row = Project(domain_id=domain_id, parent_id=parent_id, tags=[])
            apply_fields(row, fields, {"name", "description", "enabled", "tags"})
            s.add(row)
            await flush_unique(s, "project", f"Duplicate entry found with name {row.name} at domain ID {domain_id}.")
            return project_dict(row)

    async def get(self, project_id: str) -> dict[str, Any]:
        async with self.store.db.session() as s:
            return project_dict(await self.store.get(s, Project, project_id, "project"))

    async def list(self, query: Mapping[str, str], ids: set[str] | None = None) -> list[dict[str, Any]]:
        async with self.store.db.session() as s:
            stmt = apply_filters(select(Project), Project, query, {"name", "enabled", "domain_id"})
            if "parent_id" in query:
                parent = query["parent_id"]
                stmt = stmt.where(Project.parent_id == parent) if len(parent) and await s.get(Project, parent) \
                    else stmt.where(Project.parent_id.is_(None), Project.domain_id == parent)
            if ids is not None:
                stmt = stmt.where(Project.id.in_(ids))
            rows = [project_dict(r) for r in await s.scalars(stmt.order_by(Project.name))]
        if "tags" in query:
            wanted = set(query["tags"].split(","))
            rows = [r for r in rows if wanted <= set(r["tags"])]
        if "tags-any" in query:
            wanted = set(query["tags-any"].split(","))
            rows = [r for r in rows if wanted & set(r["tags"])]
        return rows

    async def update(self, project_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        async with self.store.db.session() as s:
            row = await self.store.get(s, Project, project_id, "project")
            for immutable in ("domain_id", "parent_id", "is_domain"):
                if immutable in fields and fields[immutable] != project_dict(row)[immutable]:
                    raise errors.ValidationError(f"Update of `{immutable}` is not allowed.")
                fields.pop(immutable, None)
            apply_fields(row, fields, {"name", "description", "enabled", "tags"})
            await flush_unique(s, "project", f"Duplicate entry found with name {row.name} at domain ID {row.domain_id}.")
            await self.store.bump_revision(s)
            result = project_dict(row)
        await self.store.changed()
        return result

    async def delete(self, project_id: str) -> None:
        async with self.store.db.session() as s:
            row = await self.store.get(s, Project, project_id, "project")
            if await s.scalar(select(Project.id).where(Project.parent_id == project_id).limit(1)):
                raise errors.Forbidden(
                    f"Cannot delete the project {project_id} since it is not a leaf in the hierarchy.")
            await s.execute(delete(Assignment).where(Assignment.target_id == project_id))
            s.add(RevocationEvent(project_id=project_id, issued_before=utcnow()))
            await s.delete(row)
            await self.store.bump_revision(s)
        await self.store.changed()


class GroupService:
    def __init__(self, store: IdentityStore) -> None:
        self.store = store

    async def create(self, fields: dict[str, Any]) -> dict[str, Any]:
        async with self.store.db.session() as s:
            domain_id = fields.pop("domain_id", None) or DEFAULT_DOMAIN_ID
            await self.store.get(s, Domain, domain_id, "domain")
            row = Group(domain_id=domain_id)
            apply_fields(row, fields, {"name", "description"})
            s.add(row)
            await flush_unique(s, "group", f"Duplicate entry found with name {row.name} at domain ID {domain_id}.")
            return group_dict(row)

    async def get(self, group_id: str) -> dict[str, Any]:
        async with self.store.db.session() as s:
            return group_dict(await self.store.get(s, Group, group_id, "group"))

    async def list(self, query: Mapping[str, str], user_id: str | None = None) -> list[dict[str, Any]]:
        async with self.store.db.session() as s:
            stmt = apply_filters(select(Group), Group, query, {"name", "domain_id"})
            if user_id is not None:
                await self.store.get(s, User, user_id, "user")
                stmt = stmt.join(Membership, Membership.group_id == Group.id).where(Membership.user_id == user_id)
            return [group_dict(r) for r in await s.scalars(stmt.order_by(Group.name))]

    async def update(self, group_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        async with self.store.db.session() as s:
            row = await self.store.get(s, Group, group_id, "group")
            if "domain_id" in fields and fields.pop("domain_id") != row.domain_id:
                raise errors.ValidationError("Update of `domain_id` is not allowed.")
            apply_fields(row, fields, {"name", "description"})
            await flush_unique(s, "group", f"Duplicate entry found with name {row.name} at domain ID {row.domain_id}.")
            return group_dict(row)

    async def delete(self, group_id: str) -> None:
        async with self.store.db.session() as s:
            row = await self.store.get(s, Group, group_id, "group")
            await s.execute(delete(Assignment).where(Assignment.actor_id == group_id))
            await s.execute(delete(Membership).where(Membership.group_id == group_id))
            await s.delete(row)
            await self.store.bump_revision(s)
        await self.store.changed()

    async def member_ids(self, group_id: str) -> set[str]:
        """Ids of the users in a group (404 for an unknown group)."""
        async with self.store.db.session() as s:
            await self.store.get(s, Group, group_id, "group")
            return set(await s.scalars(select(Membership.user_id).where(Membership.group_id == group_id)))

    async def add_user(self, group_id: str, user_id: str) -> None:
        async with self.store.db.session() as s:
            await self.store.get(s, Group, group_id, "group")
            await self.store.get(s, User, user_id, "user")
            if await s.get(Membership, (user_id, group_id)) is None:
                s.add(Membership(user_id=user_id, group_id=group_id))
                await self.store.bump_revision(s)
        await self.store.changed()

    async def check_user(self, group_id: str, user_id: str) -> None:
        async with self.store.db.session() as s:
            await self.store.get(s, Group, group_id, "group")
            await self.store.get(s, User, user_id, "user")
            if await s.get(Membership, (user_id, group_id)) is None:
                raise errors.NotFound(f"User '{user_id}' not found in group '{group_id}'")

    async def remove_user(self, group_id: str, user_id: str) -> None:
        async with self.store.db.session() as s:
            await self.check_user(group_id, user_id)
            await s.execute(delete(Membership).where(Membership.user_id == user_id, Membership.group_id == group_id))
            s.add(RevocationEvent(user_id=user_id, issued_before=utcnow()))
            await self.store.bump_revision(s)
        await self.store.changed()
