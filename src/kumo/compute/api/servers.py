"""``/v2.1/servers``: create, list (brief and detail), show, update, delete, and the ``rebuild`` action.

Nova's ``ServersController``. Create answers 202 with a ``Location`` and the
generated ``adminPass``; every route first finds the server (404 for a
server of another project) and then checks policy against its project,
so a reader may look but not change. Microversion differences live in
:mod:`server_views` (the JSON) and :mod:`server_schemas` (bodies and
query parameters).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.compute.api import server_schemas as qs
from kumo.compute.api.common import (
    MAX_LIMIT,
    allowed,
    at_least,
    authorize,
    check_query,
    collection_links,
    deps,
    page_limit,
    request_context,
)
from kumo.compute.api.schemas import reject_newer_fields
from kumo.compute.api.server_schemas import (
    RebuildBody,
    ServerCreateBody,
    ServerUpdateBody,
    check_hostname,
    check_networks,
)
from kumo.compute.api.server_views import Parts, Visibility, server_brief, server_created, server_detail
from kumo.compute.api.validation import parse, parse_body
from kumo.compute.server_query import ServerQuery, ServerRecord, is_deleted_state
from kumo.compute.servers import RebuildSpec, ServerService, ServerSpec, generate_password
from kumo.compute.states import states_from_status
from kumo.core import errors
from kumo.core.auth import AuthContext
from kumo.core.web import auth_context, empty_response, json_response

POLICY = "os_compute_api:servers:%s"
EXTENDED = "os_compute_api:os-extended-server-attributes"


def service(request: Request) -> ServerService:
    return ServerService(deps(request))


def visibility(request: Request, ctx: AuthContext, project_id: str | None) -> Visibility:
    """Nova's non-fatal policy checks of the view: extra specs (2.47), extended attributes, host status (2.16)."""
    target = {"project_id": project_id}
    host_status = None
    if at_least(request, "2.16"):
        if allowed(request, ctx, POLICY % "show:host_status", target):
            host_status = "all"
        elif allowed(request, ctx, POLICY % "show:host_status:unknown-only", target):
            host_status = "unknown-only"
    return Visibility(
        extra_specs=at_least(request, "2.47") and allowed(request, ctx, POLICY % "show:flavor-extra-specs", target),
        extended=allowed(request, ctx, EXTENDED, target), host_status=host_status)


def _detail(request: Request, ctx: AuthContext, rec: ServerRecord, parts: Parts | None = None) -> dict[str, Any]:
    parts = parts or Parts(server_groups=at_least(request, "2.71"))
    return server_detail(request, rec, visibility(request, ctx, rec.project_id), is_admin=ctx.is_admin, parts=parts)


def _short_parts(request: Request, keypair: bool) -> Parts:
    """PUT and rebuild below 2.75 show fewer fields (Nova's ``show_all_attributes``)."""
    if at_least(request, "2.75"):
        return Parts(server_groups=at_least(request, "2.71"), user_data=False)
    return Parts(full=False, keypair=keypair, server_groups=at_least(request, "2.71"), user_data=False)


async def _server(request: Request, action: str, uuid: str, user_target: bool = True) -> tuple[AuthContext,
                                                                                                ServerRecord]:
    """The server (404 when not visible), then the policy check against its project (and user)."""
    ctx = await auth_context(request)
    rec = await service(request).get(request_context(request, ctx), uuid)
    target = {"project_id": rec.project_id}
    if user_target:
        target["user_id"] = rec.user_id
    await authorize(request, POLICY % action, target)
    return ctx, rec


def _with_location(body: dict[str, Any], status: int = 202) -> Response:
    href = body["server"]["links"][0]["href"]
    return json_response(body, status=status, headers={"Location": href})


# ----------------------------------------------------------------------------- list / show

def _options(request: Request, ctx: AuthContext) -> dict[str, str]:
    """Nova's ``search_opts``: the last value of each parameter, minus what the caller may not filter by."""
    check_query(request, set(qs.QUERY_PARAMS))
    opts = {name: request.query_params.getlist(name)[-1] for name in request.query_params}
    if allowed(request, ctx, POLICY % "allow_all_filters", {"project_id": ctx.project_id}):
        return {k: v for k, v in opts.items() if k not in qs.PAGING_SORTING}
    permitted = qs.non_admin_filters(lambda v: at_least(request, v))
    return {k: v for k, v in opts.items() if k in permitted}


