"""Server actions: the state, lock and host checks, guarded task-state updates, action records and casts.

This is Nova's ``compute/api.py`` for ``POST /servers/{id}/action`` (the
HTTP side is :mod:`kumo.compute.api.server_actions`). Every action follows
Nova's order of checks — ``@check_instance_lock``, ``@check_instance_host``
(stop/start: before the state), ``@check_instance_state`` — then:

1. moves the instance into the task state the agent expects
   (:mod:`kumo.compute.rpcapi`'s table) with one conditional UPDATE
   (Nova's ``instance.save(expected_task_state=...)``), so of two
   concurrent requests exactly one wins and the other gets Nova's 409;
2. records the instance action (``os-instance-actions``) in the same
   transaction;
3. casts to the host's agent (or the conductor, for resize) once committed.

Callers pass an :class:`InstanceRef` read by :meth:`ServerActions.get`
(policy is checked in between, on the instance's project, as Nova does).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select

from kumo.compute import instances as inst_db
from kumo.compute import quotas
from kumo.compute.context import RequestContext
from kumo.compute.deps import ComputeDeps
from kumo.compute.flavors import FlavorRecord
from kumo.compute.models import Instance, InstanceAction, InstanceActionEvent
from kumo.compute.states import ACTIONS, TaskState, VmState, check_action, check_not_locked, invalid_state
from kumo.core import errors
from kumo.core.auth import AuthContext
from kumo.core.bus.base import RemoteError
from kumo.core.db import utcnow

RESET_STATE = "resetState"  # Nova's instance_actions.RESET_STATE
#: Image properties a snapshot never inherits (Nova's NON_INHERITABLE_IMAGE_PROPERTIES and namespaces).
NON_INHERITABLE = {"cache_in_nova", "bittorrent", "img_signature_hash_method", "img_signature",
                   "img_signature_key_type", "img_signature_certificate_uuid"}
NON_INHERITABLE_PREFIXES = ("img_ssl_", "trait:", "hw_vtpm", "owner_specified.")
#: ``image_<key>`` system metadata that is an image attribute, not a property (Nova's SM_INHERITABLE_KEYS).
IMAGE_ATTRIBUTES = ("min_ram", "min_disk", "disk_format", "container_format")
_CONSOLE_JUNK = re.compile("[\x00-\x08\x0b-\x1f]")


@dataclass(frozen=True)
class InstanceRef:
    """What the action checks read of an instance (ORM rows stay in this module)."""

    uuid: str
    project_id: str
    user_id: str
    vm_state: str
    task_state: str | None
    host: str | None
    locked: bool
    locked_by: str | None
    launched: bool
    flavor: dict[str, Any]
    system_metadata: dict[str, Any]
    image_ref: str | None


@dataclass(frozen=True)
class Transition:
    """One cast action: the ``states.ACTIONS`` rule, the task state to set, the action name, the agent method."""

    rule: str
    task_state: str
    action: str
    method: str
    host_first: bool = False  # Nova checks the host before the state (stop/start)


T = TaskState
TRANSITIONS: dict[str, Transition] = {
    "stop": Transition("stop", T.POWERING_OFF, inst_db.STOP, "stop_instance", host_first=True),
    "start": Transition("start", T.POWERING_ON, inst_db.START, "start_instance", host_first=True),
    "reboot_soft": Transition("reboot", T.REBOOTING, inst_db.REBOOT, "reboot_instance"),
    "reboot_hard": Transition("reboot_hard", T.REBOOTING_HARD, inst_db.REBOOT, "reboot_instance"),
    "pause": Transition("pause", T.PAUSING, inst_db.PAUSE, "pause_instance"),
    "unpause": Transition("unpause", T.UNPAUSING, inst_db.UNPAUSE, "unpause_instance"),
    "suspend": Transition("suspend", T.SUSPENDING, inst_db.SUSPEND, "suspend_instance"),
    "resume": Transition("resume", T.RESUMING, inst_db.RESUME, "resume_instance"),
    "confirm_resize": Transition("confirm_resize", T.RESIZE_CONFIRMING, inst_db.CONFIRM_RESIZE, "confirm_resize"),
    "revert_resize": Transition("revert_resize", T.RESIZE_REVERTING, inst_db.REVERT_RESIZE, "revert_resize"),
}
del T


def not_ready(uuid: str) -> errors.Conflict:
    """Nova's InstanceNotReady (409): the instance has no host to send the work to."""
    return errors.Conflict(f"Instance {uuid} is not ready")


