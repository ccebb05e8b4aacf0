"""Version discovery: ``GET /compute/`` lists the API versions, ``GET /compute/v2.1`` describes v2.1.

As Nova's ``versions.py``: ``version`` is the highest microversion and
``min_version`` the lowest. Only v2.1 is listed: Kumo does not serve the
legacy v2.0 API, so it does not advertise it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.compute.api.common import MAX_VERSION, MIN_VERSION, VERSION_PREFIX, api_root
from kumo.core.web import json_response

UPDATED = "2013-07-23T11:33:21Z"


def _version(request: Request) -> dict[str, Any]:
    return {"id": "v2.1", "status": "CURRENT", "version": str(MAX_VERSION), "min_version": str(MIN_VERSION),
            "updated": UPDATED, "links": [{"rel": "self", "href": f"{api_root(request)}{VERSION_PREFIX}/"}]}


async def list_versions(request: Request) -> Response:
    return json_response({"versions": [_version(request)]})


async def show_version(request: Request) -> Response:
    version = _version(request)
    version["links"].append({"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"})
    version["media-types"] = [{"base": "application/json",
                               "type": "application/vnd.openstack.compute+json;version=2.1"}]
    return json_response({"version": version})


routes = [
    Route("/", list_versions, methods=["GET", "HEAD"]),
    Route(VERSION_PREFIX, show_version, methods=["GET", "HEAD"]),
    Route(VERSION_PREFIX + "/", show_version, methods=["GET", "HEAD"]),
]