def _states(request: Request, query: ServerQuery, opts: dict[str, str]) -> bool:
    """``status`` (every value) to vm/task states; False when no status matches (an empty list below 2.38)."""
    if "vm_state" in opts:
        query.vm_states = [opts["vm_state"]]
    if "task_state" in opts:
        query.task_states = [opts["task_state"]]
    if "status" not in opts:
        return True
    vm_states, task_states = states_from_status(request.query_params.getlist("status"))
    if not vm_states and not task_states:
        if at_least(request, "2.38"):
            raise errors.BadRequest("Invalid status value")
        return False
    query.vm_states = list(vm_states)
    query.task_states = None if "default" in task_states else list(task_states)
    return True


async def _list_query(request: Request, ctx: AuthContext, detail: bool) -> ServerQuery | None:
    """Nova's ``_get_servers`` up to the database call; None when the answer is an empty list."""
    opts = _options(request, ctx)
    for name in opts:
        if name in qs.JOINED_FILTERS or name.startswith("_"):
            raise errors.BadRequest(f"Invalid filter field: {name}.")
    query = ServerQuery()
    if not _states(request, query, opts):
        return None
    for name in ("changes-since", "changes-before"):
        if name in opts:
            setattr(query, name.replace("-", "_"), qs.parse_time(name, opts[name]))
    if query.changes_since and query.changes_before and query.changes_before < query.changes_since:
        raise errors.BadRequest("The value of changes-since must be less than or equal to changes-before.")
    if "deleted" in opts:
        query.deleted = qs.bool_from_string(opts["deleted"], strict=False)
    elif query.changes_since or query.changes_before:
        query.deleted = None
    if is_deleted_state(query.vm_states):
        if not ctx.is_admin:
            raise errors.Forbidden("Only administrators may list deleted instances")
        query.deleted = True
    if at_least(request, "2.26"):
        for name in qs.TAG_FILTERS:
            if name in opts:
                setattr(query, name.replace("-", "_"), opts[name].split(","))
    if "locked" in opts:
        query.locked = qs.bool_from_string(opts["locked"], strict=True)
    all_tenants = "all_tenants" in opts and (opts["all_tenants"] == "" or
                                            qs.bool_from_string(opts["all_tenants"], strict=True))
    if all_tenants:
        await authorize(request, POLICY % ("detail:get_all_tenants" if detail else "index:get_all_tenants"))
        project = opts.get("project_id") or opts.get("tenant_id")
        query.project_id = project
    else:
        query.project_id = ctx.project_id
    _filters(query, opts)
    keys, dirs = qs.sort_params(request.query_params.getlist("sort_key"), request.query_params.getlist("sort_dir"),
                                lambda v: at_least(request, v), ctx.is_admin)
    query.sort_keys, query.sort_dirs = keys, dirs
    query.limit, query.marker = page_limit(request)
    return query


def _filters(query: ServerQuery, opts: dict[str, str]) -> None:
    """Exact filters, regex filters and the flavor, under Nova's names and aliases."""
    aliases = {"name": "display_name", "description": "display_description", "image": "image_ref"}
    for name, value in opts.items():
        column = aliases.get(name, name)
        if column in ("user_id", "uuid", "host"):
            query.exact[column] = [value]
        elif column == "image_ref":
            query.exact[column] = [value.rstrip("/").split("/")[-1]]
        elif column in qs.REGEX_FILTER_NAMES:
            query.regex[column] = qs.regex(name, value)
        elif column == "flavor":
            query.flavor = value.rstrip("/").split("/")[-1]


def _page(request: Request, items: list[dict[str, Any]], collection: str,
          query: ServerQuery | None) -> dict[str, Any]:
    body: dict[str, Any] = {"servers": items}
    limit = query.limit if query is not None and query.limit is not None else MAX_LIMIT
    next_links = collection_links(request, items, collection, "id", limit)
    if next_links:
        body["servers_links"] = next_links
    return body


async def list_servers(request: Request) -> Response:
    ctx = await authorize(request, POLICY % "index")
    query = await _list_query(request, ctx, detail=False)
    found = await service(request).list(query) if query is not None else []
    return json_response(_page(request, [server_brief(request, r) for r in found], "servers", query))


