"""``/v2.1/servers/{id}/os-instance-actions``: Nova's ``InstanceActionsController``.

* 2.21: actions of deleted servers can still be read.
* 2.51: non-admins see the events too, without ``traceback``.
* 2.58: ``updated_at``; ``limit``/``marker``/``changes-since`` with ``links``;
  unknown query parameters are a 400 from here on.
* 2.62: events carry ``hostId`` (and ``host`` for admins).
* 2.66: ``changes-before``.  2.84: events carry ``details`` (policy ``events:details``).

What `openstack server event list/show` prints.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.compute.api.common import allowed, at_least, authorize, collection_links, deps, page_limit, request_context
from kumo.compute.api.views import nova_time
from kumo.compute.server_actions import ActionLog, ActionQuery, InstanceRef, ServerActions
from kumo.core import errors
from kumo.core.auth import AuthContext
from kumo.core.web import auth_context, json_response

POLICY = "os_compute_api:os-instance-actions:%s"
ACTION_KEYS = ("action", "instance_uuid", "request_id", "user_id", "project_id", "start_time", "message")


async def _instance(request: Request, action: str) -> tuple[AuthContext, InstanceRef]:
    """The server (deleted ones too from 2.21), then the policy on its project."""
    ctx = await auth_context(request)
    inst = await ServerActions(deps(request)).get(request_context(request, ctx), request.path_params["server_id"],
                                                  include_deleted=at_least(request, "2.21"))
    await authorize(request, POLICY % action, {"project_id": inst.project_id})
    return ctx, inst


def _action_view(request: Request, action: dict[str, Any]) -> dict[str, Any]:
    view = {key: action[key] for key in ACTION_KEYS}
    view["start_time"] = nova_time(action["start_time"])
    if at_least(request, "2.58"):
        view["updated_at"] = nova_time(action["updated_at"])
    return view


def host_id(host: str | None, project_id: str) -> str:
    """Nova's ``generate_hostid``: sha224 of project + host, ``""`` without a host."""
    return hashlib.sha224((project_id + host).encode()).hexdigest() if host else ""


def _time_param(request: Request, name: str) -> dt.datetime | None:
    values = request.query_params.getlist(name)
    if not values:
        return None
    raw = values[-1]
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise errors.BadRequest(f"Invalid input for query parameters {name}. Value: {raw}. "
                                f"'{raw}' is not a 'date-time'") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _query(request: Request) -> ActionQuery:
    """2.58's paging and filters, validated as Nova's ``index_query_v258`` / ``_v266``."""
    known = {"limit", "marker", "changes-since"} | ({"changes-before"} if at_least(request, "2.66") else set())
    for name in request.query_params:
        if name not in known:
            raise errors.BadRequest(f"Additional properties are not allowed ('{name}' was unexpected)")
        values = request.query_params.getlist(name)
        if len(values) > 1:
            raise errors.BadRequest(f"Invalid input for query parameters {name}. Value: {values}. "
                                    f"{values} is too long")
    limit, marker = page_limit(request)
    since, before = _time_param(request, "changes-since"), _time_param(request, "changes-before")
    if since and before and before < since:
        raise errors.BadRequest("The value of changes-since must be less than or equal to changes-before.")
    return ActionQuery(limit=limit, marker=marker, changes_since=since, changes_before=before)


async def list_actions(request: Request) -> Response:
    _ctx, inst = await _instance(request, "list")
    paged = at_least(request, "2.58")
    query = _query(request) if paged else ActionQuery()
    actions = [_action_view(request, a) for a in await ActionLog(deps(request)).list(inst.uuid, query)]
    body: dict[str, Any] = {"instanceActions": actions}
    if paged and query.limit:
        next_links = collection_links(request, actions, f"servers/{inst.uuid}/os-instance-actions", "request_id",
                                      query.limit)
        if next_links:
            body["links"] = next_links
    return json_response(body)


async def show_action(request: Request) -> Response:
    ctx, inst = await _instance(request, "show")
    found = await ActionLog(deps(request)).get(inst.uuid, request.path_params["request_id"])
    view = _action_view(request, found)
    target = {"project_id": inst.project_id}
    admin_events = allowed(request, ctx, POLICY % "events", target)
    if admin_events or at_least(request, "2.51"):
        details = at_least(request, "2.84") and allowed(request, ctx, POLICY % "events:details", target)
        project_id = found["project_id"] or inst.project_id
        events = []
        for event in found["events"]:
            item: dict[str, Any] = {"event": event["event"], "start_time": nova_time(event["start_time"]),
                                    "finish_time": nova_time(event["finish_time"]), "result": event["result"]}
            if admin_events:
                item["traceback"] = event["details"]
                if at_least(request, "2.62"):
                    item["host"] = event["host"]
            if at_least(request, "2.62"):
                item["hostId"] = host_id(event["host"], project_id)
            if details:
                item["details"] = event["details"]
            events.append(item)
        view["events"] = events
    return json_response({"instanceAction": view})


routes = [
    Route("/v2.1/servers/{server_id}/os-instance-actions", list_actions, methods=["GET"]),
    Route("/v2.1/servers/{server_id}/os-instance-actions/{request_id}", show_action, methods=["GET"]),
]
