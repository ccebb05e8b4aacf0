"""Service heartbeats: each running service says "alive" every few seconds.

Rows live in ``core_services`` (one per host and binary). A service is *up*
when its last heartbeat is younger than ``service_down_time`` and it is not
forced down, which is how ``kumo status`` (and later ``os-services``) tell
live hosts from dead ones without asking them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select

from kumo import __version__
from kumo.core.db import Database, utcnow
from kumo.core.models import ServiceRecord

log = logging.getLogger("kumo.heartbeat")


@dataclass(frozen=True)
class ServiceStatus:
    host: str
    binary: str
    role: str
    topic: str
    up: bool
    disabled: bool
    last_seen: dt.datetime
    version: str


class Heartbeat:
    """Keeps one (host, binary) row fresh until stopped."""

    def __init__(self, db: Database, *, host: str, binary: str, role: str, topic: str = "",
                 interval: float = 10.0) -> None:
        self.db = db
        self.host, self.binary, self.role, self.topic = host, binary, role, topic
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def beat(self) -> None:
        async with self.db.session() as s:
            row = await s.scalar(select(ServiceRecord).where(ServiceRecord.host == self.host,
                                                             ServiceRecord.binary == self.binary))
            if row is None:
                row = ServiceRecord(host=self.host, binary=self.binary, topic=self.topic, role=self.role,
                                    report_count=0, version=__version__)
                s.add(row)
            row.report_count += 1
            row.updated_at = utcnow()
            row.topic, row.role, row.version = self.topic, self.role, __version__

    async def start(self) -> None:
        await self.beat()
        self._task = asyncio.create_task(self._run(), name=f"heartbeat-{self.binary}")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.beat()
            except Exception:  # noqa: BLE001 - keep beating when the DB is briefly away
                log.warning("heartbeat of %s failed", self.binary, exc_info=True)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def service_statuses(db: Database, down_time: float) -> list[ServiceStatus]:
    now = utcnow()
    async with db.session() as s:
        rows = list(await s.scalars(select(ServiceRecord).order_by(ServiceRecord.host, ServiceRecord.binary)))
    return [ServiceStatus(host=r.host, binary=r.binary, role=r.role, topic=r.topic, disabled=r.disabled,
                          up=not r.forced_down and (now - r.updated_at).total_seconds() < down_time,
                          last_seen=r.updated_at, version=r.version) for r in rows]
