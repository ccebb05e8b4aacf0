"""Version discovery: ``GET /`` (the versions) and ``GET /v2.0/`` (the core resources), as Neutron's root."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.core.web import json_response

CORE = (("network", "networks"), ("subnet", "subnets"), ("subnetpool", "subnetpools"), ("port", "ports"))


def _root(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}"


async def versions(request: Request) -> Response:
    return json_response({"versions": [{"id": "v2.0", "status": "CURRENT",
                                        "links": [{"rel": "self", "href": f"{_root(request)}/v2.0/"}]}]})


async def resources(request: Request) -> Response:
    base = f"{_root(request)}/v2.0"
    return json_response({"resources": [{"name": name, "collection": coll,
                                         "links": [{"rel": "self", "href": f"{base}/{coll}"}]}
                                        for name, coll in CORE]})


routes = [Route("/", versions, methods=["GET"]), Route("/v2.0/", resources, methods=["GET"]),
          Route("/v2.0", resources, methods=["GET"])]
