"""The scheduler's RPC endpoint (Nova's ``scheduler/manager.py``): place instances and claim their room.

``select_destinations`` turns the conductor's build request into a
``RequestSpec``, asks the in-memory ``HostStateCache`` for hosts (filter,
weigh, claim), then makes the claims real in the database in one
transaction: a conditional UPDATE per host (:mod:`kumo.compute.resources`)
and the instance's ``host``/``node``. If another scheduler took the room
first, the transaction is rolled back, the cache's claims released, the
hosts re-read and the decision made again (Placement's generation retry).

Host states are re-read from ``compute_nodes``, the ``nova-compute``
service rows and the hosts' aggregate zones at most every
``refresh_interval`` (5) seconds, at once when
nothing fits (a host may just have registered) and after a lost claim race;
between reads this process' own claims keep the cache current, and the
database's conditional UPDATE is what guarantees no overcommit. So a decision
at 1,000 hosts costs the filters and weighers, not a 1,000-row read. A
request for an availability zone re-reads the hosts' zones first (one small
query), so it is never placed by zones older than the request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select

from kumo.compute import resources
from kumo.compute.aggregates import host_zones
from kumo.compute.context import RequestContext
from kumo.compute.instances import COMPUTE_BINARY, save_instance
from kumo.compute.models import ComputeNode, Instance, ServerGroup, ServerGroupMember
from kumo.compute.scheduler.cache import HostStateCache
from kumo.compute.scheduler.errors import NoValidHost
from kumo.compute.scheduler.host_state import HostState
from kumo.compute.scheduler.request_spec import FlavorSpec, RequestSpec, ServerGroupSpec
from kumo.compute.scheduler.selector import Selection
from kumo.compute.states import TaskState
from kumo.core.config import ComputeOptions
from kumo.core.db import Database, retry_deadlocks, utcnow
from kumo.core.models import ServiceRecord

log = logging.getLogger("kumo.compute.scheduler")
CLAIM_RETRIES = 3


class _ClaimConflict(Exception):
    """Another scheduler filled a host between our read and our claim."""


class SchedulerManager:
    def __init__(self, db: Database, options: ComputeOptions, *, service_down_time: float,
                 refresh_interval: float = 5.0) -> None:
        self.db = db
        self.options = options
        self.service_down_time = service_down_time
        self.refresh_interval = refresh_interval
        self.cache = HostStateCache()
        self._loaded_at = 0.0
        self._loaded_started = 0.0
        self._refreshing = asyncio.Lock()

    # -- RPC

    async def select_destinations(self, ctx: dict[str, Any], instance_uuids: list[str],
                                  request: dict[str, Any]) -> dict[str, Any]:
        """``{"destinations": [{"instance_uuid", "host", "nodename"}]}`` or ``{"error": message}``.

        Instances deleted while they waited are left out of the answer (and
        claim nothing). A NoValidHost message says which filter removed how many hosts.
        """
        context = RequestContext.from_dict(ctx)
        spec = await self._request_spec(instance_uuids, request)
        try:
            placed = await self._place(spec, instance_uuids)
        except NoValidHost as exc:
            log.info("request %s: %s", context.request_id, exc.message)
            return {"error": exc.message}
        except _ClaimConflict:
            return {"error": f"No valid host was found. Every fitting host was taken by concurrent requests "
                             f"{CLAIM_RETRIES + 1} times in a row."}
        return {"destinations": placed}

    # -- placing

    async def _place(self, spec: RequestSpec, uuids: Sequence[str]) -> list[dict[str, str]]:
        await self._refresh(force=False)
        if spec.availability_zone:
            await self._refresh_zones()
        await self._note_hinted_instances(spec.scheduler_hints)
        refreshed_for_miss = False
        for _attempt in range(CLAIM_RETRIES):
            try:
                selections = await self.cache.claim(spec, num=len(uuids), instance_uuids=uuids)
            except NoValidHost:
                if refreshed_for_miss:
                    raise
                refreshed_for_miss = True  # a host may have registered since the last read
                await self._refresh(force=True)
                await self._note_hinted_instances(spec.scheduler_hints)
                continue
            try:
                return await self._persist(selections)
            except _ClaimConflict as conflict:
                log.info("claim on %s lost to another scheduler; re-reading hosts", conflict)
                await self.cache.release(selections)
                await self._refresh(force=True)
                await self._note_hinted_instances(spec.scheduler_hints)
        # Every try lost a race: the cloud is being filled faster than we can read it. Decide once more, fresh.
        selections = await self.cache.claim(spec, num=len(uuids), instance_uuids=uuids)
        try:
            return await self._persist(selections)
        except _ClaimConflict:
            await self.cache.release(selections)
            raise

    async def _persist(self, selections: Sequence[Selection]) -> list[dict[str, str]]:
        """Claim each selection in the database and assign its instance; all in one transaction.

        Hosts are locked in name order, so two schedulers claiming on the same
        hosts cannot deadlock each other; if the database still breaks a lock
        cycle (with a compute agent's usage audit), the whole transaction is retried.
        """
        placed, gone = await retry_deadlocks(lambda: self._claim_all(selections))
        if gone:
            await self.cache.release(gone)
        order = {sel.spec.instance_uuid: i for i, sel in enumerate(selections)}
        return sorted(placed, key=lambda p: order[p["instance_uuid"]])

    async def _claim_all(self, selections: Sequence[Selection]) -> tuple[list[dict[str, str]], list[Selection]]:
        placed: list[dict[str, str]] = []
        gone: list[Selection] = []
        async with self.db.session() as s:
            for sel in sorted(selections, key=lambda sel: sel.host.host):
                flavor = sel.spec.flavor
                assigned = await save_instance(s, sel.spec.instance_uuid, expected_task_state=TaskState.SCHEDULING,
                                               host=sel.host.host, node=sel.host.nodename,
                                               availability_zone=sel.host.availability_zone)
                if not assigned:
                    gone.append(sel)
                    continue
                ok = await resources.claim(s, sel.host.host, flavor.vcpus, flavor.memory_mb,
                                           int(flavor.disk_gb + 0.999), self.options.reserved_host_memory_mb)
                if not ok:
                    raise _ClaimConflict(sel.host.host)
                placed.append({"instance_uuid": sel.spec.instance_uuid, "host": sel.host.host,
                               "nodename": sel.host.nodename})
        return placed, gone

    # -- host states

    async def _refresh(self, *, force: bool) -> None:
        """Re-read host states if stale (or forced); concurrent callers share one read, not one each."""
        asked_at = time.monotonic()
        if not force and asked_at - self._loaded_at < self.refresh_interval:
            return
        async with self._refreshing:
            if force:
                fresh_enough = self._loaded_started > asked_at  # a read began after we asked
            else:
                fresh_enough = time.monotonic() - self._loaded_at < self.refresh_interval
            if fresh_enough:
                return  # somebody read the hosts while we waited
            self._loaded_started = time.monotonic()
            await self.cache.refresh(self._load_hosts)
            self._loaded_at = time.monotonic()

    async def _refresh_zones(self) -> None:
        """Take every cached host's zone from its aggregates as they are now (AvailabilityZoneFilter reads it).

        Under the refresh lock, so a host read that began earlier cannot put older zones back afterwards.
        """
        async with self._refreshing:
            async with self.db.session() as s:
                zones = await host_zones(s)
            default = self.options.default_availability_zone
            for state in self.cache.hosts:
                state.availability_zone = zones.get(state.host, default)

    async def _load_hosts(self) -> list[HostState]:
        n = ComputeNode
        now = utcnow()
        async with self.db.session() as s:
            zones = await host_zones(s)
            services = {row.host: row for row in (await s.execute(
                select(ServiceRecord.host, ServiceRecord.disabled, ServiceRecord.forced_down,
                       ServiceRecord.updated_at).where(ServiceRecord.binary == COMPUTE_BINARY)))}
            nodes = (await s.execute(select(
                n.host, n.hypervisor_hostname, n.vcpus, n.memory_mb, n.local_gb, n.vcpus_used, n.memory_mb_used,
                n.local_gb_used, n.running_vms, n.cpu_allocation_ratio, n.ram_allocation_ratio,
                n.disk_allocation_ratio, n.hypervisor_type, n.hypervisor_version, n.cpu_info, n.updated_at)
                .where(n.deleted_at.is_(None)))).all()
        default_zone = self.options.default_availability_zone
        states = []
        for row in nodes:
            service = services.get(row.host)
            up = service is not None and not service.forced_down and \
                (now - service.updated_at).total_seconds() <= self.service_down_time
            cpu_info = row.cpu_info or {}
            states.append(HostState(
                host=row.host, nodename=row.hypervisor_hostname,
                availability_zone=zones.get(row.host, default_zone),
                enabled=service is not None and not service.disabled, up=up,
                total_vcpus=row.vcpus, total_memory_mb=row.memory_mb, total_disk_gb=row.local_gb,
                used_vcpus=row.vcpus_used, used_memory_mb=row.memory_mb_used, used_disk_gb=row.local_gb_used,
                cpu_allocation_ratio=row.cpu_allocation_ratio, ram_allocation_ratio=row.ram_allocation_ratio,
                disk_allocation_ratio=row.disk_allocation_ratio,
                reserved_host_memory_mb=self.options.reserved_host_memory_mb,
                hypervisor_type=row.hypervisor_type, hypervisor_version=row.hypervisor_version,
                cpu_arch=str(cpu_info.get("arch", "x86_64")), num_instances=row.running_vms,
                updated_at=row.updated_at))
        return states

    # -- the request

    async def _request_spec(self, uuids: Sequence[str], request: dict[str, Any]) -> RequestSpec:
        flavor = request.get("flavor") or {}
        image = request.get("image") or {}
        hints = dict(request.get("scheduler_hints") or {})
        group = await self._server_group(request.get("group"), uuids)
        retry = request.get("retry") or {}
        return RequestSpec(
            instance_uuid=uuids[0] if uuids else "", project_id=str(request.get("project_id") or ""),
            flavor=FlavorSpec(vcpus=int(flavor.get("vcpus", 1)), memory_mb=int(flavor.get("memory_mb", 0)),
                              root_gb=int(flavor.get("root_gb", 0)), ephemeral_gb=int(flavor.get("ephemeral_gb", 0)),
                              swap=int(flavor.get("swap", 0) or 0), extra_specs=dict(flavor.get("extra_specs") or {})),
            image_properties={k: str(v) for k, v in (image.get("properties") or {}).items()},
            availability_zone=request.get("availability_zone"), num_instances=len(uuids),
            scheduler_hints=hints, server_group=group, ignore_hosts=tuple(retry.get("hosts") or ()),
            force_hosts=tuple(request.get("force_hosts") or ()))

    async def _server_group(self, group_uuid: str | None, uuids: Sequence[str]) -> ServerGroupSpec | None:
        if not group_uuid:
            return None
        async with self.db.session() as s:
            group = await s.get(ServerGroup, group_uuid)
            if group is None:
                return None
            hosts = (await s.scalars(
                select(Instance.host).join(ServerGroupMember, ServerGroupMember.instance_uuid == Instance.uuid)
                .where(ServerGroupMember.group_uuid == group_uuid, Instance.host.is_not(None),
                       Instance.deleted_at.is_(None), Instance.uuid.not_in(list(uuids))))).all()
        rules = {k: int(v) for k, v in (group.rules or {}).items() if str(v).isdigit()}
        return ServerGroupSpec(group.policy, tuple(h for h in hosts if h), rules, group.uuid)

    async def _note_hinted_instances(self, hints: Mapping[str, Any]) -> None:
        """Tell the cached hosts where ``same_host``/``different_host`` instances live (the filters read it)."""
        wanted: list[str] = []
        for name in ("same_host", "different_host"):
            value = hints.get(name)
            wanted += [value] if isinstance(value, str) else list(value or [])
        if not wanted:
            return
        async with self.db.session() as s:
            rows = (await s.execute(select(Instance.uuid, Instance.host).where(
                Instance.uuid.in_(wanted), Instance.deleted_at.is_(None), Instance.host.is_not(None)))).all()
        for uuid, host in rows:
            state = self.cache.get(host)
            if state is not None:
                state.instance_uuids.add(uuid)
