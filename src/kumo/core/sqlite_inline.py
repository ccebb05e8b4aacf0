"""SQLite in the event loop's own thread: aiosqlite's interface without its worker thread.

aiosqlite runs every call on a per-connection thread and wakes the event loop
for each result; SQLAlchemy makes four or five such calls per statement
(cursor, execute, description, fetch, close), so on a small VM a statement
that SQLite answers in microseconds cost about a millisecond of thread
hand-offs (measured: 1.0 ms for ``SELECT 1``; 0.08 ms inline). Kumo's
queries on its embedded database are short indexed lookups, so running them
in the loop thread is both faster and simpler.

This is safe only because :class:`kumo.core.db.Database` lets one SQLite
transaction of the process run at a time: a second connection that wanted
to write meanwhile would wait in SQLite's busy handler *inside* the event
loop and stall it. For the same reason the busy timeout is short: the only
other writers are other processes (``kumo db upgrade``), which the all-in-one
node does not run beside itself.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Generator
from functools import partial
from typing import Any

import aiosqlite

#: Seconds a statement may wait for another process' write lock before "database is locked".
BUSY_TIMEOUT = 5.0


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection whose calls run synchronously in the calling (event loop) thread."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    async def _connect(self) -> InlineConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self) -> Generator[Any, None, InlineConnection]:
        return self._connect().__await__()

    def stop(self) -> asyncio.Future[Any] | None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        return None

    async def close(self) -> None:
        self.stop()


def inline_creator(path: str) -> Callable[[], Any]:
    """An ``async_creator`` for SQLAlchemy's aiosqlite dialect that makes inline connections."""
    connector = partial(sqlite3.connect, path, timeout=BUSY_TIMEOUT, check_same_thread=False)

    async def create() -> InlineConnection:
        return await InlineConnection(connector, 64)

    return create
