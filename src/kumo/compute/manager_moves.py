"""The agent's operations that replace a guest's disks or size: rebuild, resize (+confirm/revert), snapshot.

Split from :mod:`kumo.compute.manager` (which mixes this in) because each of
these has more than one step and its own way back on failure:

* rebuild destroys and re-spawns from the new image; a failure leaves ERROR
  with a fault (the old guest is gone, as in Nova);
* resize happens on the instance's host (Kumo's ``allow_resize_to_same_host``
  without the choice of another host); the conductor already claimed the new
  size, so until confirm or revert the host holds both, as Nova's two
  allocations; a failure releases the new size and keeps the old;
* snapshot writes the root disk to a temporary file and uploads it into the
  queued image the API created, with the caller's token; a failure deletes
  that image (Nova does too) and leaves the instance as it was.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kumo.compute import resources
from kumo.compute.context import RequestContext
from kumo.compute.image_cache import ImageUnacceptable
from kumo.compute.instances import add_fault, finish_event, save_instance, start_event
from kumo.compute.states import PowerState, TaskState, VmState
from kumo.compute.virt.base import VirtError
from kumo.core.errors import KumoError

if TYPE_CHECKING:
    from kumo.compute.manager import ComputeManager

log = logging.getLogger("kumo.compute.agent")


class MoveOperations:
    """Mixed into ComputeManager; ``self`` is the manager."""

    async def rebuild_instance(self: ComputeManager, ctx: dict[str, Any], instance_uuid: str,
                               image: dict[str, Any]) -> None:
        context = RequestContext.from_dict(ctx)
        event = "compute_rebuild_instance"
        async with self.locked(instance_uuid):
            row = await self._row(instance_uuid)
            if row is None or row.task_state != TaskState.REBUILDING:
                return
            was_stopped = row.vm_state == VmState.STOPPED
            async with self.db.session() as s:
                await start_event(s, context, instance_uuid, event, self.host)
                await save_instance(s, instance_uuid, expected_task_state=TaskState.REBUILDING,
                                    task_state=TaskState.REBUILD_SPAWNING)
            try:
                spec, boot = await self.prepare_guest(context, row, image)
                await self.driver.destroy(instance_uuid)
                await self.driver.spawn(spec, boot)
                if was_stopped:  # Nova keeps a stopped instance stopped across a rebuild
                    await self.driver.power_off(instance_uuid, 0)
            except (VirtError, OSError, KumoError, ImageUnacceptable) as exc:
                await self._fail(context, instance_uuid, event, getattr(exc, "message", None) or str(exc),
                                 vm_state=VmState.ERROR)
                return
            power = await self._power_state(instance_uuid)
            async with self.db.session() as s:
                await save_instance(s, instance_uuid, expected_task_state=TaskState.REBUILD_SPAWNING,
                                    task_state=None, power_state=power,
                                    vm_state=VmState.STOPPED if was_stopped else VmState.ACTIVE,
                                    launched_at=row.launched_at or None)
                await finish_event(s, context, instance_uuid, event, host=self.host)

    async def resize_instance(self: ComputeManager, ctx: dict[str, Any], instance_uuid: str, flavor: dict[str, Any],
                              clean_shutdown: bool = True) -> None:
        from kumo.compute.manager import instance_spec

        context = RequestContext.from_dict(ctx)
        event = "compute_resize_instance"
        async with self.locked(instance_uuid):
            row = await self._row(instance_uuid)
            if row is None or row.task_state != TaskState.RESIZE_MIGRATING:
                return
            async with self.db.session() as s:
                await start_event(s, context, instance_uuid, event, self.host)
            try:
                await self.driver.resize(instance_uuid, instance_spec(row, flavor=flavor))
            except (VirtError, OSError) as exc:
                async with self.db.session() as s:
                    sysmeta = dict(row.system_metadata or {})
                    if sysmeta.pop("new_flavor", None) is not None:
                        v, r, d = resources.flavor_usage(flavor)
                        await resources.adjust(s, self.host, -v, -r, -d)
                    await save_instance(s, instance_uuid, expected_task_state=TaskState.RESIZE_MIGRATING,
                                        task_state=None, system_metadata=sysmeta)
                    add_fault(s, instance_uuid, str(exc), code=500, host=self.host)
                    await finish_event(s, context, instance_uuid, event, error=str(exc), host=self.host)
                return
            async with self.db.session() as s:
                sysmeta = dict(row.system_metadata or {})
                sysmeta.pop("new_flavor", None)
                sysmeta["old_flavor"] = row.flavor
                sysmeta["old_vm_state"] = row.vm_state
                await save_instance(s, instance_uuid, expected_task_state=TaskState.RESIZE_MIGRATING,
                                    task_state=None, vm_state=VmState.RESIZED, flavor=flavor,
                                    system_metadata=sysmeta, power_state=await self._power_state(instance_uuid))
                await finish_event(s, context, instance_uuid, event, host=self.host)

    async def confirm_resize(self: ComputeManager, ctx: dict[str, Any], instance_uuid: str) -> None:
        await self._finish_resize(ctx, instance_uuid, revert=False)

    async def revert_resize(self: ComputeManager, ctx: dict[str, Any], instance_uuid: str) -> None:
        await self._finish_resize(ctx, instance_uuid, revert=True)

    async def _finish_resize(self: ComputeManager, ctx: dict[str, Any], instance_uuid: str, *, revert: bool) -> None:
        """Confirm keeps the new size and frees the old; revert restores the old and frees the new."""
        from kumo.compute.manager import instance_spec

        context = RequestContext.from_dict(ctx)
        event = "compute_revert_resize" if revert else "compute_confirm_resize"
        expected = TaskState.RESIZE_REVERTING if revert else TaskState.RESIZE_CONFIRMING
        async with self.locked(instance_uuid):
            row = await self._row(instance_uuid)
            if row is None or row.task_state != expected:
                return
            sysmeta = dict(row.system_metadata or {})
            old = sysmeta.pop("old_flavor", None) or row.flavor
            sysmeta.pop("old_vm_state", None)
            async with self.db.session() as s:
                await start_event(s, context, instance_uuid, event, self.host)
            try:
                if revert:
                    await self.driver.revert_resize(instance_uuid, instance_spec(row, flavor=old))
                else:
                    await self.driver.confirm_resize(instance_uuid)
            except (VirtError, OSError) as exc:
                await self._fail(context, instance_uuid, event, str(exc), expected=expected)
                return
            freed = row.flavor if revert else old
            power = await self._power_state(instance_uuid)
            vm_state = VmState.STOPPED if power == int(PowerState.SHUTDOWN) else VmState.ACTIVE
            async with self.db.session() as s:
                values: dict[str, Any] = {"task_state": None, "vm_state": vm_state, "system_metadata": sysmeta,
                                          "power_state": power}
                if revert:
                    values["flavor"] = old
                if await save_instance(s, instance_uuid, expected_task_state=expected, **values):
                    v, r, d = resources.flavor_usage(freed or {})
                    await resources.adjust(s, self.host, -v, -r, -d)
                await finish_event(s, context, instance_uuid, event, host=self.host)

    async def snapshot_instance(self: ComputeManager, ctx: dict[str, Any], instance_uuid: str, image_id: str) -> None:
        context = RequestContext.from_dict(ctx)
        event = "compute_snapshot_instance"
        async with self.locked(instance_uuid):
            row = await self._row(instance_uuid)
            if row is None or row.task_state not in (TaskState.IMAGE_SNAPSHOT, TaskState.IMAGE_SNAPSHOT_PENDING):
                return
            async with self.db.session() as s:
                await start_event(s, context, instance_uuid, event, self.host)
                await save_instance(s, instance_uuid, expected_task_state=row.task_state,
                                    task_state=TaskState.IMAGE_PENDING_UPLOAD)
            try:
                if self.images is None:
                    raise VirtError("this compute agent has no image service client")
                with tempfile.TemporaryDirectory(prefix="kumo-snapshot-") as tmp:
                    target = Path(tmp) / f"{image_id}.img"
                    await self.driver.snapshot(instance_uuid, target)
                    async with self.db.session() as s:
                        await save_instance(s, instance_uuid, expected_task_state=TaskState.IMAGE_PENDING_UPLOAD,
                                            task_state=TaskState.IMAGE_UPLOADING)
                    await self.images.upload_file(context.auth_token, image_id, target)
            except (VirtError, OSError, KumoError) as exc:
                reason = getattr(exc, "message", None) or str(exc)
                log.warning("snapshot of %s into image %s failed: %s", instance_uuid, image_id, reason)
                if self.images is not None:
                    try:
                        await self.images.delete_image(context.auth_token, image_id)
                    except KumoError:
                        log.warning("could not delete the failed snapshot image %s", image_id)
                async with self.db.session() as s:
                    await save_instance(s, instance_uuid, task_state=None,
                                        expected_task_state=(TaskState.IMAGE_PENDING_UPLOAD,
                                                             TaskState.IMAGE_UPLOADING))
                    await finish_event(s, context, instance_uuid, event, error=reason, host=self.host)
                return
            async with self.db.session() as s:
                await save_instance(s, instance_uuid, expected_task_state=TaskState.IMAGE_UPLOADING, task_state=None)
                await finish_event(s, context, instance_uuid, event, host=self.host)

