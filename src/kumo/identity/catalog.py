"""Regions, services and endpoints, and the service catalog built from them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.core import errors
from kumo.identity.models import CatalogService, Endpoint, Region
from kumo.identity.store import IdentityStore, apply_fields, flush_unique

INTERFACES = ("public", "internal", "admin")


def region_dict(row: Region) -> dict[str, Any]:
    return {**(row.extra or {}), "id": row.id, "description": row.description,
            "parent_region_id": row.parent_region_id}


def service_dict(row: CatalogService) -> dict[str, Any]:
    return {**(row.extra or {}), "id": row.id, "type": row.type, "name": row.name,
            "description": row.description, "enabled": row.enabled}


def endpoint_dict(row: Endpoint) -> dict[str, Any]:
    return {**(row.extra or {}), "id": row.id, "service_id": row.service_id, "interface": row.interface,
            "url": row.url, "region_id": row.region_id, "region": row.region_id, "enabled": row.enabled}


class CatalogServiceLayer:
    """CRUD for the three catalog collections plus :meth:`catalog` rendering."""

    def __init__(self, store: IdentityStore) -> None:
        self.store = store
        self._catalog_cache: tuple[int, list[dict[str, Any]]] | None = None

    # -- regions -----------------------------------------------------------
    async def create_region(self, fields: dict[str, Any]) -> dict[str, Any]:
        async with self.store.db.session() as s:
            parent = fields.get("parent_region_id")
            if parent:
                await self.store.get(s, Region, parent, "region")
            row = Region(id=fields.pop("id", None) or _uuid())
            apply_fields(row, fields, {"description", "parent_region_id"})
            s.add(row)
            await flush_unique(s, "region", f"Duplicate ID, {row.id}.")
            return region_dict(row)

    async def get_region(self, region_id: str) -> dict[str, Any]:
        async with self.store.db.session() as s:
            return region_dict(await self.store.get(s, Region, region_id, "region"))

    async def list_regions(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        async with self.store.db.session() as s:
            stmt = select(Region).order_by(Region.id)
            if "parent_region_id" in query:
                stmt = stmt.where(Region.parent_region_id == query["parent_region_id"])
            return [region_dict(r) for r in await s.scalars(stmt)]

    async def update_region(self, region_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        async with self.store.db.session() as s:
            row = await self.store.get(s, Region, region_id, "region")
            parent = fields.get("parent_region_id")
            if parent:
                if parent == region_id:
                    raise errors.ValidationError("A region cannot be its own parent.")
                await self.store.get(s, Region, parent, "region")
            fields.pop("id", None)
            apply_fields(row, fields, {"description", "parent_region_id"})
            await self.store.bump_revision(s)
            result = region_dict(row)
        await self.store.changed()
        return result

    async def delete_region(self, region_id: str) -> None:
        async with self.store.db.session() as s:
            row = await self.store.get(s, Region, region_id, "region")
            if await s.scalar(select(Region.id).where(Region.parent_region_id == region_id).limit(1)):
                raise errors.Forbidden(f"Unable to delete region {region_id} because it or its child regions "
                                       f"have associated endpoints.")
            if await s.scalar(select(Endpoint.id).where(Endpoint.region_id == region_id).limit(1)):
                raise errors.Forbidden(f"Unable to delete region {region_id} because it or its child regions "
                                       f"have associated endpoints.")
            await s.delete(row)
            await self.store.bump_revision(s)
        await self.store.changed()

    # -- services ------------------------------------------------------------
    async def create_service(self, fields: dict[str, Any]) -> dict[str, Any]:
        async with self.store.db.session() as s:
            row = CatalogService()
            apply_fields(row, fields, {"type", "name", "description", "enabled"})
            s.add(row)
            await self.store.bump_revision(s)
            result = service_dict(row)
        await self.store.changed()
        return result

    async def get_service(self, service_id: str) -> dict[str, Any]:
        async with self.store.db.session() as s:
            return service_dict(await self.store.get(s, CatalogService, service_id, "service"))

    async def list_services(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        async with self.store.db.session() as s:
            stmt = select(CatalogService).order_by(CatalogService.type, CatalogService.name)
            for key in ("type", "name"):
                if key in query:
                    stmt = stmt.where(getattr(CatalogService, key) == query[key])
            return [service_dict(r) for r in await s.scalars(stmt)]

    async def update_service(self, service_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        async with self.store.db.session() as s:
            row = await self.store.get(s, CatalogService, service_id, "service")
            apply_fields(row, fields, {"type", "name", "description", "enabled"})
            await self.store.bump_revision(s)
            result = service_dict(row)
        await self.store.changed()
        return result

    async def delete_service(self, service_id: str) -> None:
        async with self.store.db.session() as s:
            row = await self.store.get(s, CatalogService, service_id, "service")
            # A bulk DELETE first: ORM deletes of both would race the database's ON DELETE CASCADE.
            await s.execute(delete(Endpoint).where(Endpoint.service_id == service_id))
            await s.delete(row)
            await self.store.bump_revision(s)
        await self.store.changed()

    # -- endpoints -----------------------------------------------------------
    async def create_endpoint(self, fields: dict[str, Any]) -> dict[str, Any]:
        async with self.store.db.session() as s:
            await _assert_exists(s, CatalogService, fields["service_id"], "endpoint service", "services")
            region = fields.pop("region_id", None)
            legacy_region = fields.pop("region", None)
            if region:
                await _assert_exists(s, Region, region, "endpoint region_id", "region")
            elif legacy_region:  # v2-style "region": Keystone creates the region if it is missing
                region = legacy_region
                if await s.get(Region, region) is None:
                    s.add(Region(id=region, description="", extra={}))
            _check_interface(fields.get("interface"))
            row = Endpoint(region_id=region)
            apply_fields(row, fields, {"service_id", "interface", "url", "enabled"})
            s.add(row)
            await self.store.bump_revision(s)
            result = endpoint_dict(row)
        await self.store.changed()
        return result

    async def get_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        async with self.store.db.session() as s:
            return endpoint_dict(await self.store.get(s, Endpoint, endpoint_id, "endpoint"))

    async def list_endpoints(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        async with self.store.db.session() as s:
            stmt = select(Endpoint).order_by(Endpoint.service_id, Endpoint.interface)
            for key, column in (("interface", Endpoint.interface), ("service_id", Endpoint.service_id),
                                ("region_id", Endpoint.region_id)):
                if key in query:
                    stmt = stmt.where(column == query[key])
            return [endpoint_dict(r) for r in await s.scalars(stmt)]

    async def update_endpoint(self, endpoint_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        async with self.store.db.session() as s:
            row = await self.store.get(s, Endpoint, endpoint_id, "endpoint")
            if "service_id" in fields:
                await _assert_exists(s, CatalogService, fields["service_id"], "endpoint service", "services")
            if "interface" in fields:
                _check_interface(fields["interface"])
            region = fields.pop("region_id", None) or fields.pop("region", None)
            fields.pop("region", None)
            if region:
                await _assert_exists(s, Region, region, "endpoint region_id", "region")
                row.region_id = region
            apply_fields(row, fields, {"service_id", "interface", "url", "enabled"})
            await self.store.bump_revision(s)
            result = endpoint_dict(row)
        await self.store.changed()
        return result

    async def delete_endpoint(self, endpoint_id: str) -> None:
        async with self.store.db.session() as s:
            await s.delete(await self.store.get(s, Endpoint, endpoint_id, "endpoint"))
            await self.store.bump_revision(s)
        await self.store.changed()

    # -- the catalog -----------------------------------------------------------
    async def catalog(self, revision: int) -> list[dict[str, Any]]:
        """The catalog as tokens carry it; rebuilt only when identity data changed."""
        cached = self._catalog_cache
        if cached is not None and cached[0] == revision:
            return cached[1]
        async with self.store.db.session() as s:
            services = list(await s.scalars(select(CatalogService).where(CatalogService.enabled.is_(True))
                                            .order_by(CatalogService.type)))
            endpoints = list(await s.scalars(select(Endpoint).where(Endpoint.enabled.is_(True))))
        by_service: dict[str, list[dict[str, Any]]] = {}
        for ep in endpoints:
            by_service.setdefault(ep.service_id, []).append(
                {"id": ep.id, "interface": ep.interface, "region": ep.region_id, "region_id": ep.region_id,
                 "url": ep.url})
        catalog = [{"endpoints": by_service.get(svc.id, []), "id": svc.id, "type": svc.type, "name": svc.name}
                   for svc in services]
        self._catalog_cache = (revision, catalog)
        return catalog


async def _assert_exists(s: AsyncSession, model: type[Region | CatalogService], ident: str, attribute: str,
                         table: str) -> None:
    """An endpoint naming a missing service or region is a 400 in Keystone, not a 404."""
    if await s.get(model, ident) is None:
        raise errors.ValidationError(f"Expecting to find {attribute} in {table} - the server could not comply "
                                     f"with the request since it is either malformed or otherwise incorrect.")


def _check_interface(value: Any) -> None:
    if value not in INTERFACES:
        raise errors.ValidationError(f"Invalid input for field 'interface': {value!r} is not one of "
                                     f"['admin', 'internal', 'public']")


def _uuid() -> str:
    from kumo.core.db import new_id

    return new_id()
