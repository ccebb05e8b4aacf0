"""Glance's JSON-patch dialect (``application/openstack-images-v2.1-json-patch``).

Operations ``add``, ``replace`` and ``remove`` on top-level image
attributes: core attributes are typed and some are read-only or reserved;
anything else is a custom property whose value must be a string. Applying a
patch produces a dict of changes; the service validates and stores it in one
transaction, so a patch with one bad operation changes nothing.
"""

from __future__ import annotations

import re
from typing import Any

from kumo.core import errors
from kumo.image.states import CONTAINER_FORMATS, DISK_FORMATS

READ_ONLY = {"id", "status", "checksum", "size", "virtual_size", "created_at", "updated_at", "file", "self",
             "schema", "direct_url", "os_hash_algo", "os_hash_value", "stores", "locations"}
RESERVED = {"deleted", "deleted_at", "location"}
CORE = {"name", "visibility", "protected", "min_disk", "min_ram", "disk_format", "container_format", "tags",
        "owner", "os_hidden"}
REMOVABLE_CORE: set[str] = set()
# Custom properties Glance's image schema types more tightly than "string": a UUID, or null.
UUID_PROPERTIES = {"kernel_id", "ramdisk_id"}
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def parse_path(path: Any) -> str:
    """``/name`` -> ``name`` (with ``~1``/``~0`` unescaped); nested paths are invalid."""
    if not isinstance(path, str) or not path.startswith("/") or path.count("/") != 1 or len(path) < 2:
        raise errors.BadRequest(f"Invalid JSON pointer for this resource: '{path}'")
    return path[1:].replace("~1", "/").replace("~0", "~")


def check_core_value(attr: str, value: Any) -> Any:
    """Validate a core attribute's new value the way Glance's schema does (400 otherwise)."""
    def bad(expected: str) -> errors.BadRequest:
        return errors.BadRequest(f"Provided object does not match schema 'image': {value!r} is not {expected}. "
                                 f"Failed validating '{attr}'.")

    if attr == "name":
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise bad("a string of at most 255 characters")
    elif attr in ("min_disk", "min_ram"):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > 2**31 - 1:
            raise bad("a non-negative integer")
    elif attr in ("protected", "os_hidden"):
        if not isinstance(value, bool):
            raise bad("of type 'boolean'")
    elif attr == "visibility":
        if value not in ("public", "private", "shared", "community"):
            raise bad("one of ['community', 'public', 'private', 'shared']")
    elif attr == "disk_format":
        if value is not None and value not in DISK_FORMATS:
            raise bad(f"one of {list(DISK_FORMATS)}")
    elif attr == "container_format":
        if value is not None and value not in CONTAINER_FORMATS:
            raise bad(f"one of {list(CONTAINER_FORMATS)}")
    elif attr == "tags":
        if not isinstance(value, list) or not all(isinstance(t, str) and 0 < len(t) <= 255 for t in value):
            raise bad("an array of strings")
        value = list(dict.fromkeys(value))
    elif attr == "owner":
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise bad("a string")
    return value


def check_property_value(key: str, value: Any) -> None:
    """A custom property's value: a string (``kernel_id``/``ramdisk_id``: an image UUID or null), else 400."""
    if key in UUID_PROPERTIES:
        if value is None or (isinstance(value, str) and _UUID.match(value)):
            return
        raise errors.BadRequest(f"Provided object does not match schema 'image': {value!r} does not match "
                                f"'{_UUID.pattern}'. Failed validating '{key}'.")
    if not isinstance(value, str):
        raise errors.BadRequest(f"Provided object does not match schema 'image': {value!r} is not of type "
                                f"'string'. Failed validating '{key}'.")


def apply_patch(current: dict[str, Any], operations: Any) -> tuple[dict[str, Any], dict[str, Any], set[str]]:
    """Apply operations to ``current`` (core attrs + properties).

    Returns ``(core_changes, property_changes, removed_properties)``.
    """
    if not isinstance(operations, list):
        raise errors.BadRequest("Request body must be a JSON array of operation objects.")
    core: dict[str, Any] = {}
    props: dict[str, Any] = {}
    removed: set[str] = set()
    properties = dict(current.get("properties", {}))
    for op in operations:
        if not isinstance(op, dict) or set(op) - {"op", "path", "value"}:
            raise errors.BadRequest("Operation objects must contain only 'op', 'path' and 'value'.")
        kind = op.get("op")
        if kind not in ("add", "replace", "remove"):
            raise errors.BadRequest(f"Invalid operation: '{kind}'. Allowed: add, replace, remove.")
        attr = parse_path(op.get("path"))
        if attr in RESERVED:
            raise errors.Forbidden(f"Attribute '{attr}' is reserved.")
        if attr in READ_ONLY:
            raise errors.Forbidden(f"Attribute '{attr}' is read-only.")
        if kind != "remove" and "value" not in op:
            raise errors.BadRequest(f"Operation '{kind}' needs a 'value'.")
        if attr in CORE:
            if kind == "remove":
                raise errors.Forbidden(f"Attribute '{attr}' cannot be removed.")
            core[attr] = check_core_value(attr, op["value"])
            continue
        if len(attr) > 255:
            raise errors.BadRequest("Property names must be at most 255 characters.")
        if kind == "remove":
            if attr not in properties:
                raise errors.Conflict(f"Property {attr} does not exist.")
            properties.pop(attr)
            props.pop(attr, None)
            removed.add(attr)
            continue
        if kind == "replace" and attr not in properties:
            raise errors.Conflict(f"Property {attr} does not exist.")
        value = op["value"]
        check_property_value(attr, value)
        properties[attr] = value
        props[attr] = value
        removed.discard(attr)
    return core, props, removed
