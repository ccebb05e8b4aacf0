"""The agent's half of ``os-interface``: one port attached to or detached from a guest (Nova's compute manager).

Split from :mod:`kumo.compute.manager` (which mixes this in). Both run under
the instance's lock, so they never overlap a power action or each other:

* attach (a bus *call*: the API answers with the new interface) makes or
  binds the port with the service token (:meth:`NetworkAPI.allocate` for one
  request), has the host's network agent make its tap, asks the driver to
  plug it and appends the VIF to ``network_info``. A failure after the port
  exists gives it back (deleted if made here, unbound if the caller brought
  it) and is Nova's 500 InterfaceAttachFailed; the network service's own
  refusals keep Nova's codes (fixed IP in use 409, no address left 400,
  port quota 403).
* detach (a *cast*, 202 in the API) asks the driver to unplug, gives the
  port back, then drops the VIF from ``network_info``. A guest that keeps
  the device or a network service that does not answer leaves the VIF in
  place with a fault, so the detach can be repeated (both steps are
  idempotent).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from kumo.compute.context import RequestContext
from kumo.compute.instances import add_fault, finish_event, start_event
from kumo.compute.models import Instance
from kumo.compute.states import check_action
from kumo.compute.virt.base import NicSpec, VirtError
from kumo.core import errors
from kumo.core.bus import BusError

if TYPE_CHECKING:
    from kumo.compute.manager import ComputeManager

log = logging.getLogger("kumo.compute.agent")
ATTACH_EVENT = "compute_attach_interface"
DETACH_EVENT = "compute_detach_interface"


def attach_failed(uuid: str) -> errors.KumoError:
    """Nova's InterfaceAttachFailed: a 500 whose message names the instance, not the cause (that is logged)."""
    return errors.KumoError(f"Failed to attach network adapter device to {uuid}")


def network_refusal(exc: errors.KumoError, request: dict[str, Any], uuid: str) -> errors.KumoError | None:
    """The network service's refusals of a port, as Nova's ``_create_port_minimal`` maps Neutron's."""
    text = exc.message
    if "already allocated" in text or "already in use" in text:
        return errors.Conflict(f"Fixed IP address {request.get('fixed_ip')} is already in use on instance {uuid}.")
    if "No more IP addresses" in text:
        return errors.BadRequest(f"No fixed IP addresses available for network: {request.get('network_id')}")
    if isinstance(exc, errors.OverQuota) or "Quota exceeded" in text:
        return errors.Forbidden("Maximum number of ports exceeded")
    return None