async def list_servers_detail(request: Request) -> Response:
    ctx = await authorize(request, POLICY % "detail")
    query = await _list_query(request, ctx, detail=True)
    found = await service(request).list(query) if query is not None else []
    seen = visibility(request, ctx, ctx.project_id)
    items = [server_detail(request, r, seen, is_admin=ctx.is_admin) for r in found]
    return json_response(_page(request, items, "servers/detail", query))


async def show_server(request: Request) -> Response:
    ctx, rec = await _server(request, "show", request.path_params["server_id"], user_target=False)
    return json_response({"server": _detail(request, ctx, rec)})


# ----------------------------------------------------------------------------- create

def _availability_zone(value: str | None) -> tuple[str | None, str | None, str | None]:
    """Nova's ``parse_availability_zone``: ``zone``, ``zone:host``, ``zone:host:node`` or ``zone::node``."""
    if not value or ":" not in value:
        return value, None, None
    parts = value.split(":")
    if len(parts) == 2:
        return parts[0] or None, parts[1] or None, None
    if len(parts) == 3:
        return parts[0] or None, parts[1] or None, parts[2] or None
    raise errors.BadRequest("Invalid input received: Unable to parse availability_zone")


async def create_server(request: Request) -> Response:
    ctx = await auth_context(request)
    body = await parse_body(request, ServerCreateBody)
    server = body.server
    reject_newer_fields(server, {
        "description": at_least(request, "2.19"), "tags": at_least(request, "2.52"),
        "personality": not at_least(request, "2.57"), "trusted_image_certificates": at_least(request, "2.63"),
        "host": at_least(request, "2.74"), "hypervisor_hostname": at_least(request, "2.74"),
        "hostname": at_least(request, "2.90")})
    tagged_networks = at_least(request, "2.42") or (at_least(request, "2.32") and not at_least(request, "2.37"))
    networks = check_networks(server.networks, at_least(request, "2.37"), tagged_networks)
    if server.hostname is not None:
        check_hostname(server.hostname, fqdn=at_least(request, "2.94"))
    max_count = server.max_count if server.max_count is not None else server.min_count
    if server.min_count > max_count:
        raise errors.BadRequest("min_count must be <= max_count")
    target = {"project_id": ctx.project_id, "user_id": ctx.user_id, "availability_zone": server.availability_zone}
    await authorize(request, POLICY % "create", target)
    zone, host, node = _availability_zone(server.availability_zone)
    if host or node:
        await authorize(request, POLICY % "create:forced_host", target)
    if server.host or server.hypervisor_hostname:
        await authorize(request, POLICY % "create:requested_destination", target)
        if host or node:
            raise errors.BadRequest("One mechanism with host and/or hypervisor_hostname and another mechanism "
                                    "with zone:host:node are mutually exclusive.")
    if not server.image_ref:
        if server.block_device_mapping or server.block_device_mapping_v2:
            raise errors.BadRequest("Booting from volume is not supported; give an imageRef.")
        raise errors.BadRequest("Missing imageRef attribute")
    if isinstance(networks, list) and networks:
        await authorize(request, POLICY % "create:attach_network", target)
    flavor_id = server.flavor_ref.split("?")[0].rstrip("/").split("/")[-1]
    try:
        flavor = await deps(request).flavors.get(ctx, flavor_id)
    except errors.NotFound:
        raise errors.BadRequest(f"Flavor {flavor_id} could not be found.") from None
    groups = list(dict.fromkeys(g.name for g in server.security_groups or [] if g.name))
    hints = body.os_hints if body.os_hints is not None else body.hints or {}
    password = server.admin_pass if server.admin_pass is not None else generate_password()
    spec = ServerSpec(
        name=server.name.strip(), image_ref=server.image_ref, min_count=server.min_count, max_count=max_count,
        description=server.description if at_least(request, "2.19") else server.name.strip(),
        hostname=server.hostname, key_name=server.key_name, user_data=server.user_data,
        metadata=server.metadata, networks=networks, security_groups=groups or ["default"],
        availability_zone=zone, forced_host=host, forced_node=node, requested_host=server.host,
        scheduler_hints={k: v for k, v in hints.items() if not k.startswith("_nova")}, tags=server.tags or [],
        config_drive=server.config_drive, access_ip_v4=server.access_ip_v4, access_ip_v6=server.access_ip_v6,
        auto_disk_config=server.disk_config == "AUTO")
    created = await service(request).create(request_context(request, ctx), spec, flavor)
    if server.return_reservation_id:
        return json_response({"reservation_id": created.reservation_id}, status=202)
    requested = [{"name": g.name} for g in server.security_groups] if server.security_groups else None
    view = server_created(request, created.uuids[0], requested, password, server.disk_config or "MANUAL")
    return _with_location(view)


