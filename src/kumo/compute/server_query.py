"""The read side of servers: the record the API renders, and ``GET /servers`` in SQL.

Nova's ``instance_get_all_by_filters_sort`` (``nova/db/main/api.py``) is
the model: exact filters (project, user, image, states, host, uuid,
locked) and time windows (``changes-since`` / ``changes-before`` on
``updated_at``) become WHERE clauses; sorting is ``sort_keys`` plus a
stable tiebreaker; paging is oslo.db's keyset ``paginate_query`` (the rows
strictly after the marker's sort values, NULLs first as both SQLite and
MariaDB order them). Regex filters (``name``, ``hostname`` ...) and tag
filters need per-dialect SQL (REGEXP, JSON containment), so they run in
Python over the SQL result before the limit is applied.

Records leave as :class:`ServerRecord`; ORM rows stay in the compute package.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from kumo.compute.instances import COMPUTE_BINARY
from kumo.compute.models import Instance, InstanceFault, ServerGroupMember
from kumo.compute.states import VmState, status_from_state
from kumo.core import errors
from kumo.core.db import utcnow
from kumo.core.models import ServiceRecord

#: API sort key -> column (Nova's VALID_SORT_KEYS that Kumo has a column for).
SORT_COLUMNS: dict[str, Any] = {
    "access_ip_v4": Instance.access_ip_v4, "access_ip_v6": Instance.access_ip_v6,
    "availability_zone": Instance.availability_zone, "config_drive": Instance.config_drive,
    "created_at": Instance.created_at, "display_description": Instance.display_description,
    "display_name": Instance.display_name, "host": Instance.host, "hostname": Instance.hostname,
    "image_ref": Instance.image_ref, "key_name": Instance.key_name, "launch_index": Instance.launch_index,
    "launched_at": Instance.launched_at, "locked": Instance.locked, "locked_by": Instance.locked_by,
    "node": Instance.node, "power_state": Instance.power_state, "progress": Instance.progress,
    "project_id": Instance.project_id, "task_state": Instance.task_state, "terminated_at": Instance.terminated_at,
    "updated_at": Instance.updated_at, "user_id": Instance.user_id, "uuid": Instance.uuid,
    "vm_state": Instance.vm_state,
}
#: Filters Nova matches exactly (its ``exact_match_filter_names``) -> column; the project has its own field.
EXACT_FILTERS: dict[str, Any] = {
    "user_id": Instance.user_id, "image_ref": Instance.image_ref, "uuid": Instance.uuid, "host": Instance.host,
}
#: Nova's ``fields.HostStatus`` values.
HOST_UP, HOST_DOWN, HOST_MAINTENANCE, HOST_UNKNOWN, HOST_NONE = "UP", "DOWN", "MAINTENANCE", "UNKNOWN", ""


@dataclass(frozen=True)
class FaultRecord:
    code: int
    message: str
    details: str | None
    created_at: dt.datetime


@dataclass(frozen=True)
class ServerRecord:
    """One instance as the API shows it, with the rows the detail view needs loaded alongside."""

    uuid: str
    name: str
    project_id: str
    user_id: str
    description: str | None
    hostname: str
    vm_state: str
    task_state: str | None
    power_state: int
    host: str | None
    node: str | None
    availability_zone: str | None
    flavor: dict[str, Any]
    image_ref: str | None
    key_name: str | None
    user_data: str | None
    config_drive: bool
    metadata: dict[str, str]
    system_metadata: dict[str, Any]
    tags: list[str]
    locked: bool
    locked_by: str | None
    locked_reason: str | None
    progress: int
    access_ip_v4: str | None
    access_ip_v6: str | None
    reservation_id: str
    launch_index: int
    launched_at: dt.datetime | None
    terminated_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime | None
    deleted: bool
    fault: FaultRecord | None = None
    network_info: list[dict[str, Any]] = field(default_factory=list)
    server_groups: tuple[str, ...] = ()
    host_status: str = HOST_NONE

    @property
    def status(self) -> str:
        """Nova's ``_get_vm_status``: a deleted instance is DELETED whatever its states say."""
        return "DELETED" if self.deleted else status_from_state(self.vm_state, self.task_state)