class InterfaceOperations:
    """Mixed into ComputeManager; ``self`` is the manager."""

    async def attach_interface(self: ComputeManager, ctx: dict[str, Any], instance_uuid: str,
                               request: dict[str, Any]) -> dict[str, Any]:
        """Attach one interface (``request``: a network request, :data:`kumo.compute.network.NetworkRequest`).

        Returns the new VIF. The API checked the state; it is checked again
        under the lock because nothing (no task state) held it meanwhile.
        """
        context = RequestContext.from_dict(ctx)
        async with self.locked(instance_uuid):
            row = await self._row(instance_uuid)
            if row is None or row.host != self.host:
                raise errors.NotFound(f"Instance {instance_uuid} could not be found.")
            check_action("attach_interface", row.vm_state, row.task_state, instance_uuid=instance_uuid,
                         launched=row.launched_at is not None)
            if self.network is None:
                raise errors.BadRequest(f"Failed to attach network adapter device to {instance_uuid}: "
                                        "the network service is not available")
            async with self.db.session() as s:
                await start_event(s, context, instance_uuid, ATTACH_EVENT, self.host)
            try:
                vif = await self._attach_port(row, request)
            except errors.KumoError as exc:
                refused = network_refusal(exc, request, instance_uuid)
                error = refused or (exc if exc.status < 500 else attach_failed(instance_uuid))
                await self._interface_failed(context, instance_uuid, ATTACH_EVENT, exc.message, error.status)
                raise error from exc
            except (VirtError, OSError, BusError) as exc:
                await self._interface_failed(context, instance_uuid, ATTACH_EVENT, str(exc), 500)
                raise attach_failed(instance_uuid) from exc
            async with self.db.session() as s:
                await finish_event(s, context, instance_uuid, ATTACH_EVENT, host=self.host)
            return vif

    async def _attach_port(self: ComputeManager, row: Instance, request: dict[str, Any]) -> dict[str, Any]:
        assert self.network is not None
        sysmeta = row.system_metadata or {}
        [vif] = await self.network.allocate(row, self.host, [request], list(sysmeta.get("security_groups") or []))
        try:
            taps: dict[str, dict[str, Any]] = {}
            if self.plug_vifs is not None:
                taps = await self.plug_vifs(self.host, [vif["id"]])
            tap = taps.get(vif["id"], {})
            nic = NicSpec(port_id=vif["id"], mac_address=vif["address"], tap_name=tap.get("tap") or vif["devname"],
                          mtu=tap.get("mtu") or vif["network"].get("mtu"))
            await self.driver.attach_interface(row.uuid, nic)
        except BaseException as exc:
            log.warning("attaching port %s to %s failed (%s); giving the port back", vif["id"], row.uuid, exc)
            try:
                await self.network.release_port(vif["id"], preserve=bool(vif.get("preserve_on_delete")))
            except (errors.KumoError, OSError) as release_exc:
                log.warning("could not give port %s back: %s", vif["id"], release_exc)
            raise
        async with self.db.session() as s:
            current = await s.get(Instance, row.uuid)
            if current is not None:
                current.network_info = [*(current.network_info or []), vif]
        return vif

    async def detach_interface(self: ComputeManager, ctx: dict[str, Any], instance_uuid: str, port_id: str) -> None:
        """Detach the interface of ``port_id``; failures are recorded (fault, event), the VIF kept."""
        context = RequestContext.from_dict(ctx)
        async with self.locked(instance_uuid):
            row = await self._row(instance_uuid)
            if row is None or row.host != self.host:
                log.info("instance %s is not here; detach of %s skipped", instance_uuid, port_id)
                return
            async with self.db.session() as s:
                await start_event(s, context, instance_uuid, DETACH_EVENT, self.host)
            vif = next((v for v in row.network_info or () if v["id"] == port_id), None)
            if vif is None:
                async with self.db.session() as s:
                    await finish_event(s, context, instance_uuid, DETACH_EVENT, host=self.host,
                                       error=f"Port {port_id} is not attached")
                return
            try:
                await self.driver.detach_interface(instance_uuid, port_id)
            except VirtError as exc:
                await self._interface_failed(context, instance_uuid, DETACH_EVENT,
                                             f"Failed to detach network adapter device from {instance_uuid}: {exc}",
                                             500)
                return
            if self.network is not None:
                try:
                    await self.network.release_port(port_id, preserve=bool(vif.get("preserve_on_delete")))
                except (errors.KumoError, OSError) as exc:
                    await self._interface_failed(context, instance_uuid, DETACH_EVENT,
                                                 f"Could not release port {port_id}: {exc}", 500)
                    return
            async with self.db.session() as s:
                current = await s.get(Instance, instance_uuid)
                if current is not None:
                    current.network_info = [v for v in current.network_info or () if v["id"] != port_id]
                await finish_event(s, context, instance_uuid, DETACH_EVENT, host=self.host)

    async def _interface_failed(self: ComputeManager, context: RequestContext, uuid: str, event: str, reason: str,
                                code: int) -> None:
        """Nova's ``@wrap_instance_fault`` + the event in error; the instance's state is left as it was."""
        log.warning("instance %s: %s failed: %s", uuid, event, reason)
        async with self.db.session() as s:
            if code >= 500:
                add_fault(s, uuid, reason, code=code, host=self.host)
            await finish_event(s, context, uuid, event, error=reason, host=self.host)
