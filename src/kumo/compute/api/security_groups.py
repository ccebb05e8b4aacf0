"""Nova's security group proxy APIs: ``/os-security-groups``, ``/os-security-group-rules``, a server's groups.

Nova's ``nova/api/openstack/compute/security_groups.py`` with Neutron: every
call goes to the network API with the caller's token (see
:mod:`kumo.compute.security_group_api`), so the network service decides
visibility; another project's group is Neutron's 404.

* ``os-security-groups`` and ``os-security-group-rules`` exist from 2.1 to
  2.35 (Nova's ``MAX_PROXY_API_SUPPORT_VERSION``); from 2.36 they are 404.
* ``GET /servers/{id}/os-security-groups`` and the ``addSecurityGroup`` /
  ``removeSecurityGroup`` actions exist at every version.
* Group bodies accept extra keys (Nova's schemas say so); group create,
  update and rule create answer 200, the deletes and the actions 202.
* Rules are shown in Nova's shape: ``ip_range {cidr}`` or, for a rule from a
  source group, ``group {name, tenant_id}``; a rule whose source group the
  caller cannot see is left out, as Nova does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.compute.api.common import (
    MAX_LIMIT,
    at_least,
    authorize,
    deps,
    page_limit,
    page_offset,
    request_context,
)
from kumo.compute.api.schemas import Strict
from kumo.compute.api.server_schemas import uuid_string
from kumo.compute.api.validation import invalid, parse, parse_body, show_value
from kumo.compute.context import RequestContext
from kumo.compute.security_group_api import (
    NovaGroup,
    NovaRule,
    SecurityGroupAPI,
    check_prefix,
    new_ingress_rule,
    parse_cidr,
    remember_group_names,
    validate_id,
)
from kumo.compute.server_actions import InstanceRef, ServerActions
from kumo.core import errors
from kumo.core.auth import AuthContext
from kumo.core.web import auth_context, empty_response, json_response

POLICY = "os_compute_api:os-security-groups:%s"
#: From this microversion the proxies to the network API are gone (Nova's 2.36).
PROXY_REMOVED = "2.36"


# ----------------------------------------------------------------------------- bodies

class Loose(BaseModel):
    """Nova's security group schemas allow additional properties: extra keys are ignored."""

    model_config = ConfigDict(extra="ignore")


def _text255(value: Any) -> str:
    """``{'type': 'string', 'minLength': 0, 'maxLength': 255}``: names and descriptions may be empty."""
    if not isinstance(value, str):
        raise invalid(f"{show_value(value)} is not of type 'string'")
    if len(value) > 255:
        raise invalid(f"'{value}' is too long")
    return value


