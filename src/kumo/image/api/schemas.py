"""``/v2/schemas/*``: the JSON schemas Glance clients read to know image fields.

Built from the same constants the service validates with, so the schema and
the behaviour cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.core.web import json_response
from kumo.image.api.common import authorize
from kumo.image.states import CONTAINER_FORMATS, DISK_FORMATS, ImageStatus

UUID_PATTERN = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
NULLABLE_STR: list[str] = ["null", "string"]


def _prop(kind: Any, description: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "description": description, **extra}


def image_schema() -> dict[str, Any]:
    ro = {"readOnly": True}
    properties = {
        "id": _prop("string", "Image identifier (a UUID)", pattern=UUID_PATTERN),
        "name": _prop(NULLABLE_STR, "Name of the image", maxLength=255),
        "status": _prop("string", "Lifecycle status of the image",
                        enum=[s.value for s in ImageStatus] + ["pending_delete"], **ro),
        "visibility": _prop("string", "Who can see and use the image",
                            enum=["community", "public", "private", "shared"]),
        "protected": _prop("boolean", "A protected image cannot be deleted"),
        "os_hidden": _prop("boolean", "Hidden images are left out of lists unless asked for"),
        "checksum": _prop(NULLABLE_STR, "MD5 of the image data", maxLength=32, **ro),
        "os_hash_algo": _prop(NULLABLE_STR, "Algorithm of os_hash_value", maxLength=64, **ro),
        "os_hash_value": _prop(NULLABLE_STR, "Hex digest of the image data (os_hash_algo)", maxLength=128, **ro),
        "owner": _prop(NULLABLE_STR, "Project that owns the image", maxLength=255),
        "size": _prop(["null", "integer"], "Size of the image data in bytes", **ro),
        "virtual_size": _prop(["null", "integer"], "Size of the virtual disk in bytes", **ro),
        "container_format": _prop(NULLABLE_STR, "Container format", enum=[None, *CONTAINER_FORMATS]),
        "disk_format": _prop(NULLABLE_STR, "Disk format", enum=[None, *DISK_FORMATS]),
        "created_at": _prop("string", "When the image was registered", **ro),
        "updated_at": _prop("string", "When the image was last changed", **ro),
        "tags": {"type": "array", "description": "Strings attached to the image",
                 "items": {"type": "string", "maxLength": 255}},
        "direct_url": _prop("string", "Location of the data in its store", **ro),
        "min_ram": _prop("integer", "RAM (MiB) needed to boot the image"),
        "min_disk": _prop("integer", "Disk (GiB) needed to boot the image"),
        "self": _prop("string", "URL of this image", **ro),
        "file": _prop("string", "URL of this image's data", **ro),
        "stores": _prop("string", "Stores holding the data", **ro),
        "schema": _prop("string", "URL of this schema", **ro),
        "locations": {"type": "array", "description": "Store locations of the data", "items": {"type": "object"}},
        "kernel_id": _prop(NULLABLE_STR, "Image to use as kernel for direct kernel boot", pattern=UUID_PATTERN,
                           is_base=False),
        "ramdisk_id": _prop(NULLABLE_STR, "Image to use as ramdisk for direct kernel boot", pattern=UUID_PATTERN,
                            is_base=False),
        "architecture": _prop("string", "CPU architecture the image runs on", is_base=False),
        "os_distro": _prop("string", "Operating system distribution", is_base=False),
        "os_version": _prop("string", "Operating system version", is_base=False),
        "instance_uuid": _prop("string", "Instance this image was taken from (informational)", is_base=False),
    }
    return {
        "name": "image",
        "properties": properties,
        "additionalProperties": {"type": "string"},
        "links": [{"rel": "self", "href": "{self}"}, {"rel": "enclosure", "href": "{file}"},
                  {"rel": "describedby", "href": "{schema}"}],
    }


def images_schema() -> dict[str, Any]:
    return {
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image_schema()},
            "schema": {"type": "string"}, "first": {"type": "string"}, "next": {"type": "string"},
        },
        "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                  {"rel": "describedby", "href": "{schema}"}],
    }


def member_schema() -> dict[str, Any]:
    return {
        "name": "member",
        "properties": {
            "image_id": _prop("string", "Image the member belongs to", pattern=UUID_PATTERN),
            "member_id": _prop("string", "Project the image is shared with"),
            "status": _prop("string", "Whether the member accepted the image",
                            enum=["pending", "accepted", "rejected"]),
            "created_at": _prop("string", "When the member was added"),
            "updated_at": _prop("string", "When the member status last changed"),
            "schema": _prop("string", "URL of this schema", **{"readOnly": True}),
        },
    }


def members_schema() -> dict[str, Any]:
    return {"name": "members",
            "properties": {"members": {"type": "array", "items": member_schema()}, "schema": {"type": "string"}},
            "links": [{"rel": "describedby", "href": "{schema}"}]}


SCHEMAS = {"image": image_schema, "images": images_schema, "member": member_schema, "members": members_schema}


async def show_schema(request: Request) -> Response:
    await authorize(request, "image:get_images")
    return json_response(SCHEMAS[request.url.path.rsplit("/", 1)[-1]]())


routes = [Route(f"/v2/schemas/{name}", show_schema, methods=["GET"]) for name in SCHEMAS]
