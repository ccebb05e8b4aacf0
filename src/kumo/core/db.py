"""Database access: SQLAlchemy 2 (async) engines, sessions and migrations.

SQLite (a file in the state directory) is the embedded default; MariaDB
(``mysql+asyncmy://``) and PostgreSQL (``postgresql+asyncpg://``) are chosen
by URL. Every service declares its tables on the one :data:`Base` metadata,
with table names prefixed by the service type (``identity_users``), and owns
an Alembic branch (``<service>/migrations/versions``); ``upgrade heads``
brings every branch up to date.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import DateTime, MetaData, String, TypeDecorator, event
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from kumo.core.sqlite_inline import BUSY_TIMEOUT, inline_creator

T = TypeVar("T")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Packages whose ``migrations/versions`` folder holds an Alembic branch.
MIGRATION_PACKAGES = ("kumo.core", "kumo.identity", "kumo.image", "kumo.compute", "kumo.network")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored naive-UTC (portable) and returned timezone-aware.

    SQLite and MySQL drop tzinfo; storing UTC and re-attaching it on the way
    out keeps comparisons in Python correct on every engine.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        # MySQL/MariaDB DATETIME keeps whole seconds unless told otherwise;
        # revocation checks compare sub-second timestamps.
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_id() -> str:
    """OpenStack-style resource id: 32 lowercase hex digits (Keystone) ."""
    return uuid.uuid4().hex


def id_column_type() -> String:
    return String(64)


class Database:
    """One engine and session factory per process."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                kwargs["async_creator"] = inline_creator(path)
            else:
                kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=3600)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._sqlite_turn = asyncio.Lock() if url.startswith("sqlite") else None

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed on success, rolled back on error.

        On SQLite, transactions of this process take turns (an asyncio lock):
        SQLite has one writer at a time, and a second connection that wants
        to write waits in SQLite's busy handler, which sleeps 1 to 100 ms
        between tries, so under concurrent writes most time went to sleeping.
        Queueing in the event loop hands the database over at once. A session
        opened inside another (same task or its children) does not queue
        again, so nesting cannot deadlock. Server databases need none of this.
        """
        if self._sqlite_turn is None or _IN_SQLITE_TURN.get():
            async with self.sessionmaker() as session, session.begin():
                yield session
            return
        async with self._sqlite_turn:
            marker = _IN_SQLITE_TURN.set(True)
            try:
                async with self.sessionmaker() as session, session.begin():
                    yield session
            finally:
                _IN_SQLITE_TURN.reset(marker)

    async def upgrade(self) -> None:
        """Run every service's Alembic migrations up to head."""
        await asyncio.to_thread(upgrade_sync, self.url)

    async def dispose(self) -> None:
        await self.engine.dispose()


_IN_SQLITE_TURN: contextvars.ContextVar[bool] = contextvars.ContextVar("kumo_in_sqlite_turn", default=False)

#: MySQL/MariaDB 1213 "Deadlock found", 1205 "Lock wait timeout exceeded" and 1305 "SAVEPOINT does not
#: exist" (InnoDB rolled the whole transaction back, a deadlock inside a savepoint, so rolling back to
#: the savepoint fails); PostgreSQL's deadlock_detected. Each means: run the transaction again.
_DEADLOCK_CODES = {1213, 1205, 1305}


class StaleTransaction(Exception):
    """Raised by work that found its snapshot outdated (what it read was taken meanwhile): run it again.

    On MariaDB's REPEATABLE READ a transaction keeps seeing the rows of its
    first read, so only a new transaction sees what others committed since.
    """


def is_deadlock(exc: BaseException) -> bool:
    """Whether the database gave up a transaction to break a lock cycle (safe to retry it whole)."""
    orig = getattr(exc, "orig", None)
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in _DEADLOCK_CODES:
        return True
    return getattr(orig, "sqlstate", None) == "40P01" or "database is locked" in str(exc)


async def retry_deadlocks(work: Callable[[], Awaitable[T]], attempts: int = 5) -> T:
    """Run ``work`` (which opens its own transaction) again when the database broke a deadlock.

    oslo.db's ``wrap_db_retry(retry_on_deadlock=True)`` for the few writes
    that lock several rows at once (claims on several hosts, concurrent
    address allocations); work that raises :class:`StaleTransaction` is run
    again too. The pause grows a little each time so the competing
    transaction can finish.
    """
    for attempt in range(1, attempts + 1):
        try:
            return await work()
        except (DBAPIError, StaleTransaction) as exc:
            if attempt == attempts or (isinstance(exc, DBAPIError) and not is_deadlock(exc)):
                raise
            await asyncio.sleep(0.01 * attempt)
    raise AssertionError("unreachable")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
    cur.close()


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("kumo.core") / "migrations"))
    locations = [str(resources.files(pkg) / "migrations" / "versions") for pkg in MIGRATION_PACKAGES]
    cfg.set_main_option("version_locations", " ".join(locations))
    cfg.set_main_option("path_separator", "space")
    cfg.attributes["kumo_url"] = url
    return cfg


def upgrade_sync(url: str) -> None:
    from alembic import command

    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "heads")
