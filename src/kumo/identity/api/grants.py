"""Role grants: a role for a user or group on a project, a domain or the system.

Keystone spreads one operation over many URLs; every one of them has the same
four verbs on a grant (``PUT`` grant, ``GET``/``HEAD`` check, ``DELETE``
revoke, all 204) and a ``GET`` listing the roles granted::

    /v3/projects/{project_id}/users|groups/{id}/roles/{role_id}
    /v3/domains/{domain_id}/users|groups/{id}/roles/{role_id}
    /v3/system/users|groups/{id}/roles/{role_id}
    /v3/OS-INHERIT/domains|projects/{id}/users|groups/{id}/roles/{role_id}/inherited_to_projects

so the routes are generated from one :class:`GrantKind` per URL family.
Project and domain grants are checked as ``identity:<verb>_grant``, system
grants as ``identity:<verb>_system_grant_for_<actor>``, as in Keystone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.core.web import empty_response, json_response
from kumo.identity.api.common import authorize, collection, service
from kumo.identity.roles import SYSTEM_TARGET


@dataclass(frozen=True)
class GrantKind:
    """One URL family: who gets the role (``actor``), where (``target``), inherited or not."""

    actor: str   # "user" | "group"
    target: str  # "project" | "domain" | "system"
    inherited: bool = False

    @property
    def roles_path(self) -> str:
        """Path of the roles collection, without the ``/inherited_to_projects`` tail."""
        if self.target == "system":
            return f"/v3/system/{self.actor}s/{{actor_id}}/roles"
        prefix = "/v3/OS-INHERIT" if self.inherited else "/v3"
        return f"{prefix}/{self.target}s/{{target_id}}/{self.actor}s/{{actor_id}}/roles"

    @property
    def tail(self) -> str:
        return "/inherited_to_projects" if self.inherited else ""

    def action(self, verb: str) -> str:
        """``create``/``check``/``revoke``/``list`` as Keystone's policy action name."""
        plural = "s" if verb == "list" else ""
        if self.target == "system":
            return f"identity:{verb}_system_grant{plural}_for_{self.actor}"
        return f"identity:{verb}_grant{plural}"


KINDS = [GrantKind(actor, target) for target in ("project", "domain", "system") for actor in ("user", "group")] + \
        [GrantKind(actor, target, True) for target in ("domain", "project") for actor in ("user", "group")]


def _scope(kind: GrantKind, request: Request) -> tuple[str, str, dict[str, Any]]:
    """``(actor_id, target_id, policy target)`` of a grant request."""
    params = request.path_params
    target_id = SYSTEM_TARGET if kind.target == "system" else params["target_id"]
    target: dict[str, Any] = {kind.actor: {"id": params["actor_id"]}}
    if kind.target != "system":
        target[kind.target] = {"id": target_id}
    if "role_id" in params:
        target["role"] = {"id": params["role_id"]}
    return params["actor_id"], target_id, target


def grant_routes(kind: GrantKind) -> list[Route]:
    """The routes of one URL family: grant, check, revoke, and list."""

    async def change(request: Request, verb: str) -> Response:
        actor_id, target_id, target = _scope(kind, request)
        await authorize(request, kind.action(verb), target)
        roles = service(request).roles
        method = {"create": roles.grant, "check": roles.check_grant, "revoke": roles.revoke}[verb]
        await method(kind.actor, actor_id, kind.target, target_id, request.path_params["role_id"], kind.inherited)
        return empty_response(204)

    async def create(request: Request) -> Response:
        return await change(request, "create")

    async def check(request: Request) -> Response:
        return await change(request, "check")

    async def revoke(request: Request) -> Response:
        return await change(request, "revoke")

    async def list_roles(request: Request) -> Response:
        actor_id, target_id, target = _scope(kind, request)
        await authorize(request, kind.action("list"), target)
        roles = await service(request).roles.list_grants(kind.actor, actor_id, kind.target, target_id,
                                                         kind.inherited)
        path = request.url.path.split("/v3/", 1)[1]
        return json_response(collection(request, "roles", roles, path=path))

    item = f"{kind.roles_path}/{{role_id}}{kind.tail}"
    return [
        Route(item, create, methods=["PUT"]),
        Route(item, check, methods=["GET", "HEAD"]),
        Route(item, revoke, methods=["DELETE"]),
        Route(f"{kind.roles_path}{kind.tail}", list_roles, methods=["GET"]),
    ]


routes = [route for kind in KINDS for route in grant_routes(kind)]
