"""Compute quotas: per-project limits with Nova's defaults (``nova/conf/quota.py``).

A project without a row in ``compute_quotas`` for a resource gets the
default, as Nova's ``default`` quota class; -1 means unlimited. Usage is
counted from the resources themselves when a request needs it (Nova's
"counted quotas"), so there is no usage table to drift.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.compute.models import Quota

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
