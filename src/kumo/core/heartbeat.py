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

from sqlalchemy import select, update

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
    """Keeps the (host, binary) rows of one or many hosts fresh until stopped.

    Many hosts share one heartbeat when one process simulates a fleet
    (``kumo serve --role compute --fake-hosts 1000``): one UPDATE per beat
    for all of them instead of a thousand transactions. ``topic`` may contain
    ``{host}``.
    """

    def __init__(self, db: Database, *, host: str = "", binary: str, role: str, topic: str = "",
                 interval: float = 10.0, hosts: list[str] | None = None) -> None:
        self.db = db
        self.hosts = list(hosts) if hosts else [host]
        self.host, self.binary, self.role, self.topic = self.hosts[0], binary, role, topic
        self.interval = interval
        self._known = False
        self._task: asyncio.Task[None] | None = None

    async def beat(self) -> None:
        now = utcnow()
        async with self.db.session() as s:
            if not self._known:
                existing = set(await s.scalars(select(ServiceRecord.host).where(
                    ServiceRecord.binary == self.binary, ServiceRecord.host.in_(self.hosts))))
                for host in self.hosts:
                    if host not in existing:
                        s.add(ServiceRecord(host=host, binary=self.binary, topic=self.topic.format(host=host),
                                            role=self.role, report_count=0, version=__version__))
                await s.flush()
                self._known = True
            for start in range(0, len(self.hosts), 500):  # stay under every database's bound-parameter limit
                chunk = self.hosts[start:start + 500]
                await s.execute(update(ServiceRecord)
                                .where(ServiceRecord.binary == self.binary, ServiceRecord.host.in_(chunk))
                                .values(report_count=ServiceRecord.report_count + 1, updated_at=now,
                                        role=self.role, version=__version__)
                                .execution_options(synchronize_session=False))

    async def start(self) -> None:
        await self.beat()
        self._task = asyncio.create_task(self._run(), name=f"heartbeat-{self.binary}-{self.host}")

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