@dataclass
class ServerQuery:
    """``GET /servers`` after the API resolved versions and policy. None means "no such filter"."""

    project_id: str | None = None
    deleted: bool | None = False
    exact: dict[str, list[str]] = field(default_factory=dict)
    regex: dict[str, re.Pattern[str]] = field(default_factory=dict)
    vm_states: list[str] | None = None
    task_states: list[str | None] | None = None
    flavor: str | None = None
    changes_since: dt.datetime | None = None
    changes_before: dt.datetime | None = None
    locked: bool | None = None
    tags: list[str] | None = None
    tags_any: list[str] | None = None
    not_tags: list[str] | None = None
    not_tags_any: list[str] | None = None
    sort_keys: list[str] = field(default_factory=lambda: ["created_at"])
    sort_dirs: list[str] = field(default_factory=lambda: ["desc"])
    limit: int | None = None
    marker: str | None = None


def _record(row: Instance, fault: FaultRecord | None, groups: tuple[str, ...], host_status: str) -> ServerRecord:
    return ServerRecord(
        uuid=row.uuid, name=row.display_name, project_id=row.project_id, user_id=row.user_id,
        description=row.display_description, hostname=row.hostname, vm_state=row.vm_state,
        task_state=row.task_state, power_state=row.power_state, host=row.host, node=row.node,
        availability_zone=row.availability_zone, flavor=dict(row.flavor or {}), image_ref=row.image_ref,
        key_name=row.key_name, user_data=row.user_data, config_drive=bool(row.config_drive),
        metadata=dict(row.metadata_ or {}), system_metadata=dict(row.system_metadata or {}),
        tags=list(row.tags or []), locked=bool(row.locked), locked_by=row.locked_by,
        locked_reason=row.locked_reason, progress=row.progress or 0, access_ip_v4=row.access_ip_v4,
        access_ip_v6=row.access_ip_v6, reservation_id=row.reservation_id, launch_index=row.launch_index,
        launched_at=row.launched_at, terminated_at=row.terminated_at, created_at=row.created_at,
        updated_at=row.updated_at, deleted=row.deleted_at is not None, fault=fault, server_groups=groups,
        host_status=host_status, network_info=list(row.network_info or []))


async def load_records(s: AsyncSession, rows: Sequence[Instance], service_down_time: float) -> list[ServerRecord]:
    """Records for ``rows`` with their newest fault, server group and host status (three batched reads)."""
    uuids = [r.uuid for r in rows]
    faults: dict[str, FaultRecord] = {}
    groups: dict[str, list[str]] = {}
    if uuids:
        for f in await s.scalars(select(InstanceFault).where(InstanceFault.instance_uuid.in_(uuids))
                                 .order_by(InstanceFault.id.desc())):
            faults.setdefault(f.instance_uuid, FaultRecord(f.code, f.message, f.details, f.created_at))
        for member in await s.scalars(select(ServerGroupMember).where(ServerGroupMember.instance_uuid.in_(uuids))):
            groups.setdefault(member.instance_uuid, []).append(member.group_uuid)
    statuses = await host_statuses(s, {r.host for r in rows if r.host}, service_down_time)
    return [_record(r, faults.get(r.uuid), tuple(groups.get(r.uuid, ())), statuses.get(r.host or "", HOST_NONE))
            for r in rows]


async def host_statuses(s: AsyncSession, hosts: Iterable[str], service_down_time: float) -> dict[str, str]:
    """Nova's ``get_instance_host_status`` per host: DOWN if forced down, MAINTENANCE if disabled, UP/UNKNOWN."""
    hosts = list(hosts)
    if not hosts:
        return {}
    found = {h: HOST_NONE for h in hosts}
    now = utcnow()
    for svc in await s.scalars(select(ServiceRecord).where(ServiceRecord.host.in_(hosts),
                                                           ServiceRecord.binary == COMPUTE_BINARY)):
        if svc.forced_down:
            found[svc.host] = HOST_DOWN
        elif svc.disabled:
            found[svc.host] = HOST_MAINTENANCE
        else:
            alive = (now - svc.updated_at).total_seconds() <= service_down_time
            found[svc.host] = HOST_UP if alive else HOST_UNKNOWN
    return found


# ----------------------------------------------------------------------------- listing

