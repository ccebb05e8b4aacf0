"""A periodic job for services' background loops (sweeps, reports, resyncs)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("kumo.periodic")


async def every(interval: float, work: Callable[[], Awaitable[object]]) -> None:
    """Run ``work`` every ``interval`` seconds until cancelled; a failure is logged, not fatal (the next round
    may succeed: the database was away, a driver hiccuped)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await work()
        except Exception:  # noqa: BLE001 - the loop must outlive any one round
            log.warning("periodic %s failed", getattr(work, "__qualname__", work), exc_info=True)
