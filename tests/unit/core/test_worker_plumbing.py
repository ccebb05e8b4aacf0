"""Small pieces the workers rely on: exposed endpoints, fleet heartbeats, deadlock retries."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from kumo.core import errors
from kumo.core.bus.base import Exposed, find_method
from kumo.core.db import Database, is_deadlock, retry_deadlocks
from kumo.core.heartbeat import Heartbeat
from kumo.core.models import ServiceRecord


class Worker:
    async def build(self) -> str:
        return "built"

    async def stop(self) -> None:
        raise AssertionError("must not be reachable over the bus")


def test_exposed_offers_only_the_named_methods() -> None:
    endpoint = Exposed(Worker(), {"build"})
    assert find_method(endpoint, "build").__name__ == "build"
    with pytest.raises(errors.NotFound):
        find_method(endpoint, "stop")
    with pytest.raises(errors.NotFound):
        find_method(endpoint, "_target")


class _MysqlError(Exception):
    pass


def _db_error(code: int, text: str) -> OperationalError:
    return OperationalError("UPDATE x", {}, _MysqlError(code, text))


async def test_retry_deadlocks_retries_only_deadlocks() -> None:
    calls = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _db_error(1213, "Deadlock found when trying to get lock")
        return "done"

    assert await retry_deadlocks(flaky) == "done" and len(calls) == 3
    assert is_deadlock(_db_error(1205, "Lock wait timeout exceeded"))
    assert not is_deadlock(_db_error(1062, "Duplicate entry"))

    async def broken() -> None:
        raise _db_error(1062, "Duplicate entry")

    with pytest.raises(OperationalError):
        await retry_deadlocks(broken)

    async def always() -> None:
        raise _db_error(1213, "Deadlock found")

    with pytest.raises(OperationalError):
        await retry_deadlocks(always, attempts=2)


async def test_one_heartbeat_keeps_many_hosts_fresh(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    db = Database(url)
    await db.upgrade()
    try:
        hosts = [f"fake-{i:04d}" for i in range(1200)]  # more than one chunk of the IN list
        beat = Heartbeat(db, hosts=hosts, binary="nova-compute", role="compute", topic="compute.{host}")
        await beat.beat()
        async with db.session() as s:
            rows = {r.host: r for r in await s.scalars(select(ServiceRecord))}
        assert len(rows) == 1200 and rows["fake-0007"].topic == "compute.fake-0007"
        first = rows["fake-1199"].updated_at
        await beat.beat()
        async with db.session() as s:
            rows = {r.host: r for r in await s.scalars(select(ServiceRecord))}
        assert {r.report_count for r in rows.values()} == {2}
        assert rows["fake-1199"].updated_at >= first
        assert rows["fake-1199"].updated_at - first < dt.timedelta(seconds=30)
    finally:
        await db.dispose()