# ----------------------------------------------------------------------------- update / delete / rebuild

async def update_server(request: Request) -> Response:
    ctx, rec = await _server(request, "update", request.path_params["server_id"])
    body = (await parse_body(request, ServerUpdateBody)).server
    reject_newer_fields(body, {"description": at_least(request, "2.19"), "hostname": at_least(request, "2.90")})
    if body.hostname is not None:
        check_hostname(body.hostname, fqdn=at_least(request, "2.94"))
    changes = _changes(body, rec)
    updated = await service(request).update(request_context(request, ctx), rec.uuid, changes)
    return json_response({"server": _detail(request, ctx, updated, _short_parts(request, keypair=False))})


_COLUMNS = {"name": "display_name", "description": "display_description", "hostname": "hostname",
            "access_ip_v4": "access_ip_v4", "access_ip_v6": "access_ip_v6", "key_name": "key_name",
            "user_data": "user_data"}


def _changes(body: Any, rec: ServerRecord) -> dict[str, Any]:
    """The columns an update or rebuild body sets (only the fields it names; ``description`` may be null)."""
    changes: dict[str, Any] = {}
    for field_name in body.model_fields_set:
        value = getattr(body, field_name)
        if field_name == "name":
            changes["display_name"] = value.strip()
        elif field_name == "disk_config":
            changes["system_metadata"] = {**rec.system_metadata, "auto_disk_config": value == "AUTO"}
        elif field_name in _COLUMNS:
            changes[_COLUMNS[field_name]] = value
    return changes


async def delete_server(request: Request) -> Response:
    ctx, rec = await _server(request, "delete", request.path_params["server_id"])
    await service(request).delete(request_context(request, ctx), rec.uuid)
    return empty_response(204)


async def rebuild_server(request: Request, instance_uuid: str, body: dict[str, Any]) -> Response:
    """The ``rebuild`` server action; ``body`` is the value of the action's ``rebuild`` key."""
    rebuild = parse(RebuildBody, {"rebuild": body}).rebuild
    reject_newer_fields(rebuild, {
        "description": at_least(request, "2.19"), "key_name": at_least(request, "2.54"),
        "personality": not at_least(request, "2.57"), "user_data": at_least(request, "2.57"),
        "trusted_image_certificates": at_least(request, "2.63"), "hostname": at_least(request, "2.90")})
    if rebuild.hostname is not None:
        check_hostname(rebuild.hostname, fqdn=at_least(request, "2.94"))
    ctx, rec = await _server(request, "rebuild", instance_uuid)
    password = rebuild.admin_pass if rebuild.admin_pass is not None else generate_password()
    changes = _changes(rebuild, rec)
    changes.pop("system_metadata", None)  # the disk config is not changed by a rebuild here
    spec = RebuildSpec(image_ref=rebuild.image_ref, changes=changes, metadata=rebuild.metadata)
    rebuilt = await service(request).rebuild(request_context(request, ctx), rec.uuid, spec)
    view = _detail(request, ctx, rebuilt, _short_parts(request, keypair=at_least(request, "2.54")))
    view["adminPass"] = password
    if at_least(request, "2.57"):
        view["user_data"] = rebuilt.user_data
    return _with_location({"server": view})


routes = [
    Route("/v2.1/servers", list_servers, methods=["GET"]),
    Route("/v2.1/servers", create_server, methods=["POST"]),
    Route("/v2.1/servers/detail", list_servers_detail, methods=["GET"]),
    Route("/v2.1/servers/{server_id}", show_server, methods=["GET"]),
    Route("/v2.1/servers/{server_id}", update_server, methods=["PUT"]),
    Route("/v2.1/servers/{server_id}", delete_server, methods=["DELETE"]),
]
