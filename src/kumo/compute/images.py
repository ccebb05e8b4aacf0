"""What compute takes from an image service image: properties, the build request's image, checks.

Glance returns an image as one flat JSON object whose non-standard keys are
the image's properties; Nova keeps them in the instance's system metadata as
``image_<key>`` (so rebuilds, snapshots and the agent can read them without
asking Glance again) and refuses flavors smaller than the image's
``min_ram``/``min_disk``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kumo.core import errors

#: Glance's own image fields; everything else in the image JSON is a property.
GLANCE_FIELDS = frozenset({
    "id", "name", "status", "visibility", "protected", "checksum", "os_hash_algo", "os_hash_value", "owner",
    "size", "virtual_size", "min_ram", "min_disk", "disk_format", "container_format", "created_at", "updated_at",
    "tags", "self", "file", "schema", "os_hidden", "locations", "direct_url", "stores"})
GIB = 1 << 30


def image_properties(image: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in image.items() if k not in GLANCE_FIELDS and v is not None}


def image_request(image: Mapping[str, Any]) -> dict[str, Any]:
    """The ``image`` dict of the build request (see :mod:`kumo.compute.rpcapi`)."""
    return {"id": image["id"], "name": image.get("name"), "disk_format": image.get("disk_format"),
            "container_format": image.get("container_format"), "min_disk": int(image.get("min_disk") or 0),
            "min_ram": int(image.get("min_ram") or 0), "size": int(image.get("size") or 0),
            "properties": image_properties(image)}


def image_system_metadata(image: Mapping[str, Any], root_gb: int) -> dict[str, Any]:
    """Nova's ``get_system_metadata_from_image`` plus the kernel/ramdisk/root device columns Nova has.

    ``kernel_id: nokernel`` means "no kernel, no ramdisk" as in Nova's ``_handle_kernel_and_ramdisk``.
    """
    props = image_properties(image)
    meta: dict[str, Any] = {f"image_{k}": v[:255] for k, v in props.items()
                            if k not in ("mappings", "block_device_mapping", "img_mappings",
                                         "img_block_device_mapping")}
    meta.update(image_min_ram=int(image.get("min_ram") or 0), image_disk_format=image.get("disk_format"),
                image_container_format=image.get("container_format"), image_base_image_ref=image["id"],
                image_min_disk=max(int(image.get("min_disk") or 0), root_gb))
    kernel, ramdisk = props.get("kernel_id"), props.get("ramdisk_id")
    if kernel == "nokernel":
        kernel = ramdisk = None
    meta.update(kernel_id=kernel or "", ramdisk_id=ramdisk or "", root_device_name=props.get("root_device_name"))
    return meta


def check_flavor_image(memory_mb: int, root_gb: int, image: Mapping[str, Any], *, allow_zero_disk: bool) -> None:
    """Nova's ``_validate_flavor_image_nostatus``: the flavor must fit the image's size and minimums."""
    if memory_mb < int(image.get("min_ram") or 0):
        raise errors.BadRequest("Flavor's memory is too small for requested image.")
    dest = root_gb * GIB
    min_disk = int(image.get("min_disk") or 0) * GIB
    size = int(image.get("size") or 0)
    if dest == 0:
        if not allow_zero_disk:
            raise errors.Forbidden("Only volume-backed servers are allowed for flavors with zero disk.")
        return
    if size > dest:
        raise errors.BadRequest(f"Flavor's disk is too small for requested image. Flavor disk is {dest} bytes, "
                                f"image is {size} bytes.")
    if min_disk > dest:
        raise errors.BadRequest(f"Flavor's disk is smaller than the minimum size specified in image metadata. "
                                f"Flavor disk is {dest} bytes, minimum size is {min_disk} bytes.")
