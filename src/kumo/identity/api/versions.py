"""Version discovery: ``GET /identity`` (300, all versions) and ``GET /identity/v3``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.core.web import json_response
from kumo.identity.api.common import base_url

VERSION_ID = "v3.14"
UPDATED = "2020-04-07T00:00:00Z"


def version_doc(request: Request) -> dict[str, Any]:
    return {
        "id": VERSION_ID,
        "status": "stable",
        "updated": UPDATED,
        "links": [{"rel": "self", "href": f"{base_url(request)}/v3/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    }


async def list_versions(request: Request) -> Response:
    return json_response({"versions": {"values": [version_doc(request)]}}, status=300)


async def show_v3(request: Request) -> Response:
    return json_response({"version": version_doc(request)})


routes = [
    Route("/", list_versions, methods=["GET", "HEAD"]),
    Route("/v3", show_v3, methods=["GET", "HEAD"]),
    Route("/v3/", show_v3, methods=["GET", "HEAD"]),
]
