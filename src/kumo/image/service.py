"""The image service (Glance v2): images, their visibility, tags and lifecycle.

Data (upload, download, import) is in :mod:`kumo.image.data`, members in
:mod:`kumo.image.members`; this module owns the image records and the rules
every caller shares. Records leave this layer as plain dicts
(:func:`image_dict`); ORM rows never do.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.core import errors
from kumo.core.auth import AuthContext
from kumo.core.config import Settings
from kumo.core.db import Database, utcnow
from kumo.image import access
from kumo.image.models import Image, ImageMember
from kumo.image.patch import check_core_value, check_property_value
from kumo.image.states import ImageStatus, check_transition
from kumo.image.store import ImageStore, create_store

SORT_KEYS = {"name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at",
             "visibility", "owner", "min_disk", "min_ram", "virtual_size"}
CORE_CREATE = {"name", "visibility", "protected", "min_disk", "min_ram", "disk_format", "container_format", "tags",
               "os_hidden", "owner", "id"}


def image_dict(row: Image) -> dict[str, Any]:
    """Everything about an image a client may see, plus ``properties`` (custom ones)."""
    return {
        "id": row.id, "name": row.name, "status": row.status, "visibility": row.visibility, "owner": row.owner,
        "disk_format": row.disk_format, "container_format": row.container_format, "size": row.size,
        "virtual_size": row.virtual_size, "checksum": row.checksum, "os_hash_algo": row.os_hash_algo,
        "os_hash_value": row.os_hash_value, "min_disk": row.min_disk, "min_ram": row.min_ram,
        "protected": row.protected, "os_hidden": row.os_hidden, "tags": list(row.tags or []),
        "created_at": row.created_at, "updated_at": row.updated_at, "properties": dict(row.properties or {}),
        "stored": row.location is not None,
    }


class ImageService:
    def __init__(self, db: Database, settings: Settings, store: ImageStore | None = None) -> None:
        self.db = db
        self.settings = settings
        self.store = store or create_store(settings.image.store, Path(settings.state_dir) / "images")

    # -- lookups ------------------------------------------------------------------------------------
    async def _member_status(self, s: AsyncSession, image_id: str, project_id: str | None) -> str | None:
        if project_id is None:
            return None
        row = await s.get(ImageMember, (image_id, project_id))
        return row.status if row else None

    async def load(self, s: AsyncSession, ctx: AuthContext, image_id: str) -> Image:
        """The image if the caller may see it, else Glance's 404."""
        row = await s.get(Image, image_id) if _valid_uuid(image_id) else None
        if row is None or row.status == ImageStatus.DELETED or not access.can_see(
                ctx, row, await self._member_status(s, image_id, ctx.project_id)):
            raise errors.NotFound(f"No image found with ID {image_id}")
        return row

    async def get(self, ctx: AuthContext, image_id: str) -> dict[str, Any]:
        async with self.db.session() as s:
            return image_dict(await self.load(s, ctx, image_id))

    # -- create / update / delete -------------------------------------------------------------------
    async def create(self, ctx: AuthContext, fields: dict[str, Any]) -> dict[str, Any]:
        core = {k: check_core_value(k, v) for k, v in fields.items() if k in CORE_CREATE and k != "id"}
        props = {k: v for k, v in fields.items() if k not in CORE_CREATE}
        self._check_properties(props)
        self._check_publicize(ctx, core.get("visibility"))
        if "owner" in core and core["owner"] != ctx.project_id and not ctx.is_admin:
            raise errors.Forbidden("You are not permitted to create images owned by another project.")
        image_id = fields.get("id") or str(uuid.uuid4())
        if not _valid_uuid(image_id):
            raise errors.BadRequest(f"Provided object does not match schema 'image': {image_id!r} is not a 'uuid'.")
        tags = core.pop("tags", [])
        self._check_tags(tags)
        now = utcnow()
        row = Image(id=image_id, status=ImageStatus.QUEUED, visibility=core.pop("visibility", "shared"),
                    owner=core.pop("owner", ctx.project_id), tags=tags, properties=props, created_at=now,
                    updated_at=now, min_disk=core.pop("min_disk", 0), min_ram=core.pop("min_ram", 0),
                    protected=core.pop("protected", False), os_hidden=core.pop("os_hidden", False),
                    uploading_bytes=0, **core)
        async with self.db.session() as s:
            if await s.get(Image, image_id) is not None:
                raise errors.Conflict(f"Image with identifier {image_id} already exists!")
            s.add(row)
        return image_dict(row)

    def _check_publicize(self, ctx: AuthContext, visibility: str | None) -> None:
        if visibility == "public" and not ctx.is_admin:
            raise errors.Forbidden("You are not authorized to complete publicize_image action.")

    def _check_properties(self, props: Mapping[str, Any]) -> None:
        quota = self.settings.image.image_property_quota
        if 0 <= quota < len(props):
            raise errors.OverQuota(f"Maximum number of properties exceeded: {quota}")
        for key, value in props.items():
            check_property_value(key, value)
            if len(key) > 255:
                raise errors.BadRequest("Property names must be at most 255 characters.")

    def _check_tags(self, tags: list[str]) -> None:
        quota = self.settings.image.image_tag_quota
        if 0 <= quota < len(tags):
            raise errors.OverQuota(f"Maximum number of tags exceeded: {quota}")

    async def update(self, ctx: AuthContext, image_id: str, core: dict[str, Any], props: dict[str, Any],
                     removed: set[str]) -> dict[str, Any]:
        async with self.db.session() as s:
            row = await self.load(s, ctx, image_id)
            access.require_owner(ctx, row)
            if core.get("visibility") not in (None, row.visibility):
                self._check_publicize(ctx, core["visibility"])
            if "owner" in core and not ctx.is_admin:
                raise errors.Forbidden("Only an administrator may change the owner of an image.")
            if row.status != ImageStatus.QUEUED and {"disk_format", "container_format"} & core.keys():
                for key in ("disk_format", "container_format"):
                    if key in core and core[key] != getattr(row, key):
                        raise errors.Forbidden(f"Attribute {key} can be only replaced for a queued image.")
            if "tags" in core:
                self._check_tags(core["tags"])
            for key, value in core.items():
                setattr(row, key, value)
            properties = {k: v for k, v in {**(row.properties or {}), **props}.items() if k not in removed}
            self._check_properties(properties)
            row.properties = properties
            row.updated_at = utcnow()
            return image_dict(row)

    async def delete(self, ctx: AuthContext, image_id: str) -> None:
        async with self.db.session() as s:
            row = await self.load(s, ctx, image_id)
            access.require_owner(ctx, row, "delete")
            if row.protected:
                raise errors.Forbidden(f"Image {image_id} is protected and cannot be deleted.")
            locations = [loc for loc in (row.location, row.staged) if loc]
            await s.execute(delete(ImageMember).where(ImageMember.image_id == image_id))
            await s.delete(row)
        for location in locations:
            await self.store.delete(location)

    async def set_active_state(self, ctx: AuthContext, image_id: str, active: bool) -> None:
        """Deactivate / reactivate (admin, by policy). Repeating either is a no-op, as Glance."""
        async with self.db.session() as s:
            row = await self.load(s, ctx, image_id)
            target = ImageStatus.ACTIVE if active else ImageStatus.DEACTIVATED
            if row.status == target:
                return
            if row.status not in (ImageStatus.ACTIVE, ImageStatus.DEACTIVATED):
                verb = "reactivate" if active else "deactivate"
                raise errors.Forbidden(f"Not allowed to {verb} image in status '{row.status}'")
            check_transition(row.status, target)
            row.status = target
            row.updated_at = utcnow()

    async def add_tag(self, ctx: AuthContext, image_id: str, tag: str) -> None:
        if not tag or len(tag) > 255:
            raise errors.BadRequest("Tags must be 1 to 255 characters.")
        async with self.db.session() as s:
            row = await self.load(s, ctx, image_id)
            access.require_owner(ctx, row)
            if tag not in (row.tags or []):
                tags = [*(row.tags or []), tag]
                self._check_tags(tags)
                row.tags = tags
                row.updated_at = utcnow()

    async def delete_tag(self, ctx: AuthContext, image_id: str, tag: str) -> None:
        async with self.db.session() as s:
            row = await self.load(s, ctx, image_id)
            access.require_owner(ctx, row)
            if tag not in (row.tags or []):
                raise errors.NotFound(f"Tag {tag} not found.")
            row.tags = [t for t in row.tags if t != tag]
            row.updated_at = utcnow()

    # -- list ----------------------------------------------------------------------------------------
    async def list(self, ctx: AuthContext, filters: Mapping[str, list[str]], sort: list[tuple[str, str]],
                   limit: int | None, marker: str | None) -> list[dict[str, Any]]:
        """Glance's list: visibility rules, filters, sort, then limit/marker."""
        one = {k: v[-1] for k, v in filters.items()}
        stmt = select(Image).where(Image.status != ImageStatus.DELETED)
        condition = access.list_condition(ctx, one.get("visibility"), one.get("member_status", "accepted"))
        if condition is not None:
            stmt = stmt.where(condition)
        stmt = _apply_filters(stmt, filters)
        for key, direction in sort:
            column = getattr(Image, key)
            stmt = stmt.order_by(column.asc() if direction == "asc" else column.desc())
        async with self.db.session() as s:
            rows = list(await s.scalars(stmt))
        tags = filters.get("tag", [])
        rows = [r for r in rows if all(t in (r.tags or []) for t in tags)]
        custom = {k: v[-1] for k, v in filters.items() if k not in FILTER_KEYS}
        rows = [r for r in rows if all((r.properties or {}).get(k) == v for k, v in custom.items())]
        if marker is not None:
            ids = [r.id for r in rows]
            if marker not in ids:
                raise errors.BadRequest(f"Invalid marker {marker}: no visible image has this id.")
            rows = rows[ids.index(marker) + 1:]
        if limit is not None:
            rows = rows[:limit]
        return [image_dict(r) for r in rows]

    async def usage(self, project_id: str) -> int:
        """Bytes a project stores (active + being uploaded): what the quota counts."""
        async with self.db.session() as s:
            stored = await s.scalar(select(func.coalesce(func.sum(Image.size), 0)).where(
                Image.owner == project_id, Image.location.is_not(None)))
            pending = await s.scalar(select(func.coalesce(func.sum(Image.uploading_bytes), 0)).where(
                Image.owner == project_id))
        return int(stored or 0) + int(pending or 0)