def _ref(row: Instance) -> InstanceRef:
    return InstanceRef(uuid=row.uuid, project_id=row.project_id, user_id=row.user_id, vm_state=row.vm_state,
                       task_state=row.task_state, host=row.host, locked=bool(row.locked), locked_by=row.locked_by,
                       launched=row.launched_at is not None, flavor=dict(row.flavor or {}),
                       system_metadata=dict(row.system_metadata or {}), image_ref=row.image_ref)


def is_expected_locked_by(ctx: RequestContext, inst: InstanceRef) -> bool:
    """Nova's ``is_expected_locked_by``: the owner project undoes an owner lock, anyone else an admin lock."""
    expected = "owner" if inst.project_id == ctx.project_id else "admin"
    return not inst.locked_by or inst.locked_by == expected


def snapshot_image_body(ctx: RequestContext, inst: InstanceRef, name: str,
                        metadata: dict[str, str]) -> dict[str, Any]:
    """The Glance v2 create body of a snapshot, as Nova's ``compute_utils.create_image``.

    Image attributes and properties come from the instance's ``image_*``
    system metadata (captured at boot), minus the non-inheritable ones;
    then Nova's snapshot properties and the request's ``metadata`` (which
    wins). Another project's caller (an admin) makes a ``shared`` image
    naming the instance's owner, else it is ``private``.
    """
    body: dict[str, Any] = {"name": name}
    props: dict[str, str] = {}
    for key, value in inst.system_metadata.items():
        if not key.startswith("image_") or value is None:
            continue
        prop = key[len("image_"):]
        if prop in IMAGE_ATTRIBUTES:
            body[prop] = int(value) if prop.startswith("min_") else str(value)
        elif prop not in NON_INHERITABLE and not prop.startswith(NON_INHERITABLE_PREFIXES):
            props[prop] = str(value)
    body["container_format"] = "bare"
    if inst.image_ref and "base_image_ref" not in props:
        props["base_image_ref"] = inst.image_ref
    props.update(instance_uuid=inst.uuid, user_id=str(ctx.user_id), image_type="snapshot")
    if ctx.project_id != inst.project_id:
        body["visibility"] = "shared"
        props["instance_owner"] = inst.project_id
    else:
        body["visibility"] = "private"
    props.update(metadata)
    return {**body, **props}


