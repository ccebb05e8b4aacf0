"""Neutron's quotas: defaults from config, per-project overrides, usage counted from the tables.

A create checks ``used + 1 <= limit`` in the transaction that inserts the
row (Neutron's quota engine without reservations); -1 is unlimited.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.core.config import NetworkOptions
from kumo.core.db import Database
from kumo.network.errors import BadRequest, OverQuota
from kumo.network.models import FloatingIP, Network, Port, Quota, Router, SecurityGroup, SecurityGroupRule, Subnet

COUNTED: dict[str, Any] = {"network": Network, "subnet": Subnet, "port": Port, "security_group": SecurityGroup,
                           "security_group_rule": SecurityGroupRule, "router": Router, "floatingip": FloatingIP}
RESOURCES = ("network", "subnet", "port", "router", "floatingip", "security_group", "security_group_rule")


class QuotaService:
    def __init__(self, db: Database, options: NetworkOptions) -> None:
        self.db = db
        self.options = options

    def defaults(self) -> dict[str, int]:
        return {r: int(getattr(self.options, f"quota_{r}")) for r in RESOURCES}

    async def limits(self, s: AsyncSession, project_id: str) -> dict[str, int]:
        limits = self.defaults()
        for resource, hard in await s.execute(select(Quota.resource, Quota.hard_limit).where(
                Quota.project_id == project_id)):
            limits[resource] = hard
        return limits

    @staticmethod
    async def used(s: AsyncSession, project_id: str, resource: str) -> int:
        model = COUNTED.get(resource)
        if model is None:
            return 0
        return int(await s.scalar(select(func.count()).select_from(model).where(model.project_id == project_id))
                   or 0)

    async def check(self, s: AsyncSession, project_id: str, resource: str, adding: int = 1) -> None:
        """409 OverQuota when ``adding`` more would pass the project's limit."""
        limit = (await self.limits(s, project_id))[resource]
        if limit >= 0 and await self.used(s, project_id, resource) + adding > limit:
            raise OverQuota([resource])

    async def show(self, project_id: str) -> dict[str, int]:
        async with self.db.session() as s:
            return await self.limits(s, project_id)

    async def details(self, project_id: str) -> dict[str, dict[str, int]]:
        async with self.db.session() as s:
            limits = await self.limits(s, project_id)
            return {r: {"limit": limits[r], "used": await self.used(s, project_id, r), "reserved": 0}
                    for r in RESOURCES}

    async def update(self, project_id: str, values: dict[str, Any]) -> dict[str, int]:
        for resource, value in values.items():
            if resource not in RESOURCES:
                raise BadRequest(f"Unrecognized attribute(s) '{resource}'")
            if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).lstrip("-").isdigit() \
                    or int(value) < -1:
                raise BadRequest(f"Invalid input for {resource}. Reason: '{value}' is not a valid quota limit "
                                 "(an integer of -1 or more).")
        async with self.db.session() as s:
            for resource, value in values.items():
                await s.execute(delete(Quota).where(Quota.project_id == project_id, Quota.resource == resource))
                s.add(Quota(project_id=project_id, resource=resource, hard_limit=int(value)))
            await s.flush()
            return await self.limits(s, project_id)

    async def reset(self, project_id: str) -> None:
        async with self.db.session() as s:
            await s.execute(delete(Quota).where(Quota.project_id == project_id))

    async def projects_with_quotas(self) -> dict[str, dict[str, int]]:
        async with self.db.session() as s:
            projects = list(await s.scalars(select(Quota.project_id).distinct()))
            return {p: await self.limits(s, p) for p in projects}
