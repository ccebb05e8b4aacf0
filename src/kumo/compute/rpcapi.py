"""Typed stubs for the compute workers on the bus: conductor, scheduler and the per-host agents.

The compute API never calls a worker's Python code; it sends a message
(Nova's ``compute/rpcapi.py``, ``conductor/rpcapi.py``,
``scheduler/rpcapi.py``). Topics: ``conductor``, ``scheduler`` and
``compute.<host>``. Every message carries the caller's
:class:`RequestContext` as ``ctx`` and plain JSON arguments.

Version history (bump the minor version when adding an optional argument,
the major one when a receiver could not understand an old sender):

* 1.0 - build, the lifecycle actions, rebuild, same-host resize with
  confirm/revert, snapshot, console output, delete.
* 1.1 - ``get_console`` (a remote console token and URL from the guest's host).
* 1.2 - ``attach_interface`` (a call: the new VIF) and ``detach_interface`` (a cast), Nova's os-interface.

**The build request** (``request`` below) is one JSON dict, Nova's
``RequestSpec`` + ``filter_properties`` in one::

    {"flavor": {"vcpus", "memory_mb", "root_gb", "ephemeral_gb", "swap", "extra_specs": {}},
     "image": {"id", "name", "disk_format", "container_format", "min_disk", "min_ram",
               "properties": {str: str}},     # Glance's extra properties, kernel_id/ramdisk_id among them
     "availability_zone": str | None,
     "force_hosts": [str],                   # the admin's "zone:host"
     "scheduler_hints": {str: str | [str]},
     "group": str | None,                    # server group uuid (from the "group" hint)
     "networks": [...] | "auto" | "none",
     "project_id": str,
     "retry": {"num_attempts": int, "hosts": [str]}}   # hosts already tried

**States the API leaves before casting** (each agent method moves on from
exactly that task state, Nova's ``expected_task_state``):

=================  =====================  ==========================================
API sets           agent method            agent ends with
=================  =====================  ==========================================
building/scheduling build_and_run_instance active/None, power RUNNING, launched_at
task powering-off  stop_instance           stopped/None, SHUTDOWN
task powering-on   start_instance          active/None, RUNNING
task rebooting(*)  reboot_instance         active/None, RUNNING
task pausing       pause_instance          paused/None, PAUSED
task unpausing     unpause_instance        active/None, RUNNING
task suspending    suspend_instance        suspended/None, SUSPENDED
task resuming      resume_instance         active/None, RUNNING
task rebuilding    rebuild_instance        active/None (image_ref already the new one)
task resize_prep   (conductor) resize      resized/None, flavor = new, old in system_metadata
task resize_confirming confirm_resize       active or stopped/None
task resize_reverting  revert_resize        active or stopped/None, flavor = old
task image_snapshot_pending snapshot_instance  task None (vm unchanged), image uploaded
task deleting      terminate_instance      row deleted (vm deleted)
=================  =====================  ==========================================

A failure puts the instance back to its previous vm_state with task None
(or ERROR for build/rebuild/resize failures, with a fault), and the event of
the instance action records the error.
"""

from __future__ import annotations

from typing import Any

from kumo.compute.context import RequestContext
from kumo.core.bus import Bus

VERSION = "1.2"
CONDUCTOR_TOPIC = "conductor"
SCHEDULER_TOPIC = "scheduler"


def compute_topic(host: str) -> str:
    return f"compute.{host}"


class ConductorAPI:
    """Casts to the conductor: builds (and reschedules) and resizes, which need the scheduler."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def build_instances(self, ctx: RequestContext, instance_uuids: list[str], request: dict[str, Any]) -> None:
        """Schedule and start these instances (one request, ``min_count..max_count`` of them)."""
        await self.bus.cast(CONDUCTOR_TOPIC, "build_instances",
                            {"ctx": ctx.to_dict(), "instance_uuids": instance_uuids, "request": request},
                            version=VERSION)

    async def resize_instance(self, ctx: RequestContext, instance_uuid: str, flavor: dict[str, Any],
                              clean_shutdown: bool = True) -> None:
        """Claim ``flavor`` on the instance's host and have its agent apply it (task resize_prep)."""
        await self.bus.cast(CONDUCTOR_TOPIC, "resize_instance",
                            {"ctx": ctx.to_dict(), "instance_uuid": instance_uuid, "flavor": flavor,
                             "clean_shutdown": clean_shutdown}, version=VERSION)


class SchedulerAPI:
    """Calls to the scheduler."""

    def __init__(self, bus: Bus, timeout: float | None = None) -> None:
        self.bus = bus
        self.timeout = timeout

    async def select_destinations(self, ctx: RequestContext, instance_uuids: list[str],
                                  request: dict[str, Any]) -> dict[str, Any]:
        """``{"destinations": [{"instance_uuid", "host", "nodename"}]}`` (claimed, assigned) or ``{"error": why}``.

        No valid host is an answer, not an exception: the conductor records it as the instances' fault.
        """
        result = await self.bus.call(SCHEDULER_TOPIC, "select_destinations",
                                     {"ctx": ctx.to_dict(), "instance_uuids": instance_uuids, "request": request},
                                     timeout=self.timeout, version=VERSION)
        return dict(result)


