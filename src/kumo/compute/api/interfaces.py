"""``/v2.1/servers/{id}/os-interface``: Nova's ``InterfaceAttachmentController``.

What ``openstack server add/remove port|network`` and openstacksdk's
``create/delete/get_server_interface`` drive:

* ``GET``  the server's ports (``interfaceAttachments``), one port
  (404 "Instance ... does not have a port with id ..." when it is another
  device's); ``tag`` appears from 2.70;
* ``POST`` ``{"interfaceAttachment": {"port_id"} | {"net_id", "fixed_ips": [{"ip_address"}]}}``
  (``tag`` accepted from 2.49; an empty body attaches to the project's only
  network) answers 200 with the attachment, as Nova's (it waits for the
  agent); ``DELETE`` answers 202 and the agent detaches meanwhile.

Policies ``os_compute_api:os-attach-interfaces:{list,show,create,delete}``
are checked on the server's project after it was found, as in Nova.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from pydantic import BeforeValidator, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.compute.api.common import MAX_BODY, at_least, authorize, deps, request_context
from kumo.compute.api.schemas import Strict, reject_newer_fields
from kumo.compute.api.server_schemas import tag_error, uuid_string
from kumo.compute.api.validation import invalid, parse, show_value
from kumo.compute.context import RequestContext
from kumo.compute.interfaces import InterfaceService, ServerNics
from kumo.core import errors
from kumo.core.web import auth_context, empty_response, json_response, read_json

POLICY = "os_compute_api:os-attach-interfaces:%s"
TAGGED_ATTACH = "2.49"
SHOWS_TAG = "2.70"


def _ip_address(value: Any) -> str:
    """``parameter_types.ip_address``: an IPv4 or IPv6 address."""
    if not isinstance(value, str):
        raise invalid(f"{show_value(value)} is not of type 'string'")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise invalid(f"'{value}' is not valid under any of the given schemas") from None
    return value


def _fixed_ips(value: Any) -> list[Any]:
    """``{'type': 'array', 'minItems': 1, 'maxItems': 1}``; the items are checked by :class:`FixedIp`."""
    if not isinstance(value, list):
        raise invalid(f"{show_value(value)} is not of type 'array'")
    if not value:
        raise invalid("[] is too short")
    if len(value) > 1:
        raise invalid(f"{value!r} is too long")
    return value


def _tag(value: Any) -> str:
    reason = tag_error(value)
    if reason:
        raise invalid(reason)
    return str(value)


class FixedIp(Strict):
    ip_address: Annotated[str, BeforeValidator(_ip_address)]


class Attachment(Strict):
    net_id: Annotated[str, BeforeValidator(uuid_string)] = ""
    port_id: Annotated[str, BeforeValidator(uuid_string)] = ""
    fixed_ips: Annotated[list[FixedIp], BeforeValidator(_fixed_ips)] = Field(default_factory=list)
    tag: Annotated[str, BeforeValidator(_tag)] = ""  # 2.49+


class CreateBody(Strict):
    interfaceAttachment: Attachment | None = None  # Nova's key


async def _server(request: Request, action: str) -> tuple[RequestContext, InterfaceService, ServerNics]:
    """The server (404 unless visible), then the policy on its project: Nova's order."""
    ctx = request_context(request, await auth_context(request))
    service = InterfaceService(deps(request))
    server = await service.get(ctx, request.path_params["server_id"])
    await authorize(request, POLICY % action, {"project_id": server.project_id})
    return ctx, service, server


async def list_interfaces(request: Request) -> Response:
    ctx, service, server = await _server(request, "list")
    found = await service.list(ctx, server, at_least(request, SHOWS_TAG))
    return json_response({"interfaceAttachments": found})


async def show_interface(request: Request) -> Response:
    ctx, service, server = await _server(request, "show")
    found = await service.show(ctx, server, request.path_params["port_id"], at_least(request, SHOWS_TAG))
    return json_response({"interfaceAttachment": found})


async def create_interface(request: Request) -> Response:
    raw = await read_json(request, MAX_BODY, allow_empty=True)  # Nova validates the body before the lookup
    attachment = parse(CreateBody, {} if raw is None else raw).interfaceAttachment or Attachment()
    reject_newer_fields(attachment, {"tag": at_least(request, TAGGED_ATTACH)})
    ctx, service, server = await _server(request, "create")
    fixed_ip = attachment.fixed_ips[0].ip_address if attachment.fixed_ips else None
    if attachment.net_id and attachment.port_id:
        raise errors.BadRequest("Must not input both network_id and port_id")
    if fixed_ip and not attachment.net_id:
        raise errors.BadRequest("Must input network_id when request IP address")
    port_id = await service.attach(ctx, server, attachment.net_id or None, attachment.port_id or None, fixed_ip,
                                   attachment.tag or None)
    server = await service.get(ctx, server.uuid)  # the tag lives in the network_info the agent just wrote
    found = await service.show(ctx, server, port_id, at_least(request, SHOWS_TAG))
    return json_response({"interfaceAttachment": found})


async def delete_interface(request: Request) -> Response:
    ctx, service, server = await _server(request, "delete")
    await service.detach(ctx, server, request.path_params["port_id"])
    return empty_response(202)


routes = [
    Route("/v2.1/servers/{server_id}/os-interface", list_interfaces, methods=["GET"]),
    Route("/v2.1/servers/{server_id}/os-interface", create_interface, methods=["POST"]),
    Route("/v2.1/servers/{server_id}/os-interface/{port_id}", show_interface, methods=["GET"]),
    Route("/v2.1/servers/{server_id}/os-interface/{port_id}", delete_interface, methods=["DELETE"]),
]