class ServerActions:
    """The domain side of ``POST /servers/{id}/action`` (one per request; it holds no state)."""

    def __init__(self, deps: ComputeDeps) -> None:
        self.deps = deps

    async def get(self, ctx: RequestContext, uuid: str, *, include_deleted: bool = False) -> InstanceRef:
        """The instance if the caller's project owns it (admins: any); Nova's 404 otherwise."""
        async with self.deps.db.session() as s:
            if not include_deleted:
                return _ref(await inst_db.get_instance(s, ctx, uuid))
            stmt = select(Instance).where(Instance.uuid == uuid)
            if not ctx.is_admin:
                stmt = stmt.where(Instance.project_id == ctx.project_id)
            row = await s.scalar(stmt)
        if row is None:
            raise errors.NotFound(f"Instance {uuid} could not be found.")
        return _ref(row)

    # -- checks and the guarded write -------------------------------------------------------------
    def _check(self, ctx: RequestContext, inst: InstanceRef, step: Transition, *, lock: bool = True) -> str:
        """Nova's decorators in order; returns the host the agent runs on."""
        if lock:
            check_not_locked(inst.uuid, inst.locked, ctx.is_admin)
        if step.host_first and not inst.host:
            raise not_ready(inst.uuid)
        check_action(step.rule, inst.vm_state, inst.task_state, instance_uuid=inst.uuid, launched=inst.launched)
        if not inst.host:
            raise not_ready(inst.uuid)
        return inst.host

    async def _claim(self, ctx: RequestContext, inst: InstanceRef, step: Transition, **values: Any) -> None:
        """Set the task state only if nobody moved the instance since it was read; record the action."""
        rule = ACTIONS[step.rule]
        expected = tuple(rule.task_states) if rule.task_states is not None else (None,)
        async with self.deps.db.session() as s:
            won = await inst_db.save_instance(s, inst.uuid, expected_task_state=expected,
                                              expected_vm_state=inst.vm_state, task_state=step.task_state,
                                              **values)
            if won:
                inst_db.start_action(s, ctx, [inst.uuid], step.action)
                return
        await self._raise_lost(ctx, inst.uuid, step.rule)

    async def _raise_lost(self, ctx: RequestContext, uuid: str, rule: str) -> None:
        """The conditional update matched nothing: answer as Nova would for the state it is in now."""
        now = await self.get(ctx, uuid)
        check_action(rule, now.vm_state, now.task_state, instance_uuid=uuid, launched=now.launched)
        raise invalid_state(rule, uuid, "task_state", now.task_state)

    async def transition(self, ctx: RequestContext, inst: InstanceRef, name: str, **cast_args: Any) -> None:
        """stop, start, pause, unpause, suspend, resume, confirm/revert resize, soft/hard reboot."""
        step = TRANSITIONS[name]
        host = self._check(ctx, inst, step)
        await self._claim(ctx, inst, step, **({"progress": 0} if name == "stop" else {}))
        await getattr(self.deps.agents, step.method)(ctx, host, inst.uuid, **cast_args)

    async def reboot(self, ctx: RequestContext, inst: InstanceRef, reboot_type: str) -> None:
        """Nova's ``reboot``: SOFT from active and idle, HARD also over a pending soft reboot or pause."""
        name = "reboot_hard" if reboot_type == "HARD" else "reboot_soft"
        await self.transition(ctx, inst, name, reboot_type=reboot_type)

    async def lock(self, ctx: RequestContext, inst: InstanceRef, reason: str | None) -> None:
        """Nova's ``lock``: a no-op when the owner locks again; ``locked_by`` owner or admin; event api_lock."""
        is_owner = inst.project_id == ctx.project_id
        if inst.locked and is_owner:
            return
        values = {"locked": True, "locked_by": "owner" if is_owner else "admin"}
        if reason:
            values["locked_reason"] = reason
        await self._api_event(ctx, inst.uuid, inst_db.LOCK, values)

    async def unlock(self, ctx: RequestContext, inst: InstanceRef) -> None:
        """Nova's ``unlock`` (the override policy is the API's business); event api_unlock."""
        await self._api_event(ctx, inst.uuid, inst_db.UNLOCK,
                              {"locked": False, "locked_by": None, "locked_reason": None})

    async def _api_event(self, ctx: RequestContext, uuid: str, action: str, values: dict[str, Any]) -> None:
        """An action done by the API itself: Nova's ``@wrap_instance_event(prefix='api')``."""
        async with self.deps.db.session() as s:
            inst_db.start_action(s, ctx, [uuid], action)
            await s.flush()
            await inst_db.start_event(s, ctx, uuid, f"api_{action}")
            await inst_db.save_instance(s, uuid, **values)
            await inst_db.finish_event(s, ctx, uuid, f"api_{action}")

    async def reset_state(self, ctx: RequestContext, inst: InstanceRef, state: str) -> None:
        """Nova's ``os-resetState``: vm_state active/error, no task, a finished ``resetState`` action."""
        async with self.deps.db.session() as s:
            now = utcnow()
            s.add(InstanceAction(action=RESET_STATE, instance_uuid=inst.uuid, request_id=ctx.request_id,
                                 user_id=ctx.user_id, project_id=ctx.project_id, start_time=now,
                                 finish_time=now, updated_at=now))
            vm_state = VmState.ACTIVE if state == "active" else VmState.ERROR
            await inst_db.save_instance(s, inst.uuid, vm_state=vm_state, task_state=None)

    # -- resize -------------------------------------------------------------------------------------
    async def resize(self, ctx: RequestContext, inst: InstanceRef, auth: AuthContext, flavor_id: str) -> None:
        """Nova's ``resize`` to a new flavor on the same host (the conductor claims it there).

        Checks in Nova's order: lock, state, host (and its agent up), the
        flavor (enabled, different, not to a zero disk), the upsize quota.
        """
        check_not_locked(inst.uuid, inst.locked, ctx.is_admin)
        check_action("resize", inst.vm_state, inst.task_state, instance_uuid=inst.uuid, launched=inst.launched)
        if not inst.host:
            raise not_ready(inst.uuid)
        async with self.deps.db.session() as s:
            if not await inst_db.compute_service_up(s, inst.host, self.deps.service_down_time):
                raise errors.Conflict("Service is unavailable at this time.")
        try:
            flavor = await self.deps.flavors.get(auth, flavor_id)
        except errors.NotFound as exc:
            raise errors.BadRequest(exc.message) from None
        if flavor.disabled:
            raise errors.BadRequest(f"Flavor {flavor.flavorid} could not be found.")
        if flavor.flavorid == str(inst.flavor.get("flavorid")):
            raise errors.BadRequest("When resizing, instances must change flavor!")
        if flavor.root_gb == 0 and int(inst.flavor.get("root_gb", 0)) != 0:
            raise errors.BadRequest("Server disk was unable to be resized because: "
                                    "Resize to zero disk flavor is not allowed.")
        await self._check_upsize(inst, flavor)
        await self._claim(ctx, inst, Transition("resize", TaskState.RESIZE_PREP, inst_db.RESIZE, ""))
        await self.deps.conductor.resize_instance(ctx, inst.uuid, flavor.snapshot())

    async def _check_upsize(self, inst: InstanceRef, flavor: FlavorRecord) -> None:
        """Nova's ``_check_quota_for_upsize``: growth in cores/ram must fit (403 TooManyInstances)."""
        old = inst.flavor
        grown = {"cores": flavor.vcpus - int(old.get("vcpus", 0)),
                 "ram": flavor.memory_mb - int(old.get("memory_mb", 0))}
        deltas = {k: v for k, v in grown.items() if v > 0}
        if not deltas:
            return
        async with self.deps.db.session() as s:
            limits = await quotas.limits_for(s, inst.project_id)
            usage = await quotas.instance_usage(s, inst.project_id)
        overs = [r for r, d in deltas.items() if quotas.exceeds(limits[r], usage[r], d)]
        if overs:
            names = ", ".join(overs)
            raise errors.OverQuota(
                f"Quota exceeded for {names}: Requested {', '.join(str(deltas[r]) for r in overs)}, "
                f"but already used {', '.join(str(usage[r]) for r in overs)} of "
                f"{', '.join(str(limits[r]) for r in overs)} {names}")

    # -- snapshot and console ---------------------------------------------------------------------
    async def create_image(self, ctx: RequestContext, inst: InstanceRef, name: str, metadata: dict[str, str],
                           *, check_metadata_quota: bool = False) -> dict[str, Any]:
        """Nova's ``snapshot``: no lock check; create the image as the caller, claim the task, cast.
        If the instance moved on meanwhile, the queued image is deleted again (Nova's 409)."""
        step = Transition("create_image", TaskState.IMAGE_SNAPSHOT_PENDING, inst_db.CREATE_IMAGE, "snapshot_instance")
        host = self._check(ctx, inst, step, lock=False)
        if check_metadata_quota and metadata:  # below 2.39 (Nova's check_img_metadata_properties_quota)
            async with self.deps.db.session() as s:
                if quotas.exceeds(await quotas.limit_for(s, inst.project_id, "metadata_items"), len(metadata), 0):
                    raise errors.Forbidden("Image metadata limit exceeded")
        image = await self.deps.images.create_image(ctx.auth_token, snapshot_image_body(ctx, inst, name, metadata))
        if ctx.project_id != inst.project_id:
            await self.deps.images.request("POST", f"/v2/images/{image['id']}/members", ctx.auth_token,
                                           json={"member": inst.project_id})
        try:
            await self._claim(ctx, inst, step)
        except errors.KumoError:
            with contextlib.suppress(errors.KumoError):
                await self.deps.images.delete_image(ctx.auth_token, image["id"])
            raise
        await self.deps.agents.snapshot_instance(ctx, host, inst.uuid, image["id"])
        return image

    async def remote_console(self, ctx: RequestContext, inst: InstanceRef, console_type: str, *,
                             state_error: type[errors.KumoError] = errors.Conflict) -> str:
        """Nova's ``get_vnc_console``/``get_serial_console``: the URL (with a fresh token) from the guest's host.

        Refused while the instance is being deleted or migrated (Nova's
        ``@reject_instance_state``); 409 "not ready" without a host or with
        the host's agent down. ``state_error`` is what a refused state
        becomes: 409 for the old actions, 400 for ``remote-consoles`` (Nova's).
        """
        rule = "get_serial_console" if console_type == "serial" else "get_vnc_console"
        try:
            check_action(rule, inst.vm_state, inst.task_state, instance_uuid=inst.uuid, launched=inst.launched)
        except errors.Conflict as exc:
            raise state_error(exc.message) from None
        if not inst.host:
            raise not_ready(inst.uuid)
        async with self.deps.db.session() as s:
            if not await inst_db.compute_service_up(s, inst.host, self.deps.service_down_time):
                raise not_ready(inst.uuid)
        return await self.deps.agents.get_console(ctx, inst.host, inst.uuid, console_type)

    async def console_output(self, ctx: RequestContext, inst: InstanceRef, length: int | None) -> str:
        """Nova's ``get_console_output`` (a bus call): the host must be set and its agent up (409).

        ``length`` -1 or None is the whole log. Control characters are
        removed, as Nova's API does.
        """
        if not inst.host:
            raise not_ready(inst.uuid)
        async with self.deps.db.session() as s:
            if not await inst_db.compute_service_up(s, inst.host, self.deps.service_down_time):
                raise not_ready(inst.uuid)
        tail = None if length is None or length < 0 else length
        try:
            output = await self.deps.agents.get_console_output(ctx, inst.host, inst.uuid, tail)
        except (RemoteError, errors.NotImplementedYet) as exc:  # Nova: NotImplementedError -> 501
            if isinstance(exc, RemoteError) and exc.exc_type != "NotImplementedError":
                raise
            raise errors.NotImplementedYet("The requested functionality is not supported.") from exc
        return _CONSOLE_JUNK.sub("", output)