def _uuid_or_null(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(f"{show_value(value)} is not of type 'string', 'null'")
    return uuid_string(value)


def _group_name(value: Any) -> str:
    """The actions' ``name``: a string of at least one character (blank is refused later, as in Nova)."""
    if not isinstance(value, str):
        raise invalid(f"{show_value(value)} is not of type 'string'")
    if not value:
        raise invalid("'' is too short")
    return value


Text255 = Annotated[str, BeforeValidator(_text255)]


class GroupFields(Loose):
    name: Text255
    description: Text255


class GroupBody(Loose):
    security_group: GroupFields


class RuleFields(Loose):
    parent_group_id: Annotated[str, BeforeValidator(uuid_string)]
    group_id: Annotated[str | None, BeforeValidator(_uuid_or_null)] = None
    ip_protocol: Any = None  # Nova never validated these four in its schema; its rule checks do
    from_port: Any = None
    to_port: Any = None
    cidr: Any = None


class RuleBody(Loose):
    security_group_rule: RuleFields


class GroupRef(Strict):
    name: Annotated[str, BeforeValidator(_group_name)]


class AddBody(Loose):
    add: GroupRef = Field(alias="addSecurityGroup")


class RemoveBody(Loose):
    remove: GroupRef = Field(alias="removeSecurityGroup")


# ----------------------------------------------------------------------------- helpers

def _proxy_only(request: Request) -> None:
    """The proxy routes do not exist from 2.36 (Nova's VersionNotFoundForAPIMethod, a 404)."""
    if at_least(request, PROXY_REMOVED):
        raise errors.NotFound("The resource could not be found.")


def _api(request: Request, ctx: AuthContext | RequestContext) -> SecurityGroupAPI:
    """The proxy, with the caller's token; a cloud without the network service cannot serve it."""
    network = deps(request).network
    if network is None:
        raise errors.ServiceUnavailable("The network service is not available.")
    rctx = ctx if isinstance(ctx, RequestContext) else request_context(request, ctx)
    return SecurityGroupAPI(network.client, rctx)


class SourceGroups:
    """The ``group`` of rules from a source group, each looked up once per request (None: not visible)."""

    def __init__(self, api: SecurityGroupAPI, known: Sequence[NovaGroup] = ()) -> None:
        self.api = api
        self.known: dict[str, dict[str, Any] | None] = {g["id"]: _source(g) for g in known}

    async def of(self, group_id: str) -> dict[str, Any] | None:
        if group_id not in self.known:
            try:
                self.known[group_id] = _source(await self.api.get(group_id))
            except errors.NotFound:
                self.known[group_id] = None
        return self.known[group_id]


def _source(group: NovaGroup) -> dict[str, Any]:
    return {"name": group.get("name"), "tenant_id": group.get("project_id")}


def _rule_view(rule: NovaRule, source: dict[str, Any] | None) -> dict[str, Any]:
    """Nova's ``_format_security_group_rule``, the source group already looked up."""
    view = {"id": rule["id"], "parent_group_id": rule["parent_group_id"], "ip_protocol": rule["protocol"],
            "from_port": rule["from_port"], "to_port": rule["to_port"], "group": {}, "ip_range": {}}
    if source is not None:
        view["group"] = source
    else:
        view["ip_range"] = {"cidr": rule["cidr"]}
    return view


async def _group_view(group: NovaGroup, sources: SourceGroups) -> dict[str, Any]:
    """Nova's ``_format_security_group``: rules from a source group the caller cannot see are skipped."""
    rules = []
    for rule in group["rules"]:
        source = None
        if rule["group_id"]:
            source = await sources.of(rule["group_id"])
            if source is None:
                continue
        rules.append(_rule_view(rule, source))
    return {"id": group["id"], "description": group["description"], "name": group["name"],
            "tenant_id": group["project_id"], "rules": rules}


async def _sorted_views(groups: list[NovaGroup], sources: SourceGroups) -> list[dict[str, Any]]:
    views = [await _group_view(g, sources) for g in groups]
    return sorted(views, key=lambda v: (v["tenant_id"] or "", v["name"] or ""))


# ----------------------------------------------------------------------------- /os-security-groups

async def list_groups(request: Request) -> Response:
    _proxy_only(request)
    ctx = await authorize(request, POLICY % "get")
    limit, _marker = page_limit(request)
    offset = page_offset(request)
    api = _api(request, ctx)
    groups = await api.list(all_tenants="all_tenants" in request.query_params)
    page = groups[offset:offset + (limit or MAX_LIMIT)]
    return json_response({"security_groups": await _sorted_views(page, SourceGroups(api, groups))})


async def show_group(request: Request) -> Response:
    _proxy_only(request)
    ctx = await authorize(request, POLICY % "show")
    api = _api(request, ctx)
    group = await api.get(validate_id(request.path_params["group_id"]))
    return json_response({"security_group": await _group_view(group, SourceGroups(api, [group]))})


async def create_group(request: Request) -> Response:
    _proxy_only(request)
    body = (await parse_body(request, GroupBody)).security_group
    ctx = await authorize(request, POLICY % "create")
    api = _api(request, ctx)
    group = await api.create(body.name, body.description)
    return json_response({"security_group": await _group_view(group, SourceGroups(api, [group]))})


async def update_group(request: Request) -> Response:
    _proxy_only(request)
    body = (await parse_body(request, GroupBody)).security_group
    ctx = await authorize(request, POLICY % "update")
    api = _api(request, ctx)
    group = await api.get(validate_id(request.path_params["group_id"]))
    updated = await api.update(group["id"], body.name, body.description)
    return json_response({"security_group": await _group_view(updated, SourceGroups(api, [updated]))})


async def delete_group(request: Request) -> Response:
    _proxy_only(request)
    ctx = await authorize(request, POLICY % "delete")
    api = _api(request, ctx)
    group = await api.get(validate_id(request.path_params["group_id"]))
    await api.destroy(group["id"])
    return empty_response(202)


# ----------------------------------------------------------------------------- /os-security-group-rules

def _new_rule(fields: RuleFields) -> NovaRule:
    """Nova's ``_rule_args_to_dict`` and its checks after it (enough parameters, the /0 prefix)."""
    if fields.group_id is not None:
        rule = new_ingress_rule(fields.ip_protocol, fields.from_port, fields.to_port, group_id=fields.group_id)
    else:
        rule = new_ingress_rule(fields.ip_protocol, fields.from_port, fields.to_port,
                                cidr=parse_cidr(fields.cidr))
    if rule is None:
        raise errors.BadRequest("Not enough parameters to build a valid rule.")
    if "cidr" in rule:
        check_prefix(rule["cidr"])
    return rule


async def create_rule(request: Request) -> Response:
    _proxy_only(request)
    fields = (await parse_body(request, RuleBody)).security_group_rule
    ctx = await authorize(request, POLICY % "rule:create")
    api = _api(request, ctx)
    parent = await api.get(fields.parent_group_id)
    source = _source(await api.get(fields.group_id)) if fields.group_id is not None else None
    new_rule = _new_rule(fields)
    new_rule["parent_group_id"] = parent["id"]
    rule = await api.add_rule(parent, new_rule)
    if source is None and rule["group_id"]:
        source = await SourceGroups(api).of(rule["group_id"])
    return json_response({"security_group_rule": _rule_view(rule, source)})


async def delete_rule(request: Request) -> Response:
    _proxy_only(request)
    ctx = await authorize(request, POLICY % "rule:delete")
    api = _api(request, ctx)
    rule = await api.get_rule(validate_id(request.path_params["rule_id"]))
    await api.get(rule["parent_group_id"])
    await api.remove_rule(rule["id"])
    return empty_response(202)


# ----------------------------------------------------------------------------- a server's groups

async def _server(request: Request, policy: str, server_id: str) -> tuple[RequestContext, InstanceRef]:
    """The server (404 unless visible), then ``policy`` on its project: Nova's order."""
    ctx = request_context(request, await auth_context(request))
    inst = await ServerActions(deps(request)).get(ctx, server_id)
    await authorize(request, POLICY % policy, {"project_id": inst.project_id})
    return ctx, inst


async def server_groups(request: Request) -> Response:
    ctx, inst = await _server(request, "list", request.path_params["server_id"])
    api = _api(request, ctx)
    groups = await api.instance_groups(inst.uuid)
    return json_response({"security_groups": await _sorted_views(groups, SourceGroups(api, groups))})


def _name(ref: GroupRef) -> str:
    """Nova's ``_parse``: a name of blanks is refused after the schema's check."""
    if not ref.name.strip():
        raise errors.BadRequest("Security group name cannot be empty")
    return ref.name


async def add_security_group(request: Request, value: Any) -> Response:
    """``addSecurityGroup``: the group goes on each of the server's ports (202)."""
    ref = parse(AddBody, {"addSecurityGroup": value}).add
    ctx, inst = await _server(request, "add", request.path_params["server_id"])
    api = _api(request, ctx)
    await api.add_to_instance(inst.uuid, _name(ref))
    await _remember_groups(request, inst.uuid, api)
    return empty_response(202)


async def remove_security_group(request: Request, value: Any) -> Response:
    """``removeSecurityGroup``: the group leaves each port that has it (202; 404 if none had it)."""
    ref = parse(RemoveBody, {"removeSecurityGroup": value}).remove
    ctx, inst = await _server(request, "remove", request.path_params["server_id"])
    api = _api(request, ctx)
    await api.remove_from_instance(inst.uuid, _name(ref))
    await _remember_groups(request, inst.uuid, api)
    return empty_response(202)


async def _remember_groups(request: Request, uuid: str, api: SecurityGroupAPI) -> None:
    """The server view's ``security_groups`` (names kept with the instance) follows the ports' groups."""
    names = sorted({str(g["name"]) for g in await api.instance_groups(uuid)})
    await remember_group_names(deps(request).db, uuid, names)


routes = [
    Route("/v2.1/os-security-groups", list_groups, methods=["GET"]),
    Route("/v2.1/os-security-groups", create_group, methods=["POST"]),
    Route("/v2.1/os-security-groups/{group_id}", show_group, methods=["GET"]),
    Route("/v2.1/os-security-groups/{group_id}", update_group, methods=["PUT"]),
    Route("/v2.1/os-security-groups/{group_id}", delete_group, methods=["DELETE"]),
    Route("/v2.1/os-security-group-rules", create_rule, methods=["POST"]),
    Route("/v2.1/os-security-group-rules/{rule_id}", delete_rule, methods=["DELETE"]),
    Route("/v2.1/servers/{server_id}/os-security-groups", server_groups, methods=["GET"]),
]
