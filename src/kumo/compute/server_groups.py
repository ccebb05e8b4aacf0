"""Server groups: (anti-)affinity sets of servers, as Nova's ``InstanceGroup`` (``os-server-groups``).

A group belongs to a project; non-admins only ever see their project's
groups (another project's group is a 404, as in Nova's
``_instance_group_get_query``). Members are recorded when a server is
created with the ``group`` scheduler hint; only live servers are shown.
The ``server_groups`` quota counts a project's groups, checked before and
again after the insert (Nova's ``recheck_quota``) so a race cannot overshoot.
"""

from __future__ import annotations

import datetime as dt
import uuid as uuidlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.compute import quotas
from kumo.compute.context import RequestContext
from kumo.compute.models import Instance, ServerGroup, ServerGroupMember
from kumo.core import errors
from kumo.core.db import Database

POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")
QUOTA_MESSAGE = "Quota exceeded, too many server groups."


@dataclass(frozen=True)
class GroupRecord:
    uuid: str
    name: str
    project_id: str
    user_id: str
    policy: str
    rules: dict[str, Any]
    created_at: dt.datetime
    members: list[str] = field(default_factory=list, hash=False)


def _record(row: ServerGroup, members: list[str]) -> GroupRecord:
    rules = {k: int(v) if k == "max_server_per_host" else v for k, v in (row.rules or {}).items()}
    return GroupRecord(uuid=row.uuid, name=row.name, project_id=row.project_id, user_id=row.user_id,
                       policy=row.policy, rules=rules, created_at=row.created_at, members=members)


async def live_members(s: AsyncSession, group_uuids: Iterable[str]) -> dict[str, list[str]]:
    """Each group's members that are not deleted (Nova's ``_get_not_deleted``)."""
    found: dict[str, list[str]] = {g: [] for g in group_uuids}
    if not found:
        return found
    rows = await s.execute(
        select(ServerGroupMember.group_uuid, ServerGroupMember.instance_uuid)
        .join(Instance, Instance.uuid == ServerGroupMember.instance_uuid)
        .where(ServerGroupMember.group_uuid.in_(list(found)), Instance.deleted_at.is_(None))
        .order_by(ServerGroupMember.instance_uuid))
    for group_uuid, instance_uuid in rows:
        found[group_uuid].append(instance_uuid)
    return found


class ServerGroupService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def _load(self, s: AsyncSession, ctx: RequestContext, uuid: str) -> ServerGroup:
        stmt = select(ServerGroup).where(ServerGroup.uuid == uuid)
        if not ctx.is_admin:
            stmt = stmt.where(ServerGroup.project_id == ctx.project_id)
        row = await s.scalar(stmt)
        if row is None:
            raise errors.NotFound(f"Instance group {uuid} could not be found.")
        return row

    async def get(self, ctx: RequestContext, uuid: str) -> GroupRecord:
        async with self.db.session() as s:
            row = await self._load(s, ctx, uuid)
            return _record(row, (await live_members(s, [row.uuid]))[row.uuid])

    async def list(self, ctx: RequestContext, *, all_projects: bool, offset: int = 0,
                   limit: int | None = None) -> list[GroupRecord]:
        """The project's groups (every project's with ``all_projects``), oldest first, Nova's offset/limit."""
        stmt = select(ServerGroup).order_by(ServerGroup.created_at, ServerGroup.uuid).offset(offset)
        if not all_projects:
            stmt = stmt.where(ServerGroup.project_id == ctx.project_id)
        if limit is not None:
            stmt = stmt.limit(limit)
        async with self.db.session() as s:
            rows = list(await s.scalars(stmt))
            members = await live_members(s, [r.uuid for r in rows])
        return [_record(r, members[r.uuid]) for r in rows]

    async def _check_quota(self, s: AsyncSession, project_id: str, delta: int) -> None:
        limit = await quotas.limit_for(s, project_id, "server_groups")
        count = await s.scalar(select(func.count()).select_from(ServerGroup)
                               .where(ServerGroup.project_id == project_id))
        if quotas.exceeds(limit, int(count or 0), delta):
            raise errors.OverQuota(QUOTA_MESSAGE)

    async def create(self, ctx: RequestContext, name: str, policy: str, rules: dict[str, Any]) -> GroupRecord:
        """A new empty group in the caller's project (403 over the ``server_groups`` quota)."""
        if policy not in POLICIES:
            raise errors.BadRequest(f"Invalid policy {policy}")
        project_id = str(ctx.project_id)
        async with self.db.session() as s:
            await self._check_quota(s, project_id, 1)
        row = ServerGroup(uuid=str(uuidlib.uuid4()), name=name, project_id=project_id, user_id=str(ctx.user_id),
                          policy=policy, rules=dict(rules))
        async with self.db.session() as s:
            s.add(row)
        try:
            async with self.db.session() as s:
                await self._check_quota(s, project_id, 0)
        except errors.OverQuota:
            await self._destroy(row.uuid)
            raise
        return _record(row, [])

    async def delete(self, ctx: RequestContext, uuid: str) -> None:
        async with self.db.session() as s:
            await self._load(s, ctx, uuid)
        await self._destroy(uuid)

    async def _destroy(self, uuid: str) -> None:
        async with self.db.session() as s:
            await s.execute(delete(ServerGroupMember).where(ServerGroupMember.group_uuid == uuid))
            await s.execute(delete(ServerGroup).where(ServerGroup.uuid == uuid))
