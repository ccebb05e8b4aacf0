"""Compute quotas: per-project limits with Nova's defaults (``nova/conf/quota.py``).

A project without a row in ``compute_quotas`` for a resource gets the
default, as Nova's ``default`` quota class; -1 means unlimited. Usage is
counted from the resources themselves when a request needs it (Nova's
"counted quotas"), so there is no usage table to drift.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.compute.models import Instance, Quota
from kumo.core import errors

#: Nova's defaults. ``key_pairs`` and ``server_group_members`` count per user, the rest per project.
DEFAULT_QUOTAS: dict[str, int] = {
    "instances": 10,
    "cores": 20,
    "ram": 50 * 1024,
    "metadata_items": 128,
    "injected_files": 5,
    "injected_file_content_bytes": 10 * 1024,
    "injected_file_path_bytes": 255,
    "key_pairs": 100,
    "server_groups": 10,
    "server_group_members": 10,
}


async def limit_for(s: AsyncSession, project_id: str | None, resource: str) -> int:
    """The hard limit of ``resource`` for ``project_id``: its own row, else the default."""
    if project_id is not None:
        row = await s.scalar(select(Quota.hard_limit).where(Quota.project_id == project_id,
                                                            Quota.resource == resource))
        if row is not None:
            return int(row)
    return DEFAULT_QUOTAS[resource]


def exceeds(limit: int, in_use: int, delta: int = 1) -> bool:
    """True when adding ``delta`` to ``in_use`` goes over ``limit`` (-1 = unlimited)."""
    return limit >= 0 and in_use + delta > limit


async def limits_for(s: AsyncSession, project_id: str | None) -> dict[str, int]:
    """Every resource's limit for ``project_id`` (its rows over the defaults)."""
    limits = dict(DEFAULT_QUOTAS)
    if project_id is not None:
        rows = await s.execute(select(Quota.resource, Quota.hard_limit).where(Quota.project_id == project_id))
        limits.update({resource: int(limit) for resource, limit in rows})
    return limits


async def instance_usage(s: AsyncSession, project_id: str) -> dict[str, int]:
    """``instances``, ``cores`` and ``ram`` in use by the project's live instances (Nova counts them so).

    The flavor is a JSON snapshot on each instance; the sums are taken by the
    database (``json_extract`` / ``JSON_EXTRACT`` / ``->>``, which SQLAlchemy
    picks per engine), so a create does not decode every instance's flavor.
    """
    count, cores, ram = (await s.execute(select(
        func.count(), func.coalesce(func.sum(Instance.flavor["vcpus"].as_integer()), 0),
        func.coalesce(func.sum(Instance.flavor["memory_mb"].as_integer()), 0))
        .where(Instance.project_id == project_id, Instance.deleted_at.is_(None)))).one()
    return {"instances": int(count), "cores": int(cores), "ram": int(ram)}


async def check_instances(s: AsyncSession, project_id: str, count: int, vcpus: int, memory_mb: int,
                          *, min_count: int | None = None) -> int:
    """How many of ``count`` instances of this size fit the project's quota; raise when not even ``min_count``.

    As Nova's ``compute.api._check_num_instances_quota``: with max_count >
    min_count it lowers the number to what fits, and refuses (403, Nova's
    ``TooManyInstances`` message) only when ``min_count`` does not fit.
    """
    limits = await limits_for(s, project_id)
    usage = await instance_usage(s, project_id)
    wanted = {"instances": 1, "cores": vcpus, "ram": memory_mb}
    fits = count
    for resource, each in wanted.items():
        limit = limits[resource]
        if limit < 0 or each == 0:
            continue
        fits = min(fits, max(0, (limit - usage[resource]) // each))
    floor = count if min_count is None else min_count
    if fits >= floor:
        return fits
    overs = [r for r, each in wanted.items() if exceeds(limits[r], usage[r], each * floor)]
    requested = ", ".join(str(wanted[r] * floor) for r in overs)
    used = ", ".join(str(usage[r]) for r in overs)
    allowed = ", ".join(str(limits[r]) for r in overs)
    names = ", ".join(overs)
    raise errors.OverQuota(f"Quota exceeded for {names}: Requested {requested}, but already used {used} "
                           f"of {allowed} {names}")
