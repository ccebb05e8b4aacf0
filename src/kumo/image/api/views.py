"""An image as Glance v2 shows it: core attributes, links, then custom properties at the top level."""

from __future__ import annotations

from typing import Any

from kumo.image.api.common import isotime


def image_view(image: dict[str, Any]) -> dict[str, Any]:
    view = dict(image.get("properties", {}))
    image_id = image["id"]
    view.update({
        "id": image_id, "name": image["name"], "status": image["status"], "visibility": image["visibility"],
        "owner": image["owner"], "disk_format": image["disk_format"], "container_format": image["container_format"],
        "size": image["size"], "virtual_size": image["virtual_size"], "checksum": image["checksum"],
        "os_hash_algo": image["os_hash_algo"], "os_hash_value": image["os_hash_value"],
        "min_disk": image["min_disk"], "min_ram": image["min_ram"], "protected": image["protected"],
        "os_hidden": image["os_hidden"], "tags": image["tags"], "created_at": isotime(image["created_at"]),
        "updated_at": isotime(image["updated_at"]), "self": f"/v2/images/{image_id}",
        "file": f"/v2/images/{image_id}/file", "schema": "/v2/schemas/image",
    })
    # No "stores": Glance shows it only with multiple stores (enabled_backends), and openstacksdk's
    # update_image() would then send {"op": "remove", "path": "/stores"} and fail.
    return view


def member_view(member: dict[str, Any]) -> dict[str, Any]:
    return {"image_id": member["image_id"], "member_id": member["member_id"], "status": member["status"],
            "created_at": isotime(member["created_at"]), "updated_at": isotime(member["updated_at"]),
            "schema": "/v2/schemas/member"}
