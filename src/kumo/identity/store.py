"""What every part of the identity service shares: the database and change signal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.core import errors
from kumo.core.config import Settings
from kumo.core.db import Base, Database
from kumo.identity.models import Revision
from kumo.identity.passwords import Hasher

T = TypeVar("T", bound=Base)

ChangeListener = Callable[[], Awaitable[None]]


class IdentityStore:
    """Database access plus the "identity data changed" signal.

    Any write that can change whether a token validates (users, roles,
    assignments, projects, domains, revocations, the catalog) calls
    :meth:`bump_revision` in its transaction; after commit, listeners (the
    token validation caches of this process and, through the bus, of the
    others) drop what they cached.
    """

    def __init__(self, db: Database, settings: Settings, hasher: Hasher) -> None:
        self.db = db
        self.settings = settings
        self.hasher = hasher
        self.listeners: list[ChangeListener] = []

    async def bump_revision(self, session: AsyncSession) -> None:
        result = await session.execute(update(Revision).where(Revision.id == 1).values(value=Revision.value + 1))
        if not result.rowcount:  # type: ignore[attr-defined]
            session.add(Revision(id=1, value=1))

    async def current_revision(self) -> int:
        async with self.db.session() as session:
            value = await session.scalar(select(Revision.value).where(Revision.id == 1))
        return int(value or 0)

    async def changed(self) -> None:
        """Tell listeners that identity data changed (call after commit)."""
        for listener in self.listeners:
            await listener()

    async def get(self, session: AsyncSession, model: type[T], ident: str, kind: str) -> T:
        """A row by primary key or Keystone's 404 ``Could not find <kind>: <id>.``."""
        row = await session.get(model, ident)
        if row is None:
            raise errors.NotFound(f"Could not find {kind}: {ident}.")
        return row


async def flush_unique(session: AsyncSession, kind: str, detail: str) -> None:
    """Flush, turning a unique-constraint violation into Keystone's 409."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise errors.Conflict(f"Conflict occurred attempting to store {kind} - {detail}") from exc


def apply_fields(row: Any, fields: dict[str, Any], allowed: set[str], extra_attr: str | None = "extra") -> None:
    """Set known columns; anything else goes in the row's ``extra`` dict (Keystone keeps unknown attributes)."""
    extra = dict(getattr(row, extra_attr) or {}) if extra_attr else {}
    for key, value in fields.items():
        if key in allowed:
            setattr(row, key, value)
        elif extra_attr:
            extra[key] = value
    if extra_attr:
        setattr(row, extra_attr, extra)