def _where(stmt: Select[Any], q: ServerQuery) -> Select[Any]:
    if q.project_id is not None:
        stmt = stmt.where(Instance.project_id == q.project_id)
    if q.deleted is True:
        stmt = stmt.where(Instance.deleted_at.is_not(None))
    elif q.deleted is False:
        stmt = stmt.where(Instance.deleted_at.is_(None))
    for name, values in q.exact.items():
        stmt = stmt.where(EXACT_FILTERS[name].in_(values))
    if q.vm_states is not None:
        stmt = stmt.where(Instance.vm_state.in_(q.vm_states))
    if q.task_states is not None:
        named = [t for t in q.task_states if t is not None]
        cond = Instance.task_state.in_(named)
        stmt = stmt.where(or_(cond, Instance.task_state.is_(None)) if None in q.task_states else cond)
    if q.flavor is not None:
        stmt = stmt.where(Instance.flavor["flavorid"].as_string() == q.flavor)
    if q.changes_since is not None:
        stmt = stmt.where(Instance.updated_at >= q.changes_since)
    if q.changes_before is not None:
        stmt = stmt.where(Instance.updated_at <= q.changes_before)
    if q.locked is not None:
        stmt = stmt.where(Instance.locked == q.locked)
    return stmt


def _after(keys: list[str], dirs: list[str], marker: Instance) -> ColumnElement[bool]:
    """oslo.db's ``paginate_query`` criteria: rows strictly after ``marker`` in (keys, dirs) order."""
    alternatives = []
    for i, key in enumerate(keys):
        equal = [_equal(SORT_COLUMNS[k], getattr(marker, _attr(k))) for k in keys[:i]]
        alternatives.append(and_(*equal, _beyond(SORT_COLUMNS[key], getattr(marker, _attr(key)), dirs[i])))
    return or_(*alternatives)


def _attr(key: str) -> str:
    return str(SORT_COLUMNS[key].key)


def _equal(column: Any, value: Any) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


def _beyond(column: Any, value: Any, direction: str) -> ColumnElement[bool]:
    """Strictly after ``value``; NULL sorts lowest (SQLite and MariaDB both do)."""
    if direction == "asc":
        return column.is_not(None) if value is None else column > value
    return false() if value is None else or_(column < value, column.is_(None))


def _post_filter(row: Instance, q: ServerQuery) -> bool:
    """The filters kept out of SQL: regexes (``re.search`` as Nova's SQLite REGEXP) and tags."""
    for attr, pattern in q.regex.items():
        value = getattr(row, attr)
        if value is None or not pattern.search(str(value)):
            return False
    tags = set(row.tags or [])
    if q.tags is not None and not set(q.tags) <= tags:
        return False
    if q.tags_any is not None and not set(q.tags_any) & tags:
        return False
    if q.not_tags is not None and set(q.not_tags) <= tags:
        return False
    return not (q.not_tags_any is not None and set(q.not_tags_any) & tags)


async def list_instances(s: AsyncSession, q: ServerQuery) -> list[Instance]:
    """The page of instances ``q`` asks for (marker not found: Nova's 400 ``marker [X] not found``)."""
    keys, dirs = list(q.sort_keys), list(q.sort_dirs)
    for tiebreak in ("created_at", "uuid"):
        if tiebreak not in keys:
            keys.append(tiebreak)
            dirs.append(dirs[0] if dirs else "desc")
    stmt = _where(select(Instance), q)
    if q.marker is not None:
        lookup = select(Instance).where(Instance.uuid == q.marker)
        if q.project_id is not None:
            lookup = lookup.where(Instance.project_id == q.project_id)
        marker = await s.scalar(lookup)
        if marker is None:
            raise errors.BadRequest(f"marker [{q.marker}] not found")
        stmt = stmt.where(_after(keys, dirs, marker))
    for key, direction in zip(keys, dirs, strict=True):
        column = SORT_COLUMNS[key]
        stmt = stmt.order_by(column.asc() if direction == "asc" else column.desc())
    post = bool(q.regex) or any(t is not None for t in (q.tags, q.tags_any, q.not_tags, q.not_tags_any))
    if not post:
        if q.limit is not None:
            stmt = stmt.limit(q.limit)
        return list(await s.scalars(stmt))
    rows = [r for r in await s.scalars(stmt) if _post_filter(r, q)]
    return rows if q.limit is None else rows[:q.limit]


def is_deleted_state(vm_states: list[str] | None) -> bool:
    """The ``status=DELETED`` filter (Nova lets only admins list deleted instances this way)."""
    return vm_states == [VmState.DELETED.value]
