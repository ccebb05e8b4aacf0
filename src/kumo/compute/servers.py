"""Servers: create, read, update, delete, rebuild, metadata and tags (Nova's ``compute/api.py``).

One request is one transaction: every row a create writes (the instances,
their ``create`` actions, server group memberships) commits together or
not at all, and only then is the conductor asked to build
(``rpcapi.ConductorAPI.build_instances``). Actions that need the host
(delete, rebuild) set the task state the agent expects (see the table in
:mod:`kumo.compute.rpcapi`), record the instance action, commit, then cast.

``system_metadata`` holds what Nova keeps in extra columns or its request
spec: ``image_*`` (the image's properties, Nova's ``SM_IMAGE_PROP_PREFIX``),
``kernel_id``, ``ramdisk_id``, ``root_device_name``, ``auto_disk_config``,
``security_groups`` (names), ``requested_networks`` and
``requested_availability_zone`` (the pinned zone of 2.96).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import uuid as uuidlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.compute import instances, quotas
from kumo.compute.context import RequestContext
from kumo.compute.deps import ComputeDeps
from kumo.compute.images import check_flavor_image, image_request, image_system_metadata
from kumo.compute.flavors import FlavorRecord
from kumo.compute.host_services import HostServices
from kumo.compute.models import ComputeNode, Instance, ServerGroup, ServerGroupMember
from kumo.compute.server_query import ServerQuery, ServerRecord, list_instances, load_records
from kumo.compute.states import TaskState, VmState, check_action, check_not_locked, invalid_state
from kumo.core import errors
from kumo.core.db import utcnow

MAX_TAGS = 50
TAG_STATES = (VmState.ACTIVE, VmState.PAUSED, VmState.SUSPENDED, VmState.STOPPED)
_PASSWORD_CHARS = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_RESERVATION_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"


def generate_password(length: int = 12) -> str:
    """Nova's ``utils.generate_password``: 12 characters, no look-alikes (0/O, 1/l/I)."""
    return "".join(secrets.choice(_PASSWORD_CHARS) for _ in range(length))


def reservation_id() -> str:
    """Nova's ``generate_uid('r')``: ``r-`` and 8 random characters."""
    return "r-" + "".join(secrets.choice(_RESERVATION_CHARS) for _ in range(8))


@dataclass(frozen=True)
class ServerSpec:
    """A validated ``POST /servers``: names, image, sizes and placement wishes (the flavor comes separately)."""

    name: str
    image_ref: str
    min_count: int = 1
    max_count: int = 1
    description: str | None = None
    hostname: str | None = None
    key_name: str | None = None
    user_data: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    networks: list[dict[str, Any]] | str | None = None
    security_groups: list[str] = field(default_factory=lambda: ["default"])
    availability_zone: str | None = None
    forced_host: str | None = None
    forced_node: str | None = None
    requested_host: str | None = None
    scheduler_hints: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    config_drive: bool = False
    access_ip_v4: str | None = None
    access_ip_v6: str | None = None
    auto_disk_config: bool = False


@dataclass(frozen=True)
class RebuildSpec:
    """A validated ``rebuild`` action; ``changes`` are column -> value (``display_name``, ``key_name``...)."""

    image_ref: str
    changes: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] | None = None


@dataclass(frozen=True)
class CreatedServers:
    uuids: list[str]
    reservation_id: str