# ---------------------------------------------------------------------------------- os-instance-actions

@dataclass(frozen=True)
class ActionQuery:
    """``GET /servers/{id}/os-instance-actions`` paging and filters (2.58, 2.66); None = no limit."""

    limit: int | None = None
    marker: str | None = None
    changes_since: dt.datetime | None = None
    changes_before: dt.datetime | None = None


def _action(row: InstanceAction) -> dict[str, Any]:
    return {"id": row.id, "action": row.action, "instance_uuid": row.instance_uuid, "request_id": row.request_id,
            "user_id": row.user_id, "project_id": row.project_id, "start_time": row.start_time,
            "message": row.message, "updated_at": row.updated_at}


class ActionLog:
    """Reads of instance actions and events, newest first (Nova's ``actions_get``, ``action_events_get``)."""

    def __init__(self, deps: ComputeDeps) -> None:
        self.deps = deps

    async def list(self, uuid: str, query: ActionQuery) -> list[dict[str, Any]]:
        """Actions of one instance; a ``marker`` that is not one of its request ids is Nova's 400."""
        if query.limit == 0:
            return []
        order = (InstanceAction.start_time.desc(), InstanceAction.id.desc())
        stmt = select(InstanceAction).where(InstanceAction.instance_uuid == uuid)
        if query.changes_since is not None:
            stmt = stmt.where(InstanceAction.updated_at >= query.changes_since)
        if query.changes_before is not None:
            stmt = stmt.where(InstanceAction.updated_at <= query.changes_before)
        async with self.deps.db.session() as s:
            if query.marker is not None:
                marker = await s.scalar(select(InstanceAction).where(
                    InstanceAction.instance_uuid == uuid, InstanceAction.request_id == query.marker)
                    .order_by(*order).limit(1))
                if marker is None:
                    raise errors.BadRequest(f"Marker {query.marker} could not be found.")
                stmt = stmt.where(or_(InstanceAction.start_time < marker.start_time,
                                      and_(InstanceAction.start_time == marker.start_time,
                                           InstanceAction.id < marker.id)))
            stmt = stmt.order_by(*order)
            if query.limit is not None:
                stmt = stmt.limit(query.limit)
            return [_action(row) for row in await s.scalars(stmt)]

    async def get(self, uuid: str, request_id: str) -> dict[str, Any]:
        """The newest action of this request on the instance, with its ``events`` (newest first)."""
        async with self.deps.db.session() as s:
            row = await s.scalar(select(InstanceAction).where(
                InstanceAction.instance_uuid == uuid, InstanceAction.request_id == request_id)
                .order_by(InstanceAction.start_time.desc(), InstanceAction.id.desc()).limit(1))
            if row is None:
                raise errors.NotFound(f"Action {request_id} not found")
            events = await s.scalars(select(InstanceActionEvent).where(InstanceActionEvent.action_id == row.id)
                                     .order_by(InstanceActionEvent.start_time.desc(),
                                               InstanceActionEvent.id.desc()))
            keys = ("event", "start_time", "finish_time", "result", "details", "host")
            return {**_action(row), "events": [{k: getattr(e, k) for k in keys} for e in events]}