class ComputeAgentAPI:
    """Casts (and the odd call) to the compute agent of one host."""

    def __init__(self, bus: Bus, timeout: float | None = None) -> None:
        self.bus = bus
        self.timeout = timeout

    async def _cast(self, host: str, method: str, ctx: RequestContext, **args: Any) -> None:
        await self.bus.cast(compute_topic(host), method, {"ctx": ctx.to_dict(), **args}, version=VERSION)

    async def build_and_run_instance(self, ctx: RequestContext, host: str, instance_uuid: str,
                                     request: dict[str, Any]) -> None:
        await self._cast(host, "build_and_run_instance", ctx, instance_uuid=instance_uuid, request=request)

    async def terminate_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self._cast(host, "terminate_instance", ctx, instance_uuid=instance_uuid)

    async def stop_instance(self, ctx: RequestContext, host: str, instance_uuid: str,
                            clean_shutdown: bool = True) -> None:
        await self._cast(host, "stop_instance", ctx, instance_uuid=instance_uuid, clean_shutdown=clean_shutdown)

    async def start_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self._cast(host, "start_instance", ctx, instance_uuid=instance_uuid)

    async def reboot_instance(self, ctx: RequestContext, host: str, instance_uuid: str, reboot_type: str) -> None:
        """``reboot_type`` is ``SOFT`` or ``HARD``."""
        await self._cast(host, "reboot_instance", ctx, instance_uuid=instance_uuid, reboot_type=reboot_type)

    async def pause_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self._cast(host, "pause_instance", ctx, instance_uuid=instance_uuid)

    async def unpause_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self._cast(host, "unpause_instance", ctx, instance_uuid=instance_uuid)

    async def suspend_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self._cast(host, "suspend_instance", ctx, instance_uuid=instance_uuid)

    async def resume_instance(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self._cast(host, "resume_instance", ctx, instance_uuid=instance_uuid)

    async def rebuild_instance(self, ctx: RequestContext, host: str, instance_uuid: str,
                               image: dict[str, Any]) -> None:
        """Re-create the guest from ``image`` (the build request's ``image`` dict)."""
        await self._cast(host, "rebuild_instance", ctx, instance_uuid=instance_uuid, image=image)

    async def resize_instance(self, ctx: RequestContext, host: str, instance_uuid: str, flavor: dict[str, Any],
                              clean_shutdown: bool = True) -> None:
        await self._cast(host, "resize_instance", ctx, instance_uuid=instance_uuid, flavor=flavor,
                         clean_shutdown=clean_shutdown)

    async def confirm_resize(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self._cast(host, "confirm_resize", ctx, instance_uuid=instance_uuid)

    async def revert_resize(self, ctx: RequestContext, host: str, instance_uuid: str) -> None:
        await self._cast(host, "revert_resize", ctx, instance_uuid=instance_uuid)

    async def snapshot_instance(self, ctx: RequestContext, host: str, instance_uuid: str, image_id: str) -> None:
        """Upload the root disk into the (queued) image ``image_id`` that the API created."""
        await self._cast(host, "snapshot_instance", ctx, instance_uuid=instance_uuid, image_id=image_id)

    async def get_console_output(self, ctx: RequestContext, host: str, instance_uuid: str,
                                 tail_length: int | None) -> str:
        return str(await self.bus.call(compute_topic(host), "get_console_output",
                                       {"ctx": ctx.to_dict(), "instance_uuid": instance_uuid,
                                        "tail_length": tail_length}, timeout=self.timeout, version=VERSION))

    async def get_console(self, ctx: RequestContext, host: str, instance_uuid: str, console_type: str) -> str:
        """The URL of a new remote console (``novnc`` or ``serial``) of the instance, token included."""
        result = await self.bus.call(compute_topic(host), "get_console",
                                     {"ctx": ctx.to_dict(), "instance_uuid": instance_uuid,
                                      "console_type": console_type}, timeout=self.timeout, version=VERSION)
        return str(dict(result)["url"])

    async def attach_interface(self, ctx: RequestContext, host: str, instance_uuid: str,
                               request: dict[str, Any]) -> dict[str, Any]:
        """Attach one interface (``{"network_id", "port_id"?, "fixed_ip"?, "tag"?}``, already validated); its VIF.

        A call, as Nova's: the API answers with the attachment, and the
        agent's refusals (fixed IP in use, attach failed) are the caller's error.
        """
        return dict(await self.bus.call(compute_topic(host), "attach_interface",
                                        {"ctx": ctx.to_dict(), "instance_uuid": instance_uuid, "request": request},
                                        timeout=self.timeout, version=VERSION))

    async def detach_interface(self, ctx: RequestContext, host: str, instance_uuid: str, port_id: str) -> None:
        """Unplug the port's NIC and give the port back (a cast: Nova's 202)."""
        await self._cast(host, "detach_interface", ctx, instance_uuid=instance_uuid, port_id=port_id)
