"""What every network resource service shares: the caller, visibility, standard attributes, tags, time format."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.core.auth import AuthContext
from kumo.core.db import utcnow
from kumo.network.models import Tag


@dataclass(frozen=True)
class Caller:
    """Who asks: the project and whether they are an admin (Neutron's ``context.is_admin``)."""

    project_id: str
    is_admin: bool = False

    @classmethod
    def of(cls, ctx: AuthContext) -> Caller:
        return cls(project_id=ctx.project_id or "", is_admin="admin" in (r.lower() for r in ctx.roles))

    def owns(self, project_id: str) -> bool:
        return self.is_admin or project_id == self.project_id


def isotime(value: dt.datetime | None) -> str | None:
    """Neutron's timestamps: ``2016-03-08T20:19:41Z``."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def standard_view(row: Any, tags: Iterable[str]) -> dict[str, Any]:
    """The standard attributes and ownership keys every resource shows."""
    return {"tenant_id": row.project_id, "project_id": row.project_id, "description": row.description,
            "tags": sorted(tags), "created_at": isotime(row.created_at), "updated_at": isotime(row.updated_at),
            "revision_number": row.revision_number}


def touch(row: Any) -> None:
    """A change: ``updated_at`` now, ``revision_number`` + 1 (Neutron bumps it on every update)."""
    row.updated_at = utcnow()
    row.revision_number = (row.revision_number or 0) + 1


async def tags_of(s: AsyncSession, resource_type: str, ids: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {i: [] for i in ids}
    for start in range(0, len(ids), 500):
        rows = await s.execute(select(Tag.resource_id, Tag.tag).where(
            Tag.resource_type == resource_type, Tag.resource_id.in_(ids[start:start + 500])))
        for rid, tag in rows:
            found[rid].append(tag)
    return found


async def drop_tags(s: AsyncSession, resource_type: str, resource_id: str) -> None:
    await s.execute(delete(Tag).where(Tag.resource_type == resource_type, Tag.resource_id == resource_id))
