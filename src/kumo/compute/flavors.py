"""Flavors: sizes of servers, their extra specs and who may use private ones (Nova).

Visibility follows Nova's ``Flavor._flavor_get_query_from_db``: an admin
sees every flavor; anyone else sees public flavors plus the private ones
their project was given access to, and a flavor they cannot see is a 404.
Records leave this module as :class:`FlavorRecord`; ORM rows never do.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from kumo.compute.models import Flavor, FlavorExtraSpec, FlavorProject
from kumo.core import errors
from kumo.core.auth import AuthContext
from kumo.core.db import Database, utcnow

#: Sort keys Nova accepts on ``GET /flavors`` (its ``VALID_SORT_KEYS``), all columns here.
SORT_KEYS = ("created_at", "description", "disabled", "ephemeral_gb", "flavorid", "id", "is_public", "memory_mb",
             "name", "root_gb", "rxtx_factor", "swap", "updated_at", "vcpu_weight", "vcpus")

#: devstack's flavors (id, name, vCPUs, RAM MiB, disk GiB), plus m1.nano for the `tiny` test image.
DEFAULT_FLAVORS = (
    ("1", "m1.tiny", 1, 512, 1),
    ("2", "m1.small", 1, 2048, 20),
    ("3", "m1.medium", 2, 4096, 40),
    ("4", "m1.large", 4, 8192, 80),
    ("5", "m1.xlarge", 8, 16384, 160),
    ("42", "m1.nano", 1, 128, 1),
)


@dataclass(frozen=True)
class FlavorRecord:
    flavorid: str
    name: str
    memory_mb: int
    vcpus: int
    root_gb: int
    ephemeral_gb: int
    swap: int
    rxtx_factor: float
    is_public: bool
    disabled: bool
    description: str | None
    vcpu_weight: int | None
    created_at: dt.datetime
    updated_at: dt.datetime | None
    extra_specs: dict[str, str] = field(default_factory=dict, hash=False)

    def snapshot(self) -> dict[str, Any]:
        """What an instance keeps of its flavor (JSON-safe), so later flavor changes do not affect it."""
        data = asdict(self)
        data.pop("created_at")
        data.pop("updated_at")
        return data


@dataclass(frozen=True)
class FlavorSpec:
    """A flavor to create, already validated by the API layer."""

    name: str
    memory_mb: int
    vcpus: int
    root_gb: int
    flavorid: str | None = None
    ephemeral_gb: int = 0
    swap: int = 0
    rxtx_factor: float = 1.0
    is_public: bool = True
    description: str | None = None


@dataclass(frozen=True)
class FlavorQuery:
    """``GET /flavors`` filters. ``is_public`` None means public and private (admins only)."""

    is_public: bool | None = True
    min_memory_mb: int | None = None
    min_root_gb: int | None = None
    sort_key: str = "flavorid"
    sort_dir: str = "asc"
    limit: int | None = None
    marker: str | None = None


def _record(row: Flavor, specs: Mapping[str, str]) -> FlavorRecord:
    return FlavorRecord(flavorid=row.flavorid, name=row.name, memory_mb=row.memory_mb, vcpus=row.vcpus,
                        root_gb=row.root_gb, ephemeral_gb=row.ephemeral_gb, swap=row.swap,
                        rxtx_factor=row.rxtx_factor, is_public=row.is_public, disabled=row.disabled,
                        description=row.description, vcpu_weight=row.vcpu_weight, created_at=row.created_at,
                        updated_at=row.updated_at, extra_specs=dict(specs))


def _shared_with(project_id: str | None) -> ColumnElement[bool]:
    return Flavor.id.in_(select(FlavorProject.flavor_id).where(FlavorProject.project_id == project_id))


def _visible(stmt: Select[Any], ctx: AuthContext) -> Select[Any]:
    """Nova's base flavor query: admins see all, others public + shared with their project."""
    if ctx.is_admin:
        return stmt
    return stmt.where(or_(Flavor.is_public.is_(True), _shared_with(ctx.project_id)))


