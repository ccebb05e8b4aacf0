"""Writes on instances that every compute process shares: guarded saves, faults, actions and events.

Nova's ``Instance.save(expected_task_state=...)`` is the rule that keeps
concurrent actors honest: a compute agent finishing a stop only moves the
instance out of ``powering-off`` if it is still ``powering-off`` (a delete
may have overtaken it). :func:`save_instance` is that, as one conditional
UPDATE, so two processes can never both win.

Instance actions and their events (``os-instance-actions``) are written by
the API (the action, when the request is accepted) and by whoever does the
work (the events: ``conductor_schedule_and_build_instances``,
``compute_stop_instance`` ...), keyed by the request id, as Nova's
``InstanceActionEvent.event_start`` / ``event_finish``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import String, Text, delete, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kumo.compute import resources
from kumo.compute.context import RequestContext
from kumo.compute.models import Instance, InstanceAction, InstanceActionEvent, InstanceFault, ServerGroupMember
from kumo.compute.states import PowerState, VmState
from kumo.core import errors
from kumo.core.db import UTCDateTime, utcnow
from kumo.core.models import ServiceRecord

_ANY: Any = object()

# Nova's instance_actions.py names (what `openstack server event list` shows).
CREATE, DELETE, STOP, START, REBOOT = "create", "delete", "stop", "start", "reboot"
PAUSE, UNPAUSE, SUSPEND, RESUME = "pause", "unpause", "suspend", "resume"
LOCK, UNLOCK, REBUILD, RESIZE = "lock", "unlock", "rebuild", "resize"
CONFIRM_RESIZE, REVERT_RESIZE, CREATE_IMAGE = "confirmResize", "revertResize", "createImage"

#: The service names Nova's os-services shows (``openstack compute service list``).
COMPUTE_BINARY, CONDUCTOR_BINARY, SCHEDULER_BINARY = "nova-compute", "nova-conductor", "nova-scheduler"

FAULT_MESSAGE_MAX = 255  # Nova truncates the fault message to the column


async def save_instance(s: AsyncSession, uuid: str, *, expected_task_state: Any = _ANY,
                        expected_vm_state: Any = _ANY, **values: Any) -> bool:
    """Update a live instance if it is still in the expected state; True when it was.

    ``expected_task_state`` / ``expected_vm_state`` may be one value (None
    included) or a tuple of values. Deleted instances are never updated.
    ``updated_at`` is always stamped (``changes-since`` reads it).
    """
    stmt = update(Instance).where(Instance.uuid == uuid, Instance.deleted_at.is_(None))
    stmt = _expect(stmt, Instance.task_state, expected_task_state)
    stmt = _expect(stmt, Instance.vm_state, expected_vm_state)
    values.setdefault("updated_at", utcnow())
    result = await s.execute(stmt.values(**values).execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _expect(stmt: Any, column: Any, expected: Any) -> Any:
    if expected is _ANY:
        return stmt
    values = expected if isinstance(expected, tuple | list | set | frozenset) else (expected,)
    named = [v for v in values if v is not None]
    if None in values:
        return stmt.where(column.is_(None) | column.in_(named)) if named else stmt.where(column.is_(None))
    return stmt.where(column.in_(named))


def add_fault(s: AsyncSession, uuid: str, message: str, *, code: int = 500, details: str | None = None,
              host: str | None = None) -> None:
    """Record why the instance failed (the API's ``fault``); the newest fault is the one shown."""
    s.add(InstanceFault(instance_uuid=uuid, code=code, message=message[:FAULT_MESSAGE_MAX],
                        details=details, host=host))


def start_action(s: AsyncSession, ctx: RequestContext, uuids: Iterable[str], action: str) -> None:
    """The API accepted ``action`` on these instances (Nova's ``InstanceAction.action_start``)."""
    now = utcnow()
    for uuid in uuids:
        s.add(InstanceAction(action=action, instance_uuid=uuid, request_id=ctx.request_id, user_id=ctx.user_id,
                             project_id=ctx.project_id, start_time=now, updated_at=now))


def _action_of(ctx: RequestContext, uuid: str) -> Any:
    """The id of the request's action on the instance, as a scalar subquery (no round trip of its own)."""
    return (select(InstanceAction.id).where(InstanceAction.instance_uuid == uuid,
                                            InstanceAction.request_id == ctx.request_id)
            .order_by(InstanceAction.id.desc()).limit(1).scalar_subquery())


async def _touch_action(s: AsyncSession, ctx: RequestContext, uuid: str, **values: Any) -> None:
    await s.execute(update(InstanceAction).where(InstanceAction.instance_uuid == uuid,
                                                 InstanceAction.request_id == ctx.request_id)
                    .values(updated_at=utcnow(), **values).execution_options(synchronize_session=False))


async def start_event(s: AsyncSession, ctx: RequestContext, uuid: str, event: str, host: str | None = None) -> None:
    """A step of the request's action began (``compute_stop_instance`` ...). No action, no event.

    Two statements and no reads: events are written on every step of every
    request, so they stay off the round-trip budget of a boot.
    """
    now = utcnow()
    source = select(_action_of(ctx, uuid), literal(event), literal(now, UTCDateTime()), literal(host, String()))
    inserted = await s.execute(insert(InstanceActionEvent).from_select(
        ["action_id", "event", "start_time", "host"], source.where(_action_of(ctx, uuid).is_not(None))))
    if inserted.rowcount:  # type: ignore[attr-defined]
        await _touch_action(s, ctx, uuid)


async def finish_event(s: AsyncSession, ctx: RequestContext, uuid: str, event: str, *, error: str | None = None,
                       host: str | None = None) -> None:
    """The step ended: ``Success``, or ``Error`` with the reason (and the action's message becomes ``Error``).

    An event that was never started (the step failed before it could say so)
    is recorded whole.
    """
    now = utcnow()
    result = "Error" if error else "Success"
    done = await s.execute(update(InstanceActionEvent)
                           .where(InstanceActionEvent.action_id == _action_of(ctx, uuid),
                                  InstanceActionEvent.event == event, InstanceActionEvent.finish_time.is_(None))
                           .values(finish_time=now, result=result, details=error)
                           .execution_options(synchronize_session=False))
    if not done.rowcount:  # type: ignore[attr-defined]
        source = select(_action_of(ctx, uuid), literal(event), literal(now, UTCDateTime()),
                        literal(now, UTCDateTime()), literal(result, String()), literal(error, Text()),
                        literal(host, String()))
        inserted = await s.execute(insert(InstanceActionEvent).from_select(
            ["action_id", "event", "start_time", "finish_time", "result", "details", "host"],
            source.where(_action_of(ctx, uuid).is_not(None))))
        if not inserted.rowcount:  # type: ignore[attr-defined]
            return  # no action: nothing to record
    await _touch_action(s, ctx, uuid, **({"message": "Error"} if error else {}))


async def retire(s: AsyncSession, row: Instance) -> bool:
    """Delete an instance for good: the row soft-deleted, its claim on the host freed, its group left.

    The one way an instance ends, whether its agent destroyed the guest or the
    API deleted it locally (no host, or the host's agent is down). Guarded, so
    a second caller finds nothing to do and frees nothing twice; True when this
    call did it.
    """
    now = utcnow()
    done = await save_instance(s, row.uuid, vm_state=VmState.DELETED, task_state=None,
                               power_state=int(PowerState.NOSTATE), deleted_at=now, terminated_at=now)
    if done:
        await resources.release_instance(s, row)
        await s.execute(delete(ServerGroupMember).where(ServerGroupMember.instance_uuid == row.uuid))
    return done


async def get_instance(s: AsyncSession, ctx: RequestContext, uuid: str, *, for_update: bool = False) -> Instance:
    """A live instance the caller may see; Nova's 404 otherwise (another project's servers do not exist).

    Admins see every project's instances. The uuid is not validated further:
    anything that is not a known uuid is simply not found, as in Nova.
    """
    stmt = select(Instance).where(Instance.uuid == uuid, Instance.deleted_at.is_(None))
    if not ctx.is_admin:
        stmt = stmt.where(Instance.project_id == ctx.project_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = await s.scalar(stmt)
    if row is None:
        raise errors.NotFound(f"Instance {uuid} could not be found.")
    return row


async def compute_service_up(s: AsyncSession, host: str, down_time: float) -> bool:
    """Whether the compute agent of ``host`` heartbeats (and is not forced down), as Nova's servicegroup API."""
    row = await s.scalar(select(ServiceRecord).where(ServiceRecord.host == host,
                                                     ServiceRecord.binary == COMPUTE_BINARY))
    if row is None or row.forced_down:
        return False
    return (utcnow() - row.updated_at).total_seconds() <= down_time
