"""What every network resource service shares: the caller, visibility, standard attributes, tags, time format."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.core.auth import AuthContext
from kumo.core.db import utcnow
from kumo.network.errors import NotFound
from kumo.network.models import Tag

#: A list request's filters: attribute -> the values any of which matches (already parsed by the API).
Filters = Mapping[str, list[Any]]
R = TypeVar("R")


@dataclass(frozen=True)
class Caller:
    """Who asks: the project and whether they are an admin (Neutron's ``context.is_admin``)."""

    project_id: str
    is_admin: bool = False

    @classmethod
    def of(cls, ctx: AuthContext) -> Caller:
        return cls(project_id=ctx.project_id or "", is_admin="admin" in (r.lower() for r in ctx.roles))

    def owns(self, project_id: str) -> bool:
        return self.is_admin or project_id == self.project_id


def isotime(value: dt.datetime | None) -> str | None:
    """Neutron's timestamps: ``2016-03-08T20:19:41Z``."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def standard_view(row: Any, tags: Iterable[str]) -> dict[str, Any]:
    """The standard attributes and ownership keys every resource shows."""
    return {"tenant_id": row.project_id, "project_id": row.project_id, "description": row.description,
            "tags": sorted(tags), "created_at": isotime(row.created_at), "updated_at": isotime(row.updated_at),
            "revision_number": row.revision_number}


def touch(row: Any) -> None:
    """A change: ``updated_at`` now, ``revision_number`` + 1 (Neutron bumps it on every update)."""
    row.updated_at = utcnow()
    row.revision_number = (row.revision_number or 0) + 1


async def tags_of(s: AsyncSession, resource_type: str, ids: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {i: [] for i in ids}
    for start in range(0, len(ids), 500):
        rows = await s.execute(select(Tag.resource_id, Tag.tag).where(
            Tag.resource_type == resource_type, Tag.resource_id.in_(ids[start:start + 500])))
        for rid, tag in rows:
            found[rid].append(tag)
    return found


async def drop_tags(s: AsyncSession, resource_type: str, resource_id: str) -> None:
    await s.execute(delete(Tag).where(Tag.resource_type == resource_type, Tag.resource_id == resource_id))


async def find_owned(s: AsyncSession, model: type[R], caller: Caller, ident: str, kind: str) -> R:
    """A row of a project-owned resource the caller's project owns (admins: any); Neutron's NotFound otherwise."""
    row = await s.get(model, ident)
    if row is None or not caller.owns(row.project_id):  # type: ignore[attr-defined]
        raise NotFound(kind, ident)
    return row


def owned_only(stmt: Select[Any], model: Any, caller: Caller) -> Select[Any]:
    """``stmt`` limited to the caller's project unless the caller is an admin."""
    return stmt if caller.is_admin else stmt.where(model.project_id == caller.project_id)


def narrowed(stmt: Select[Any], model: Any, filters: Filters | None, columns: Mapping[str, str]) -> Select[Any]:
    """Equality filters on indexed columns done by the database (``?device_id=X`` must not load every port).

    ``columns`` maps API attribute names to column names; other filters are
    applied to the views by the API layer, which re-checks these too.
    """
    for key, values in (filters or {}).items():
        column = columns.get(key)
        if column is not None and values:
            stmt = stmt.where(getattr(model, column).in_(values))
    return stmt


def _standard_columns(*names: str) -> dict[str, str]:
    return {"id": "id", "project_id": "project_id", "tenant_id": "project_id", **{n: n for n in names}}


NETWORK_COLUMNS = {**_standard_columns("name", "status", "shared", "admin_state_up"), "router:external": "external"}
SUBNET_COLUMNS = _standard_columns("name", "network_id", "ip_version", "cidr", "enable_dhcp", "subnetpool_id")
SUBNETPOOL_COLUMNS = _standard_columns("name", "ip_version", "shared", "is_default")
PORT_COLUMNS = {**_standard_columns("name", "network_id", "device_id", "device_owner", "mac_address", "status",
                                    "admin_state_up"), "binding:host_id": "binding_host_id"}
GROUP_COLUMNS = _standard_columns("name")
RULE_COLUMNS = _standard_columns("security_group_id", "direction", "ethertype", "protocol")
ROUTER_COLUMNS = _standard_columns("name", "status")
FLOATINGIP_COLUMNS = {**_standard_columns("floating_network_id", "floating_ip_address", "router_id", "status",
                                          "fixed_ip_address"), "port_id": "fixed_port_id"}
