"""Version discovery: Glance answers ``GET /`` (and ``/v2``) with 300 and its versions."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.core.web import json_response

CURRENT = "v2.16"
SUPPORTED = ["v2.15", "v2.9", "v2.7", "v2.6", "v2.5", "v2.4", "v2.3", "v2.2", "v2.1", "v2.0"]


def _base(request: Request) -> str:
    url = request.url
    return f"{url.scheme}://{url.netloc}{request.scope.get('root_path', '')}".rstrip("/")


async def list_versions(request: Request) -> Response:
    href = f"{_base(request)}/v2/"
    versions = [{"id": CURRENT, "status": "CURRENT", "links": [{"rel": "self", "href": href}]}]
    versions += [{"id": v, "status": "SUPPORTED", "links": [{"rel": "self", "href": href}]} for v in SUPPORTED]
    return json_response({"versions": versions}, status=300)


routes = [Route(p, list_versions, methods=["GET", "HEAD"]) for p in ("/", "/v2", "/v2/")]
