"""``/v2.1/os-quota-sets/{project_id}``: Nova's ``QuotaSetsController``.

* ``GET`` (with ``id``), ``/defaults``, ``/detail`` (``{limit, in_use,
  reserved}`` per resource), ``PUT`` (admin; answers without ``id``),
  ``DELETE`` (admin; back to the defaults, 202).
* 2.36: the nova-network quotas (``fixed_ips``, ``floating_ips``,
  ``security_groups``, ``security_group_rules``) leave responses and bodies.
* 2.57: so do ``injected_files``, ``injected_file_content_bytes`` and
  ``injected_file_path_bytes``.
* 2.75: unknown query parameters are a 400 (``user_id`` is known).
* A project identity does not know is a 400 (Nova's ``verify_project_id``).
* Values are integers or digit strings, from -1 (unlimited); below current
  usage is a 400 unless ``force``.

Kumo has no per-user quota rows: ``?user_id=`` shows the project's limits
(with that user's usage in ``/detail``), as Nova does for a user without
quotas of their own; setting per-user quotas is refused.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from pydantic import BeforeValidator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.compute.api.common import at_least, authorize, check_query, deps
from kumo.compute.api.schemas import Strict
from kumo.compute.api.validation import MAX_INT, NovaBool, invalid, parse_body
from kumo.compute.quota_sets import ALL_DEFAULTS, QuotaSets, filtered_for
from kumo.core import errors
from kumo.core.web import empty_response, json_response

POLICY = "os_compute_api:os-quota-sets:%s"


def _quota_value(value: Any) -> int:
    """Nova's ``_common_quota``: an integer (-1 .. 2**31-1) or a string of ``^-?[0-9]+$``."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise invalid(f"{value!r} is not of type 'integer', 'string'")
    if isinstance(value, str):
        if not re.fullmatch(r"-?[0-9]+", value):
            raise invalid(f"'{value}' does not match '^-?[0-9]+$'")
        return int(value)  # JSON schema's minimum/maximum do not apply to strings
    if value < -1:
        raise invalid(f"{value} is less than the minimum of -1")
    if value > MAX_INT:
        raise invalid(f"{value} is greater than the maximum of {MAX_INT}")
    return value


#: Absent means unchanged; an explicit null is refused by the validator (Nova's schema has no null).
QuotaValue = Annotated[int | None, BeforeValidator(_quota_value)]


class QuotaSetUpdate(Strict):
    instances: QuotaValue = None
    cores: QuotaValue = None
    ram: QuotaValue = None
    floating_ips: QuotaValue = None  # below 2.36
    fixed_ips: QuotaValue = None  # below 2.36
    metadata_items: QuotaValue = None
    key_pairs: QuotaValue = None
    security_groups: QuotaValue = None  # below 2.36
    security_group_rules: QuotaValue = None  # below 2.36
    injected_files: QuotaValue = None  # below 2.57
    injected_file_content_bytes: QuotaValue = None  # below 2.57
    injected_file_path_bytes: QuotaValue = None  # below 2.57
    server_groups: QuotaValue = None
    server_group_members: QuotaValue = None
    force: NovaBool = False


class QuotaSetUpdateBody(Strict):
    quota_set: QuotaSetUpdate


def _quota_sets(request: Request) -> QuotaSets:
    return QuotaSets(deps(request).db)


def _filtered(request: Request) -> frozenset[str]:
    return filtered_for(at_least(request, "2.36"), at_least(request, "2.57"))


def _format(request: Request, project_id: str | None, values: dict[str, Any]) -> dict[str, Any]:
    """Nova's ``_format_quota_set``: ``id`` (when given) and the resources this microversion shows."""
    hidden = _filtered(request)
    result: dict[str, Any] = {} if project_id is None else {"id": project_id}
    result.update({r: values[r] for r in sorted(values) if r not in hidden})
    return {"quota_set": result}


def _user_id(request: Request) -> str | None:
    """Nova reads the first ``user_id``."""
    values = request.query_params.getlist("user_id")
    return values[0] if values else None


async def _verify_project(request: Request, project_id: str) -> None:
    """Nova's ``identity.verify_project_id``: an unknown project is a 400."""
    check: Callable[[str], Awaitable[bool]] | None = request.app.state.project_exists
    if check is not None and not await check(project_id):
        raise errors.BadRequest(f"Project ID {project_id} is not a valid project.")


async def show_quota_set(request: Request) -> Response:
    project_id = request.path_params["project_id"]
    check_query(request, {"user_id"})
    await authorize(request, POLICY % "show", {"project_id": project_id})
    await _verify_project(request, project_id)
    return json_response(_format(request, project_id, await _quota_sets(request).limits(project_id)))


async def show_quota_set_detail(request: Request) -> Response:
    project_id = request.path_params["project_id"]
    check_query(request, {"user_id"})
    await authorize(request, POLICY % "detail", {"project_id": project_id})
    await _verify_project(request, project_id)
    detail = await _quota_sets(request).detail(project_id, _user_id(request))
    return json_response(_format(request, project_id, detail))


async def show_defaults(request: Request) -> Response:
    project_id = request.path_params["project_id"]
    await authorize(request, POLICY % "defaults", {"project_id": project_id})
    await _verify_project(request, project_id)
    return json_response(_format(request, project_id, dict(ALL_DEFAULTS)))


async def update_quota_set(request: Request) -> Response:
    project_id = request.path_params["project_id"]
    body = (await parse_body(request, QuotaSetUpdateBody)).quota_set
    hidden = _filtered(request)
    for name in sorted(body.model_fields_set & hidden)[:1]:
        raise errors.ValidationError(f"Additional properties are not allowed ('{name}' was unexpected)")
    check_query(request, {"user_id"})
    await authorize(request, POLICY % "update", {"project_id": project_id})
    await _verify_project(request, project_id)
    if _user_id(request) is not None:
        raise errors.BadRequest("Per-user quotas are not supported; set the project's quotas instead.")
    values = {name: getattr(body, name) for name in body.model_fields_set - {"force"}
              if getattr(body, name) is not None}
    limits = await _quota_sets(request).update(project_id, values, force=body.force)
    return json_response(_format(request, None, limits))


async def delete_quota_set(request: Request) -> Response:
    """Back to the defaults (202, as Nova). With ``user_id`` there is nothing to drop: Kumo has no user rows."""
    project_id = request.path_params["project_id"]
    check_query(request, {"user_id"})
    await authorize(request, POLICY % "delete", {"project_id": project_id})
    if _user_id(request) is None:
        await _quota_sets(request).revert(project_id)
    return empty_response(202)


routes = [
    Route("/v2.1/os-quota-sets/{project_id}", show_quota_set, methods=["GET"]),
    Route("/v2.1/os-quota-sets/{project_id}", update_quota_set, methods=["PUT"]),
    Route("/v2.1/os-quota-sets/{project_id}", delete_quota_set, methods=["DELETE"]),
    Route("/v2.1/os-quota-sets/{project_id}/defaults", show_defaults, methods=["GET"]),
    Route("/v2.1/os-quota-sets/{project_id}/detail", show_quota_set_detail, methods=["GET"]),
]
