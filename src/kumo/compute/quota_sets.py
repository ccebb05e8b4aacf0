"""Quota sets as ``os-quota-sets`` and ``/limits`` show and change them (Nova's ``DbQuotaDriver``).

Limits are a project's ``compute_quotas`` rows over the defaults of
:mod:`kumo.compute.quotas`; Nova's deprecated nova-network quotas
(``fixed_ips``, ``floating_ips``, ``security_groups``,
``security_group_rules``) are kept for the old microversions, unlimited by
default. Usage is counted (Nova's counted quotas): instances, cores and ram
from live instances, server groups from the groups; ``key_pairs`` and
``server_group_members`` are per user and, as in Nova, always show 0 in use
at project level. Asked for a user (``?user_id=``), instances, cores, ram
and server groups are counted for that user.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.compute.models import Instance, Quota, ServerGroup
from kumo.compute.quotas import DEFAULT_QUOTAS
from kumo.core import errors
from kumo.core.db import Database, utcnow

#: nova-network's quotas, still in Nova's API below 2.36 (unlimited: Nova no longer enforces them).
NETWORK_QUOTAS: dict[str, int] = {"fixed_ips": -1, "floating_ips": -1, "security_groups": -1,
                                  "security_group_rules": -1}
ALL_DEFAULTS: dict[str, int] = {**DEFAULT_QUOTAS, **NETWORK_QUOTAS}
#: Left out of responses (and refused in bodies) from 2.36 and from 2.57 (Nova's FILTERED_QUOTAS_*).
FILTERED_V236 = frozenset(("fixed_ips", "floating_ips", "security_groups", "security_group_rules"))
FILTERED_V257 = FILTERED_V236 | {"injected_files", "injected_file_content_bytes", "injected_file_path_bytes"}


def filtered_for(v236: bool, v257: bool) -> frozenset[str]:
    """The resources a microversion does not show."""
    return FILTERED_V257 if v257 else FILTERED_V236 if v236 else frozenset()


async def _limits(s: AsyncSession, project_id: str) -> dict[str, int]:
    limits = dict(ALL_DEFAULTS)
    rows = await s.execute(select(Quota.resource, Quota.hard_limit).where(Quota.project_id == project_id))
    limits.update({str(resource): int(limit) for resource, limit in rows if resource in ALL_DEFAULTS})
    return limits


async def _usage(s: AsyncSession, project_id: str, user_id: str | None = None) -> dict[str, int]:
    """Nova's ``_get_usages``: counted resources for the project (or one of its users), 0 for the rest."""
    usage = dict.fromkeys(ALL_DEFAULTS, 0)
    stmt = select(Instance.flavor).where(Instance.project_id == project_id, Instance.deleted_at.is_(None))
    groups = select(func.count()).select_from(ServerGroup).where(ServerGroup.project_id == project_id)
    if user_id is not None:
        stmt = stmt.where(Instance.user_id == user_id)
        groups = groups.where(ServerGroup.user_id == user_id)
    for (flavor,) in await s.execute(stmt):
        usage["instances"] += 1
        usage["cores"] += int(flavor.get("vcpus", 0))
        usage["ram"] += int(flavor.get("memory_mb", 0))
    usage["server_groups"] = int(await s.scalar(groups) or 0)
    return usage


class QuotaSets:
    """Show, detail, update and revert a project's compute quotas."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def limits(self, project_id: str) -> dict[str, int]:
        """Every resource's limit (user quotas fall back to the project's, as Nova's ``get_user_quotas``)."""
        async with self.db.session() as s:
            return await _limits(s, project_id)

    async def detail(self, project_id: str, user_id: str | None = None) -> dict[str, dict[str, int]]:
        """``{resource: {"limit", "in_use", "reserved"}}``; ``reserved`` is always 0 (no reservations)."""
        async with self.db.session() as s:
            limits = await _limits(s, project_id)
            usage = await _usage(s, project_id, user_id)
        return {r: {"limit": limits[r], "in_use": usage[r], "reserved": 0} for r in limits}

    async def update(self, project_id: str, values: Mapping[str, int], force: bool = False) -> dict[str, int]:
        """Nova's ``QuotaSetsController.update``: check every value, then write them all.

        Without ``force`` a limit below what the project already uses is a
        400 (Nova's message); -1 is unlimited and always allowed.
        """
        async with self.db.session() as s:
            if not force:
                usage = await _usage(s, project_id)
                for resource, limit in values.items():
                    minimum = usage[resource]
                    if limit != -1 and limit < minimum:
                        raise errors.BadRequest(f"Quota limit {limit} for {resource} must be greater than or "
                                                f"equal to already used and reserved {minimum}.")
            rows = {q.resource: q for q in await s.scalars(select(Quota).where(Quota.project_id == project_id))}
            now = utcnow()
            for resource, limit in values.items():
                row = rows.get(resource)
                if row is None:
                    s.add(Quota(project_id=project_id, resource=resource, hard_limit=limit, created_at=now))
                else:
                    row.hard_limit, row.updated_at = limit, now
            await s.flush()
            return await _limits(s, project_id)

    async def revert(self, project_id: str) -> None:
        """Nova's ``destroy_all_by_project``: back to the defaults."""
        async with self.db.session() as s:
            await s.execute(delete(Quota).where(Quota.project_id == project_id))