FILTER_KEYS = {"name", "status", "visibility", "owner", "tag", "member_status", "size_min", "size_max",
               "disk_format", "container_format", "protected", "os_hidden", "id", "created_at", "updated_at",
               "limit", "marker", "sort_key", "sort_dir", "sort"}
COMPARATORS = {"gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__", "eq": "__eq__", "neq": "__ne__"}


def _apply_filters(stmt: Any, filters: Mapping[str, list[str]]) -> Any:
    for key in ("name", "status", "owner", "disk_format", "container_format", "id"):
        for value in filters.get(key, []):
            column = getattr(Image, key)
            if value.startswith("in:"):
                stmt = stmt.where(column.in_(_split_in(value[3:])))
            else:
                stmt = stmt.where(column == value)
    for key, op in (("size_min", "__ge__"), ("size_max", "__le__")):
        for value in filters.get(key, []):
            try:
                stmt = stmt.where(getattr(Image.size, op)(int(value)))
            except ValueError as exc:
                raise errors.BadRequest(f"Invalid {key} value: {value!r} is not an integer.") from exc
    for key in ("protected", "os_hidden"):
        for value in filters.get(key, []):
            if value.lower() not in ("true", "false"):
                raise errors.BadRequest(f"Invalid value '{value}' for '{key}' filter. Valid values are 'true' "
                                        f"or 'false'.")
            stmt = stmt.where(getattr(Image, key).is_(value.lower() == "true"))
    if "os_hidden" not in filters:
        stmt = stmt.where(Image.os_hidden.is_(False))
    for key in ("created_at", "updated_at"):
        for value in filters.get(key, []):
            op, _, when = value.partition(":")
            if op not in COMPARATORS or not when:
                raise errors.BadRequest(f"Invalid time filter '{value}': use gt:, gte:, lt:, lte:, eq: or neq:.")
            try:
                moment = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
            except ValueError as exc:
                raise errors.BadRequest(f"Invalid ISO 8601 time in filter '{value}'.") from exc
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            stmt = stmt.where(getattr(getattr(Image, key), COMPARATORS[op])(moment))
    return stmt


def _split_in(text: str) -> list[str]:
    """``in:a,"b,c"`` -> ['a', 'b,c'] (Glance allows quoting values that hold commas)."""
    import csv

    return next(csv.reader([text])) if text else []


def _valid_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