class FlavorService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- lookups -----------------------------------------------------------------------------------
    async def _load(self, s: AsyncSession, ctx: AuthContext | None, flavorid: str) -> Flavor:
        """The flavor if ``ctx`` may see it (None = internal caller, sees all), else Nova's 404."""
        stmt = select(Flavor).where(Flavor.flavorid == flavorid)
        row = await s.scalar(_visible(stmt, ctx) if ctx is not None else stmt)
        if row is None:
            raise errors.NotFound(f"Flavor {flavorid} could not be found.")
        return row

    async def _specs(self, s: AsyncSession, flavor_ids: list[int]) -> dict[int, dict[str, str]]:
        found: dict[int, dict[str, str]] = {i: {} for i in flavor_ids}
        if flavor_ids:
            rows = await s.execute(select(FlavorExtraSpec.flavor_id, FlavorExtraSpec.key, FlavorExtraSpec.value)
                                   .where(FlavorExtraSpec.flavor_id.in_(flavor_ids)))
            for flavor_id, key, value in rows:
                found[flavor_id][key] = value
        return found

    async def get(self, ctx: AuthContext | None, flavorid: str) -> FlavorRecord:
        async with self.db.session() as s:
            row = await self._load(s, ctx, flavorid)
            return _record(row, (await self._specs(s, [row.id]))[row.id])

    async def list(self, ctx: AuthContext, query: FlavorQuery) -> list[FlavorRecord]:
        """Nova's ``FlavorList.get_all``: filters, ``[sort_key, id]`` order, then marker and limit.

        Non-admins always get public (or shared with them), enabled flavors,
        whatever they ask for, as Nova's ``_get_flavors``.
        """
        is_public = query.is_public if ctx.is_admin else True
        stmt = _visible(select(Flavor), ctx)
        if not ctx.is_admin:
            stmt = stmt.where(Flavor.disabled.is_(False))
        if query.min_memory_mb is not None:
            stmt = stmt.where(Flavor.memory_mb >= query.min_memory_mb)
        if query.min_root_gb is not None:
            stmt = stmt.where(Flavor.root_gb >= query.min_root_gb)
        if is_public is True and ctx.project_id is not None:
            stmt = stmt.where(or_(Flavor.is_public.is_(True), _shared_with(ctx.project_id)))
        elif is_public is not None:
            stmt = stmt.where(Flavor.is_public.is_(is_public))
        for column in (getattr(Flavor, query.sort_key), Flavor.id):
            stmt = stmt.order_by(column.asc() if query.sort_dir == "asc" else column.desc())
        async with self.db.session() as s:
            rows = list(await s.scalars(stmt))
            if query.marker is not None:
                # The marker must be a flavor the caller can see, even if filtered out of this list.
                marker_row = await s.scalar(_visible(select(Flavor).where(Flavor.flavorid == query.marker), ctx))
                if marker_row is None:
                    raise errors.BadRequest(f"marker [{query.marker}] not found")
                rows = _after(rows, marker_row, query.sort_key, query.sort_dir)
            if query.limit is not None:
                rows = rows[:query.limit]
            specs = await self._specs(s, [r.id for r in rows])
        return [_record(r, specs[r.id]) for r in rows]

    # -- create / update / delete ------------------------------------------------------------------
    async def create(self, spec: FlavorSpec) -> FlavorRecord:
        """Nova's ``flavors.create``: a missing id becomes a UUID; the name is stripped; 409 on duplicates."""
        flavorid = spec.flavorid or str(uuid.uuid4())
        name = spec.name.strip()
        row = Flavor(flavorid=flavorid, name=name, memory_mb=spec.memory_mb, vcpus=spec.vcpus,
                     root_gb=spec.root_gb, ephemeral_gb=spec.ephemeral_gb, swap=spec.swap,
                     rxtx_factor=spec.rxtx_factor, is_public=spec.is_public, disabled=False,
                     description=spec.description, vcpu_weight=None, created_at=utcnow(), updated_at=None)
        try:
            async with self.db.session() as s:
                await self._check_unique(s, flavorid, name)
                s.add(row)
        except IntegrityError as exc:  # a concurrent create won the race
            async with self.db.session() as s:
                await self._check_unique(s, flavorid, name)
            raise errors.Conflict(f"Flavor with name {name} already exists.") from exc
        return _record(row, {})

    async def _check_unique(self, s: AsyncSession, flavorid: str, name: str) -> None:
        if await s.scalar(select(Flavor.id).where(Flavor.flavorid == flavorid)) is not None:
            raise errors.Conflict(f"Flavor with ID {flavorid} already exists.")
        if await s.scalar(select(Flavor.id).where(Flavor.name == name)) is not None:
            raise errors.Conflict(f"Flavor with name {name} already exists.")

    async def update_description(self, flavorid: str, description: str | None) -> FlavorRecord:
        """``PUT /flavors/{id}`` (2.55): the description is the only mutable field, as in Nova."""
        async with self.db.session() as s:
            row = await self._load(s, None, flavorid)
            row.description = description
            row.updated_at = utcnow()
            return _record(row, (await self._specs(s, [row.id]))[row.id])

    async def delete(self, flavorid: str) -> None:
        """Flavors are deleted for good (Nova's API database); servers keep their snapshot."""
        async with self.db.session() as s:
            row = await self._load(s, None, flavorid)
            await s.execute(delete(FlavorExtraSpec).where(FlavorExtraSpec.flavor_id == row.id))
            await s.execute(delete(FlavorProject).where(FlavorProject.flavor_id == row.id))
            await s.delete(row)

    # -- extra specs -------------------------------------------------------------------------------
    async def set_extra_specs(self, ctx: AuthContext, flavorid: str, specs: Mapping[str, str]) -> None:
        """Create or update keys (``POST os-extra_specs`` and ``PUT os-extra_specs/{key}``)."""
        async with self.db.session() as s:
            row = await self._load(s, ctx, flavorid)
            existing = {e.key: e for e in await s.scalars(
                select(FlavorExtraSpec).where(FlavorExtraSpec.flavor_id == row.id))}
            for key, value in specs.items():
                if key in existing:
                    existing[key].value = value
                else:
                    s.add(FlavorExtraSpec(flavor_id=row.id, key=key, value=value))
            row.updated_at = utcnow()

    async def delete_extra_spec(self, ctx: AuthContext, flavorid: str, key: str) -> None:
        async with self.db.session() as s:
            row = await self._load(s, ctx, flavorid)
            result = await s.execute(delete(FlavorExtraSpec).where(FlavorExtraSpec.flavor_id == row.id,
                                                                    FlavorExtraSpec.key == key))
            if not getattr(result, "rowcount", 0):
                raise errors.NotFound(f"Flavor {flavorid} has no extra specs with key {key}.")
            row.updated_at = utcnow()

    # -- access (private flavors) ------------------------------------------------------------------
    async def access_list(self, ctx: AuthContext, flavorid: str) -> list[str]:
        """Projects a private flavor is shared with; Nova answers 404 for a public flavor."""
        async with self.db.session() as s:
            row = await self._load(s, ctx, flavorid)
            if row.is_public:
                raise errors.NotFound("Access list not available for public flavors.")
            return await self._projects(s, row.id)

    async def _projects(self, s: AsyncSession, flavor_id: int) -> list[str]:
        return list(await s.scalars(select(FlavorProject.project_id).where(FlavorProject.flavor_id == flavor_id)
                                    .order_by(FlavorProject.project_id)))

    async def add_access(self, ctx: AuthContext, flavorid: str, project_id: str,
                         refuse_public: bool = True) -> list[str]:
        """Share a flavor with a project. From 2.7 Nova refuses this for public flavors (409)."""
        async with self.db.session() as s:
            row = await self._load(s, ctx, flavorid)
            if refuse_public and row.is_public:
                raise errors.Conflict("Can not add access to a public flavor.")
            if await s.get(FlavorProject, (row.id, project_id)) is not None:
                raise errors.Conflict(f"Flavor access already exists for flavor {flavorid} and project "
                                      f"{project_id} combination.")
            s.add(FlavorProject(flavor_id=row.id, project_id=project_id))
            await s.flush()
            return await self._projects(s, row.id)

    async def remove_access(self, ctx: AuthContext, flavorid: str, project_id: str) -> list[str]:
        async with self.db.session() as s:
            row = await self._load(s, ctx, flavorid)
            access = await s.get(FlavorProject, (row.id, project_id))
            if access is None:
                raise errors.NotFound(f"Flavor access not found for {flavorid} / {project_id} combination.")
            await s.delete(access)
            await s.flush()
            return await self._projects(s, row.id)

    # -- bootstrap ---------------------------------------------------------------------------------
    async def bootstrap_flavors(self) -> list[str]:
        """Seed devstack's default flavors into an empty flavor table; returns the names created.

        Idempotent: once any flavor exists nothing is added, so flavors an
        operator deleted or changed stay that way across restarts. Two
        controllers starting at once: the second insert hits the unique
        constraints, rolls back, and finds the flavors the first one made.
        """
        try:
            async with self.db.session() as s:
                if await s.scalar(select(Flavor.id).limit(1)) is not None:
                    return []
                for flavorid, name, vcpus, ram, disk in DEFAULT_FLAVORS:
                    s.add(Flavor(flavorid=flavorid, name=name, memory_mb=ram, vcpus=vcpus, root_gb=disk,
                                 ephemeral_gb=0, swap=0, rxtx_factor=1.0, is_public=True, disabled=False,
                                 description=None, vcpu_weight=None, created_at=utcnow(), updated_at=None))
        except IntegrityError:
            return []
        return [name for _, name, *_ in DEFAULT_FLAVORS]


def _after(rows: list[Flavor], marker: Flavor, sort_key: str, sort_dir: str) -> list[Flavor]:
    """The rows strictly after ``marker`` in ``[sort_key, id]`` order, as oslo.db's ``paginate_query``.

    The marker may itself be filtered out of ``rows`` (it only has to be visible).
    """
    def position(row: Flavor) -> tuple[bool, Any, int]:
        value = getattr(row, sort_key)
        return (value is not None, value if value is not None else 0, row.id)  # NULLs first, as SQLite/MySQL

    mark = position(marker)
    if sort_dir == "asc":
        return [r for r in rows if position(r) > mark]
    return [r for r in rows if position(r) < mark]
