"""The compute API's half of ``os-interface`` (Nova's ``compute/api.py`` attach/detach_interface).

Reads go to the network service with the caller's token (the interfaces of
a server are the ports whose ``device_id`` it is), as Nova's controller
does; only the ``tag`` (2.70) comes from compute's ``network_info``.

Changes check what Nova's decorators check — the lock, then the state
(ACTIVE, PAUSED or STOPPED with no task: ``states.ACTIONS``) — then the
request against the network service with the caller's token
(:meth:`NetworkAPI.validate_attach`), record the instance action and send
the work to the agent of the server's host (:mod:`kumo.compute.manager_interfaces`).
No task state is set (Nova sets none either); the agent checks again under
the instance's lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kumo.compute import instances as inst_db
from kumo.compute.context import RequestContext
from kumo.compute.deps import ComputeDeps
from kumo.compute.network import NetworkAPI
from kumo.compute.server_actions import not_ready
from kumo.compute.states import check_action, check_not_locked
from kumo.core import errors

ATTACH_INTERFACE = "attach_interface"  # Nova's instance_actions.ATTACH_INTERFACE
DETACH_INTERFACE = "detach_interface"


@dataclass(frozen=True)
class ServerNics:
    """What the interface checks read of an instance."""

    uuid: str
    project_id: str
    vm_state: str
    task_state: str | None
    host: str | None
    locked: bool
    launched: bool
    network_info: list[dict[str, Any]]

    def tag(self, port_id: str) -> str | None:
        return next((v.get("tag") for v in self.network_info if v["id"] == port_id), None)


def attachment_view(port: dict[str, Any], tag: str | None, show_tag: bool) -> dict[str, Any]:
    """Nova's ``_translate_interface_attachment_view``: the port, in os-interface's names."""
    view = {"net_id": port["network_id"], "port_id": port["id"], "mac_addr": port["mac_address"],
            "port_state": port.get("status"),
            "fixed_ips": [{"subnet_id": ip["subnet_id"], "ip_address": ip["ip_address"]}
                          for ip in port.get("fixed_ips") or ()]}
    if show_tag:
        view["tag"] = tag
    return view


class InterfaceService:
    """One per request; ``deps.network`` must be set (a cloud without the network service has no interfaces)."""

    def __init__(self, deps: ComputeDeps) -> None:
        self.deps = deps

    @property
    def network(self) -> NetworkAPI:
        if self.deps.network is None:
            raise errors.NotImplementedYet("The requested functionality is not supported.")
        return self.deps.network

    async def get(self, ctx: RequestContext, uuid: str) -> ServerNics:
        """The server if the caller may see it (Nova's 404 otherwise)."""
        async with self.deps.db.session() as s:
            row = await inst_db.get_instance(s, ctx, uuid)
            return ServerNics(uuid=row.uuid, project_id=row.project_id, vm_state=row.vm_state,
                              task_state=row.task_state, host=row.host, locked=bool(row.locked),
                              launched=row.launched_at is not None, network_info=list(row.network_info or []))

    async def list(self, ctx: RequestContext, server: ServerNics, show_tag: bool) -> list[dict[str, Any]]:
        ports = await self.network.instance_ports(ctx, server.uuid)
        return [attachment_view(p, server.tag(p["id"]), show_tag) for p in ports]

    async def show(self, ctx: RequestContext, server: ServerNics, port_id: str, show_tag: bool) -> dict[str, Any]:
        port = await self.network.show_port(ctx, port_id)
        if port.get("device_id") != server.uuid:
            raise errors.NotFound(f"Instance {server.uuid} does not have a port with id {port_id}")
        return attachment_view(port, server.tag(port_id), show_tag)

    def _check(self, ctx: RequestContext, server: ServerNics, action: str) -> str:
        """Nova's ``@check_instance_lock`` and ``@check_instance_state``; the host the agent runs on."""
        check_not_locked(server.uuid, server.locked, ctx.is_admin)
        check_action(action, server.vm_state, server.task_state, instance_uuid=server.uuid,
                     launched=server.launched)
        if not server.host:
            raise not_ready(server.uuid)
        return server.host

    async def _host_up(self, server: ServerNics, host: str) -> None:
        """A call to an agent that is down would only time out: Nova's 409 "not ready" at once instead."""
        async with self.deps.db.session() as s:
            if not await inst_db.compute_service_up(s, host, self.deps.service_down_time):
                raise not_ready(server.uuid)

    async def attach(self, ctx: RequestContext, server: ServerNics, network_id: str | None, port_id: str | None,
                     fixed_ip: str | None, tag: str | None) -> str:
        """Attach a port (given, or made on ``network_id`` / the project's only network); the port's id."""
        host = self._check(ctx, server, "attach_interface")
        request = await self.network.validate_attach(ctx, server.uuid, server.project_id, network_id, port_id,
                                                     fixed_ip, tag)
        await self._host_up(server, host)
        async with self.deps.db.session() as s:
            inst_db.start_action(s, ctx, [server.uuid], ATTACH_INTERFACE)
        vif = await self.deps.agents.attach_interface(ctx, host, server.uuid, request)
        return str(vif["id"])

    async def detach(self, ctx: RequestContext, server: ServerNics, port_id: str) -> None:
        """Cast the detach; a port the server does not have is Nova's PortNotFound (404) here, not a lost cast."""
        host = self._check(ctx, server, "detach_interface")
        if not any(v["id"] == port_id for v in server.network_info):
            raise errors.NotFound(f"Port {port_id} is not attached")
        await self._host_up(server, host)
        async with self.deps.db.session() as s:
            inst_db.start_action(s, ctx, [server.uuid], DETACH_INTERFACE)
        await self.deps.agents.detach_interface(ctx, host, server.uuid, port_id)