class ServerService:
    def __init__(self, deps: ComputeDeps) -> None:
        self.deps = deps

    # -- reads ---------------------------------------------------------------------------------------
    async def _records(self, s: AsyncSession, rows: list[Instance]) -> list[ServerRecord]:
        return await load_records(s, rows, self.deps.service_down_time)

    async def get(self, ctx: RequestContext, uuid: str) -> ServerRecord:
        """A live server the caller may see (404 otherwise, also for other projects' servers)."""
        async with self.deps.db.session() as s:
            return (await self._records(s, [await instances.get_instance(s, ctx, uuid)]))[0]

    async def list(self, query: ServerQuery) -> list[ServerRecord]:
        async with self.deps.db.session() as s:
            return await self._records(s, await list_instances(s, query))

    # -- create --------------------------------------------------------------------------------------
    async def _image(self, ctx: RequestContext, image_id: str, missing: str) -> dict[str, Any]:
        """The Glance image as the caller sees it: 400 ``missing`` when absent, 400 when not active."""
        try:
            image = await self.deps.images.get_image(ctx.auth_token, image_id)
        except errors.NotFound:
            raise errors.BadRequest(missing) from None
        if image.get("status") != "active":
            raise errors.BadRequest(f"Image {image_id} is not active.")
        return image

    async def _key_data(self, ctx: RequestContext, key_name: str | None) -> str | None:
        if key_name is None:
            return None
        try:
            return (await self.deps.keypairs.get(str(ctx.user_id), key_name)).public_key
        except errors.NotFound:
            raise errors.BadRequest("Invalid key_name provided.") from None

    async def create(self, ctx: RequestContext, spec: ServerSpec, flavor: FlavorRecord) -> CreatedServers:
        """Nova's ``API.create``: validate, write every instance in one transaction, then cast the build."""
        if flavor.disabled:
            raise errors.BadRequest(f"Flavor {flavor.flavorid} could not be found.")
        image = await self._image(ctx, spec.image_ref, "Can not find requested image")
        check_flavor_image(flavor.memory_mb, flavor.root_gb, image, allow_zero_disk=ctx.is_admin)
        sysmeta = image_system_metadata(image, flavor.root_gb)
        for ref in ("kernel_id", "ramdisk_id"):
            if sysmeta[ref]:
                await self._image(ctx, sysmeta[ref], "Can not find requested image")
        key_data = await self._key_data(ctx, spec.key_name)
        requested_networks: list[dict[str, Any]] = []
        if self.deps.network is not None:
            requested_networks = await self.deps.network.validate_requested(
                ctx, spec.networks, spec.max_count, list(spec.security_groups))
        if spec.hostname and spec.max_count > 1:
            raise errors.BadRequest("Unable to allocate a single hostname to multiple instances")
        if spec.availability_zone and spec.forced_host is None:
            available, _unavailable, _services = await HostServices(
                self.deps.db, self.deps.service_down_time, self.deps.options.default_availability_zone).zones()
            if spec.availability_zone not in available:  # Nova's check: a zone with an enabled service
                raise errors.BadRequest("The requested availability zone is not available")
        sysmeta.update(auto_disk_config=spec.auto_disk_config, security_groups=list(spec.security_groups),
                       requested_networks=spec.networks, requested_availability_zone=spec.availability_zone)
        async with self.deps.db.session() as s:
            if spec.requested_host is not None and await s.scalar(
                    select(ComputeNode.id).where(ComputeNode.host == spec.requested_host).limit(1)) is None:
                raise errors.BadRequest(f"Compute host {spec.requested_host} could not be found.")
            await check_metadata_quota(s, ctx.project_id, spec.metadata)
            count = await quotas.check_instances(s, str(ctx.project_id), spec.max_count, flavor.vcpus,
                                                 flavor.memory_mb, min_count=spec.min_count)
            group = await self._group(s, ctx, spec.scheduler_hints, count)
            resv = reservation_id()
            now = utcnow()
            rows = [self._new_instance(ctx, spec, flavor, sysmeta, key_data, resv, i, count, now)
                    for i in range(count)]
            s.add_all(rows)
            await s.flush()
            uuids = [r.uuid for r in rows]
            if group is not None:
                s.add_all(ServerGroupMember(group_uuid=group, instance_uuid=u) for u in uuids)
            instances.start_action(s, ctx, uuids, instances.CREATE)
        await self._recheck_quota(ctx, uuids, flavor)
        request = {
            "flavor": {"vcpus": flavor.vcpus, "memory_mb": flavor.memory_mb, "root_gb": flavor.root_gb,
                       "ephemeral_gb": flavor.ephemeral_gb, "swap": flavor.swap,
                       "extra_specs": dict(flavor.extra_specs)},
            "image": image_request(image),
            "availability_zone": spec.availability_zone,
            "force_hosts": [h for h in (spec.forced_host or spec.requested_host,) if h],
            "scheduler_hints": spec.scheduler_hints,
            "group": group,
            "networks": requested_networks,
            "project_id": ctx.project_id,
            "retry": {"num_attempts": 0, "hosts": []},
        }
        await self.deps.conductor.build_instances(ctx, uuids, request)
        return CreatedServers(uuids, resv)

    async def _recheck_quota(self, ctx: RequestContext, uuids: list[str], flavor: FlavorRecord) -> None:
        """Nova's quota recheck: count again after the commit, and take the servers back if a race overran.

        Two creates that counted at the same time (on a server database; on
        SQLite transactions take turns) could both have fit; whichever sees
        the limit exceeded after committing removes its own servers again and
        answers 403, so the project never keeps more than its quota.
        """
        async with self.deps.db.session() as s:
            limits = await quotas.limits_for(s, ctx.project_id)
            usage = await quotas.instance_usage(s, str(ctx.project_id))
            over = [r for r in ("instances", "cores", "ram") if limits[r] >= 0 and usage[r] > limits[r]]
            if not over:
                return
            rows = list(await s.scalars(select(Instance).where(Instance.uuid.in_(uuids))))
            for row in rows:
                await local_delete(s, row)
        wanted = {"instances": len(uuids), "cores": flavor.vcpus * len(uuids), "ram": flavor.memory_mb * len(uuids)}
        names = ", ".join(over)
        raise errors.OverQuota(
            f"Quota exceeded for {names}: Requested {', '.join(str(wanted[r]) for r in over)}, but already used "
            f"{', '.join(str(usage[r] - wanted[r]) for r in over)} of {', '.join(str(limits[r]) for r in over)} "
            f"{names}")

    @staticmethod
    def _new_instance(ctx: RequestContext, spec: ServerSpec, flavor: FlavorRecord, sysmeta: dict[str, Any],
                      key_data: str | None, resv: str, index: int, count: int, now: dt.datetime) -> Instance:
        """One row, named as Nova's ``_populate_instance_names`` (``name-1``, ``name-2`` when several)."""
        uuid = str(uuidlib.uuid4())
        hostname = spec.hostname or sanitize_hostname(spec.name) or f"Server-{uuid}"
        name = spec.name
        if count > 1:
            name = f"{name}-{index + 1}"
            if not spec.hostname:
                hostname = f"{hostname}-{index + 1}"
        created = now + dt.timedelta(microseconds=index)  # keeps a batch in launch order
        return Instance(
            uuid=uuid, project_id=ctx.project_id, user_id=ctx.user_id, display_name=name,
            display_description=spec.description, hostname=hostname, vm_state=VmState.BUILDING,
            task_state=TaskState.SCHEDULING, power_state=0, host=None, node=None, availability_zone=None,
            flavor=flavor.snapshot(), image_ref=spec.image_ref, key_name=spec.key_name, key_data=key_data,
            user_data=spec.user_data, config_drive=spec.config_drive, metadata_=dict(spec.metadata),
            system_metadata=dict(sysmeta), tags=list(dict.fromkeys(spec.tags)), locked=False, progress=0,
            access_ip_v4=spec.access_ip_v4, access_ip_v6=spec.access_ip_v6, reservation_id=resv,
            launch_index=index, created_at=created, updated_at=created)

    async def _group(self, s: AsyncSession, ctx: RequestContext, hints: Mapping[str, Any], count: int) -> str | None:
        """The ``group`` hint: a server group the caller can see, with room for ``count`` more members."""
        hint = hints.get("group")
        if isinstance(hint, list):
            hint = hint[0] if hint else None
        if not hint:
            return None
        stmt = select(ServerGroup).where(ServerGroup.uuid == hint)
        if not ctx.is_admin:
            stmt = stmt.where(ServerGroup.project_id == ctx.project_id)
        group = await s.scalar(stmt)
        if group is None:
            raise errors.BadRequest(f"Instance group {hint} could not be found.")
        limit = await quotas.limit_for(s, group.project_id, "server_group_members")
        members = await s.scalar(select(func.count()).select_from(ServerGroupMember)
                                 .where(ServerGroupMember.group_uuid == group.uuid))
        if quotas.exceeds(limit, int(members or 0), count):
            raise errors.OverQuota("Quota exceeded, too many servers in group")
        return group.uuid

    # -- update / delete -----------------------------------------------------------------------------
    async def update(self, ctx: RequestContext, uuid: str, changes: Mapping[str, Any]) -> ServerRecord:
        """``PUT /servers/{id}``: columns (``display_name``, ``hostname``...); Nova checks neither lock nor state."""
        async with self.deps.db.session() as s:
            row = await instances.get_instance(s, ctx, uuid, for_update=True)
            for column, value in changes.items():
                setattr(row, column, value)
            row.updated_at = utcnow()
            await s.flush()
            return (await self._records(s, [row]))[0]

    async def delete(self, ctx: RequestContext, uuid: str) -> None:
        """Nova's ``_delete``: local when there is no host or its agent is down, else the agent terminates.

        A second delete while one is in progress is accepted and ignored, as Nova does.
        """
        async with self.deps.db.session() as s:
            row = await instances.get_instance(s, ctx, uuid, for_update=True)
            check_not_locked(uuid, row.locked, ctx.is_admin)
            check_action("delete", row.vm_state, row.task_state, instance_uuid=uuid,
                         launched=row.launched_at is not None)
            host = row.host
            agent_up = bool(host) and await instances.compute_service_up(s, host, self.deps.service_down_time)
            if row.task_state == TaskState.DELETING and agent_up:
                return  # the agent is on it; a dead agent's delete is finished here instead
            instances.start_action(s, ctx, [uuid], instances.DELETE)
            if agent_up:
                row.task_state = TaskState.DELETING
                row.updated_at = utcnow()
            else:
                host = None
                network_info = row.network_info
                await local_delete(s, row)
        if host is not None:
            await self.deps.agents.terminate_instance(ctx, host, uuid)
        elif self.deps.network is not None:
            await self.deps.network.deallocate(uuid, network_info)

    # -- rebuild -------------------------------------------------------------------------------------
    async def rebuild(self, ctx: RequestContext, uuid: str, spec: RebuildSpec) -> ServerRecord:
        """Nova's ``API.rebuild``: new image (and optionally name, metadata, key...), task ``rebuilding``."""
        image = await self._image(ctx, spec.image_ref, "Cannot find image for rebuild")
        changes = dict(spec.changes)
        if changes.get("key_name") is not None:
            changes["key_data"] = await self._key_data(ctx, changes["key_name"])
        elif "key_name" in changes:
            changes["key_data"] = None
        async with self.deps.db.session() as s:
            row = await instances.get_instance(s, ctx, uuid, for_update=True)
            check_not_locked(uuid, row.locked, ctx.is_admin)
            check_action("rebuild", row.vm_state, row.task_state, instance_uuid=uuid,
                         launched=row.launched_at is not None)
            if not row.host:
                raise invalid_state("rebuild", uuid, "vm_state", row.vm_state)
            flavor = row.flavor or {}
            check_flavor_image(int(flavor.get("memory_mb", 0)), int(flavor.get("root_gb", 0)), image,
                               allow_zero_disk=True)
            if spec.metadata is not None:
                await check_metadata_quota(s, row.project_id, spec.metadata)
                row.metadata_ = dict(spec.metadata)
            for column, value in changes.items():
                setattr(row, column, value)
            kept = {k: v for k, v in (row.system_metadata or {}).items() if not k.startswith("image_")}
            row.system_metadata = {**kept, **image_system_metadata(image, int(flavor.get("root_gb", 0)))}
            row.image_ref = spec.image_ref
            row.task_state = TaskState.REBUILDING
            row.progress = 0
            row.updated_at = utcnow()
            instances.start_action(s, ctx, [uuid], instances.REBUILD)
            await s.flush()
            record = (await self._records(s, [row]))[0]
        await self.deps.agents.rebuild_instance(ctx, str(record.host), uuid, image_request(image))
        return record

    # -- metadata ------------------------------------------------------------------------------------
    async def update_metadata(self, ctx: RequestContext, uuid: str, items: Mapping[str, str],
                              replace: bool = False) -> dict[str, str]:
        """Nova's ``update_instance_metadata``: merge (or replace), within the ``metadata_items`` quota."""
        async with self.deps.db.session() as s:
            row = await instances.get_instance(s, ctx, uuid, for_update=True)
            check_not_locked(uuid, row.locked, ctx.is_admin)
            check_action("update_metadata", row.vm_state, row.task_state, instance_uuid=uuid,
                         launched=row.launched_at is not None)
            merged = dict(items) if replace else {**(row.metadata_ or {}), **items}
            await check_metadata_quota(s, row.project_id, merged)
            row.metadata_ = merged
            row.updated_at = utcnow()
            return merged

    async def delete_metadata(self, ctx: RequestContext, uuid: str, key: str) -> None:
        async with self.deps.db.session() as s:
            row = await instances.get_instance(s, ctx, uuid, for_update=True)
            if key not in (row.metadata_ or {}):
                raise errors.NotFound("Metadata item was not found")
            check_not_locked(uuid, row.locked, ctx.is_admin)
            check_action("delete_metadata", row.vm_state, row.task_state, instance_uuid=uuid,
                         launched=row.launched_at is not None)
            row.metadata_ = {k: v for k, v in row.metadata_.items() if k != key}
            row.updated_at = utcnow()

    # -- tags ----------------------------------------------------------------------------------------
    async def _change_tags(self, ctx: RequestContext, uuid: str, action: str,
                           change: Callable[[list[str]], list[str]]) -> list[str]:
        """Tags change only in Nova's ACTIVE/PAUSED/SUSPENDED/STOPPED (409 ``Cannot 'update tag' ...``)."""
        async with self.deps.db.session() as s:
            row = await instances.get_instance(s, ctx, uuid, for_update=True)
            if row.vm_state not in TAG_STATES:
                raise invalid_state(action, uuid, "vm_state", row.vm_state)
            tags = change(list(row.tags or []))
            if tags != list(row.tags or []):
                row.tags = tags
                row.updated_at = utcnow()
            return tags

    async def add_tag(self, ctx: RequestContext, uuid: str, tag: str, invalid: str | None) -> bool:
        """Add one tag; True when it was new (201), False when already there (204)."""
        added: list[bool] = []

        def change(tags: list[str]) -> list[str]:
            if invalid is not None:
                raise errors.BadRequest(f"Tag '{tag}' is invalid. It must be a non empty string without characters "
                                        f"'/' and ','. Validation error message: {invalid}")
            if len(tags) >= MAX_TAGS:
                raise errors.BadRequest(f"The number of tags exceeded the per-server limit {MAX_TAGS}")
            if tag in tags:
                return tags
            added.append(True)
            return [*tags, tag]

        await self._change_tags(ctx, uuid, "update tag", change)
        return bool(added)

    async def set_tags(self, ctx: RequestContext, uuid: str, tags: list[str]) -> list[str]:
        return await self._change_tags(ctx, uuid, "update tags", lambda _old: list(dict.fromkeys(tags)))

    async def delete_tag(self, ctx: RequestContext, uuid: str, tag: str) -> None:
        def change(tags: list[str]) -> list[str]:
            if tag not in tags:
                raise errors.NotFound(f"Instance {uuid} has no tag '{tag}'")
            return [t for t in tags if t != tag]

        await self._change_tags(ctx, uuid, "delete tag", change)

    async def delete_tags(self, ctx: RequestContext, uuid: str) -> None:
        await self._change_tags(ctx, uuid, "delete tags", lambda _old: [])


async def check_metadata_quota(s: AsyncSession, project_id: str | None, metadata: Mapping[str, str]) -> None:
    """Nova's ``_check_metadata_properties_quota``: 403 past the project's ``metadata_items``."""
    limit = await quotas.limit_for(s, project_id, "metadata_items")
    if quotas.exceeds(limit, 0, len(metadata)):
        raise errors.OverQuota(f"Maximum number of metadata items exceeds {limit}")


async def local_delete(s: AsyncSession, row: Instance) -> None:
    """Nova's ``_local_delete``: no agent to ask, so the API marks the row deleted and frees its claim.

    If the agent comes back with the guest still there, its reconciliation
    destroys it (the instance is deleted), as Nova's ``running_deleted_instance_action``.
    """
    await instances.retire(s, row)


def sanitize_hostname(name: str) -> str:
    """Nova's ``utils.sanitize_hostname``: latin-1 only, 63 characters, ``[ _.]`` to ``-``, lower case."""
    name = name.encode("latin-1", "ignore").decode("latin-1")[:63]
    name = re.sub(r"[ _.]", "-", name)
    name = re.sub(r"[^\w.-]+", "", name)
    return name.lower().strip(".-")
