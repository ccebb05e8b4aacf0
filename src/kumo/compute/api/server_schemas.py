"""Request bodies of the servers API (Nova's ``schemas/servers.py``, ``server_metadata.py``, ``server_tags.py``).

One pydantic model per body serves every microversion: fields that only
exist from some version are refused below it by the handlers
(:func:`kumo.compute.api.schemas.reject_newer_fields`), and the few fields
whose rules change with the version (``networks`` at 2.37, ``hostname`` at
2.94) are checked by the helpers at the end. Messages are Nova's
JSON-schema messages (``Invalid input for field/attribute user_data. Value:
... '...' is not a 'base64'``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import re
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from kumo.compute.api.schemas import Strict
from kumo.compute.api.validation import AnyString, Name, NovaBool, PositiveInt, detail, invalid, is_printable
from kumo.core import errors

#: Nova's ``objects.instance.MAX_TAG_COUNT`` and ``objects.tag.MAX_TAG_LENGTH``.
MAX_TAGS = 50
MAX_TAG_LENGTH = 60
USER_DATA_MAX = 65535
METADATA_KEY = re.compile(r"[a-zA-Z0-9-_:. ]{1,255}")
TAG_PATTERN = re.compile(r"[^,/]*")
HOSTNAME_V290 = r"^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$"
FQDN = r"^[a-zA-Z0-9-._]*$"


def _show(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else repr(value)


def is_uuid_like(value: Any) -> bool:
    """oslo's ``uuidutils.is_uuid_like``: what Nova's ``uuid`` format accepts (any case, dashes optional)."""
    try:
        return str(uuid.UUID(value)).replace("-", "") == value.replace("-", "").replace("{", "").replace(
            "}", "").lower().removeprefix("urn:uuid:")
    except (TypeError, ValueError, AttributeError):
        return False


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise invalid(f"{_show(value)} is not of type 'string'")
    return value


def uuid_string(value: Any) -> str:
    """Nova's ``{'type': 'string', 'format': 'uuid'}`` with its messages (every compute schema's uuid fields)."""
    value = _string(value)
    if not is_uuid_like(value):
        raise invalid(f"'{value}' is not a 'uuid'")
    return value


def _image_ref(value: Any) -> str:
    """``image_id_or_empty_string``: a uuid, or "" (meaning boot from volume)."""
    if not isinstance(value, str) or not (value == "" or is_uuid_like(value)):
        raise invalid(f"{_show(value)} is not valid under any of the given schemas")
    return value


def _flavor_ref(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise invalid(f"{_show(value)} is not of type 'string', 'integer'")
    if value == "":
        raise invalid("'' is too short")
    return str(value)


def _metadata(value: Any) -> dict[str, str]:
    """``parameter_types.metadata``: keys ``[a-zA-Z0-9-_:. ]{1,255}``, values strings of at most 255."""
    if not isinstance(value, dict):
        raise invalid(f"{_show(value)} is not of type 'object'")
    for key, item in value.items():
        if not METADATA_KEY.fullmatch(key):
            raise detail(f"Additional properties are not allowed ('{key}' was unexpected)")
        if not isinstance(item, str):
            raise detail(f"Invalid input for field/attribute {key}. Value: {item}. {_show(item)} is not of type "
                         "'string'")
        if len(item) > 255:
            raise detail(f"Invalid input for field/attribute {key}. Value: {item}. '{item}' is too long")
    return dict(value)


def _user_data(value: Any) -> str | None:
    """``{'type': 'string', 'format': 'base64', 'maxLength': 65535}`` (null allowed on rebuild, 2.57)."""
    if value is None:
        return None
    value = _string(value)
    if len(value) > USER_DATA_MAX:
        raise invalid(f"'{value}' is too long")
    try:
        base64.decodebytes(value.encode("utf-8"))
    except (binascii.Error, ValueError):
        raise invalid(f"'{value}' is not a 'base64'") from None
    return value


def _ip(version: int) -> Any:
    def check(value: Any) -> str:
        value = _string(value)
        try:
            parsed = ipaddress.ip_address(value)
        except ValueError:
            parsed = None
        if parsed is None or parsed.version != version:
            raise invalid(f"'{value}' is not a 'ipv{version}'")
        return value

    return BeforeValidator(check)


def _description(value: Any) -> str | None:
    """Server descriptions (2.19): printable, at most 255 characters, or null."""
    if value is None:
        return None
    value = _string(value)
    if len(value) > 255:
        raise invalid(f"'{value}' is too long")
    if not all(is_printable(c) for c in value):
        raise invalid(f"'{value}' does not match the printable-characters pattern")
    return value


def tag_error(value: Any) -> str | None:
    """Why ``value`` is not a valid tag (``parameter_types.tag``), or None."""
    if not isinstance(value, str):
        return f"{_show(value)} is not of type 'string'"
    if len(value) < 1:
        return f"'{value}' is too short"
    if len(value) > MAX_TAG_LENGTH:
        return f"'{value}' is too long"
    if not TAG_PATTERN.fullmatch(value):
        return f"'{value}' does not match '^[^,/]*$'"
    return None


def _tags(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise invalid(f"{_show(value)} is not of type 'array'")
    if len(value) > MAX_TAGS:
        raise invalid(f"{value!r} is too long")
    for item in value:
        reason = tag_error(item)
        if reason:
            raise invalid(reason)
    return list(value)


def _hints(value: Any) -> dict[str, Any]:
    """Scheduler hints: any keys (Nova relaxed them), but ``group`` must be a uuid (or a list of them)."""
    if not isinstance(value, dict):
        raise invalid(f"{_show(value)} is not of type 'object'")
    group = value.get("group")
    if group is not None:
        groups = group if isinstance(group, list) else [group]
        if not all(is_uuid_like(g) for g in groups):
            raise detail(f"Invalid input for field/attribute group. Value: {group}. {_show(group)} is not valid "
                         "under any of the given schemas")
    for key in ("same_host", "different_host"):
        hosts = value.get(key)
        if hosts is not None:
            items = hosts if isinstance(hosts, list) else [hosts]
            if not all(is_uuid_like(h) for h in items):
                raise detail(f"Invalid input for field/attribute {key}. Value: {hosts}. {_show(hosts)} is not a "
                             "'uuid'")
    return dict(value)


Uuid = Annotated[str, BeforeValidator(uuid_string)]
ImageRef = Annotated[str, BeforeValidator(_image_ref)]
FlavorRef = Annotated[str, BeforeValidator(_flavor_ref)]
Metadata = Annotated[dict[str, str], BeforeValidator(_metadata)]
UserData = Annotated[str | None, BeforeValidator(_user_data)]
IPv4 = Annotated[str, _ip(4)]
IPv6 = Annotated[str, _ip(6)]
ServerDescription = Annotated[str | None, BeforeValidator(_description)]
Tags = Annotated[list[str], BeforeValidator(_tags)]
Hints = Annotated[dict[str, Any], BeforeValidator(_hints)]
DiskConfig = Literal["AUTO", "MANUAL"]


class SecurityGroupRef(Strict):
    name: Name | None = None


class ServerCreate(Strict):
    name: Name
    flavor_ref: FlavorRef = Field(alias="flavorRef")
    image_ref: ImageRef | None = Field(None, alias="imageRef")
    admin_pass: AnyString | None = Field(None, alias="adminPass")
    metadata: Metadata = Field(default_factory=dict)
    networks: Any = None  # shape depends on the microversion: see check_networks
    disk_config: DiskConfig | None = Field(None, alias="OS-DCF:diskConfig")
    access_ip_v4: IPv4 | None = Field(None, alias="accessIPv4")
    access_ip_v6: IPv6 | None = Field(None, alias="accessIPv6")
    personality: list[Any] | None = None  # below 2.57; injected files are not supported, ignored
    availability_zone: Name | None = None
    block_device_mapping: list[Any] | None = None
    block_device_mapping_v2: list[Any] | None = None
    config_drive: NovaBool = False
    key_name: Name | None = None
    min_count: PositiveInt = 1
    max_count: PositiveInt | None = None
    return_reservation_id: NovaBool = False
    security_groups: list[SecurityGroupRef] | None = None
    user_data: UserData = None
    description: ServerDescription = None  # 2.19+
    tags: Tags | None = None  # 2.52+
    trusted_image_certificates: list[AnyString] | None = None  # 2.63+, accepted and not enforced
    host: AnyString | None = None  # 2.74+
    hypervisor_hostname: AnyString | None = None  # 2.74+
    hostname: AnyString | None = None  # 2.90+


class ServerCreateBody(Strict):
    server: ServerCreate
    os_hints: Hints | None = Field(None, alias="os:scheduler_hints")
    hints: Hints | None = Field(None, alias="OS-SCH-HNT:scheduler_hints")


class ServerUpdate(Strict):
    name: Name | None = None
    disk_config: DiskConfig | None = Field(None, alias="OS-DCF:diskConfig")
    access_ip_v4: IPv4 | None = Field(None, alias="accessIPv4")
    access_ip_v6: IPv6 | None = Field(None, alias="accessIPv6")
    description: ServerDescription = None  # 2.19+
    hostname: AnyString | None = None  # 2.90+


class ServerUpdateBody(Strict):
    server: ServerUpdate


class Rebuild(Strict):
    image_ref: Uuid = Field(alias="imageRef")
    name: Name | None = None
    admin_pass: AnyString | None = Field(None, alias="adminPass")
    metadata: Metadata | None = None
    preserve_ephemeral: NovaBool = False
    disk_config: DiskConfig | None = Field(None, alias="OS-DCF:diskConfig")
    access_ip_v4: IPv4 | None = Field(None, alias="accessIPv4")
    access_ip_v6: IPv6 | None = Field(None, alias="accessIPv6")
    personality: list[Any] | None = None  # below 2.57
    description: ServerDescription = None  # 2.19+
    key_name: Name | None = None  # 2.54+ (null removes the key)
    user_data: UserData = None  # 2.57+ (null removes it)
    trusted_image_certificates: list[AnyString] | None = None  # 2.63+
    hostname: AnyString | None = None  # 2.90+


class RebuildBody(Strict):
    rebuild: Rebuild


class MetadataBody(Strict):
    metadata: Metadata


def _one_item(value: Any) -> dict[str, str]:
    if isinstance(value, dict) and len(value) < 1:
        raise invalid(f"{value} does not have enough properties")
    if isinstance(value, dict) and len(value) > 1:
        raise invalid(f"{value} has too many properties")
    return _metadata(value)


class MetaItemBody(Strict):
    meta: Annotated[dict[str, str], BeforeValidator(_one_item)]


class TagsBody(Strict):
    tags: Tags


# ----------------------------------------------------------------------------- version-dependent rules

def check_hostname(value: str, fqdn: bool) -> None:
    """2.90 takes an RFC 952 host label (2-63), 2.94 an FQDN-ish string (1-255)."""
    low, high, pattern = (1, 255, FQDN) if fqdn else (2, 63, HOSTNAME_V290)
    if len(value) < low:
        reason = f"'{value}' is too short"
    elif len(value) > high:
        reason = f"'{value}' is too long"
    elif not re.match(pattern, value):
        reason = f"'{value}' does not match '{pattern}'"
    else:
        return
    raise errors.ValidationError(f"Invalid input for field/attribute hostname. Value: {value}. {reason}")


def check_networks(value: Any, v237: bool, tags_allowed: bool) -> list[dict[str, Any]] | str | None:
    """``networks`` as Nova's schemas and ``_get_requested_networks`` check it.

    From 2.37 it is required and is either ``"auto"``/``"none"`` or a list
    whose ``uuid`` must be a uuid. Returns the list (or string) to store.
    """
    if value is None:
        if v237:
            raise errors.ValidationError("'networks' is a required property")
        return None
    not_valid = f"Invalid input for field/attribute networks. Value: {value}. {_show(value)} is not valid under " \
                "any of the given schemas"
    if isinstance(value, str):
        if v237 and value in ("auto", "none"):
            return value
        raise errors.ValidationError(not_valid if v237 else
                                     f"Invalid input for field/attribute networks. Value: {value}. "
                                     f"{_show(value)} is not of type 'array'")
    if not isinstance(value, list):
        raise errors.ValidationError(not_valid)
    allowed = {"fixed_ip", "port", "uuid"} | ({"tag"} if tags_allowed else set())
    for item in value:
        if not isinstance(item, dict) or set(item) - allowed:
            raise errors.ValidationError(not_valid if v237 else "Additional properties are not allowed "
                                         f"('{sorted(set(item) - allowed)[0] if isinstance(item, dict) else item}'"
                                         " was unexpected)")
        if v237 and "uuid" in item and not is_uuid_like(item["uuid"]):
            raise errors.ValidationError(not_valid)
    return _requested_networks(value)


def _requested_networks(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nova's ``_get_requested_networks``: one port once, no fixed IP with a port, network uuids well formed."""
    ports: list[str] = []
    for item in value:
        port, address = item.get("port"), item.get("fixed_ip")
        if port:
            if port in ports:
                raise errors.BadRequest(f"Port ID '{port}' was specified twice: you cannot attach a port "
                                        "multiple times.")
            if address is not None:
                raise errors.BadRequest(f"Specified Fixed IP '{address}' cannot be used with port '{port}': the "
                                        "two cannot be specified together.")
            ports.append(port)
            continue
        if "uuid" not in item:
            raise errors.BadRequest("Bad network format: missing 'uuid'")
        if not is_uuid_like(item["uuid"]):
            raise errors.BadRequest("Bad networks format: network uuid is not in proper format "
                                    f"({item['uuid']})")
    return [dict(item) for item in value]


# ----------------------------------------------------------------------------- list query parameters

#: Nova's ``index_query`` properties (2.1), then what 2.26, 2.66 and 2.73 add; 2.75 refuses anything else.
QUERY_PARAMS = frozenset({
    "user_id", "project_id", "tenant_id", "launch_index", "image_ref", "image", "kernel_id", "ramdisk_id",
    "hostname", "key_name", "power_state", "vm_state", "task_state", "host", "node", "flavor", "reservation_id",
    "launched_at", "terminated_at", "availability_zone", "name", "display_name", "description",
    "display_description", "locked_by", "uuid", "root_device_name", "config_drive", "access_ip_v4",
    "access_ip_v6", "auto_disk_config", "progress", "sort_key", "sort_dir", "all_tenants", "soft_deleted",
    "deleted", "status", "changes-since", "ip", "ip6", "created_at", "block_device_mapping", "services",
    "metadata", "system_metadata", "info_cache", "security_groups", "pci_devices", "limit", "marker",
    "tags", "tags-any", "not-tags", "not-tags-any", "changes-before", "locked"})
#: Filters that would need joined tables: Nova refuses them (``Invalid filter field``).
JOINED_FILTERS = frozenset({"block_device_mapping", "services", "metadata", "system_metadata", "info_cache",
                            "security_groups", "pci_devices"})
#: Filters matched as regular expressions (``re.search``), Nova's non-exact filters that have a column.
REGEX_FILTER_NAMES = frozenset({"display_name", "display_description", "hostname", "key_name", "reservation_id",
                                "availability_zone", "node", "access_ip_v4", "access_ip_v6", "locked_by",
                                "power_state", "progress", "launch_index", "config_drive"})
PAGING_SORTING = ("sort_key", "sort_dir", "limit", "marker")
TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")
#: Nova's ``SERVER_LIST_IGNORE_SORT_KEY``: accepted (below 2.75) and ignored.
IGNORED_SORT_KEYS = ("architecture", "cell_name", "cleaned", "default_ephemeral_device", "default_swap_device",
                     "deleted", "deleted_at", "disable_terminate", "ephemeral_gb", "ephemeral_key_uuid", "id",
                     "key_data", "launched_on", "locked", "memory_mb", "os_type", "reservation_id", "root_gb",
                     "shutdown_terminate", "user_data", "vcpus", "vm_mode")
SORT_KEYS = ("access_ip_v4", "access_ip_v6", "auto_disk_config", "availability_zone", "config_drive",
             "created_at", "display_description", "display_name", "host", "hostname", "image_ref",
             "instance_type_id", "kernel_id", "key_name", "launch_index", "launched_at", "locked_by", "node",
             "power_state", "progress", "project_id", "ramdisk_id", "root_device_name", "task_state",
             "terminated_at", "updated_at", "user_id", "uuid", "vm_state")
_TRUE = ("1", "t", "true", "on", "y", "yes")
_FALSE = ("0", "f", "false", "off", "n", "no")


def non_admin_filters(v: Callable[[str], bool]) -> set[str]:
    """Nova's ``_get_server_search_options``: what a caller without ``allow_all_filters`` may filter by."""
    names = {"reservation_id", "name", "status", "image", "flavor", "ip", "changes-since", "all_tenants"}
    for version, added in (("2.5", ("ip6",)), ("2.26", TAG_FILTERS), ("2.66", ("changes-before",)),
                           ("2.73", ("locked",)),
                           ("2.83", ("availability_zone", "config_drive", "key_name", "created_at", "launched_at",
                                     "terminated_at", "power_state", "task_state", "vm_state", "progress",
                                     "user_id")),
                           ("2.90", ("hostname",))):
        if v(version):
            names.update(added)
    return names


def bool_from_string(value: str, *, strict: bool) -> bool:
    """oslo's ``strutils.bool_from_string``; strict mode raises Nova's InvalidInput (400)."""
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE or not strict:
        return False
    accepted = ", ".join(f"'{x}'" for x in sorted(_TRUE + _FALSE))
    raise errors.BadRequest(f"Invalid input received: Unrecognized value '{value}', acceptable values are: "
                            f"{accepted}")


def parse_time(name: str, value: str) -> dt.datetime:
    """An ISO 8601 ``date-time`` query parameter, as UTC (naive means UTC, as oslo's ``parse_isotime``)."""
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise errors.BadRequest(f"Invalid input for query parameters {name}. Value: {value}. "
                                f"'{value}' is not a 'date-time'") from None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def regex(name: str, value: str) -> re.Pattern[str]:
    try:
        return re.compile(value)
    except re.error:
        raise errors.BadRequest(f"Invalid input for query parameters {name}. Value: {value}. "
                                f"'{value}' is not a 'regex'") from None


def sort_params(keys: list[str], dirs: list[str], v: Callable[[str], bool],
                is_admin: bool) -> tuple[list[str], list[str]]:
    """Nova's ``get_sort_params`` + ``remove_invalid_sort_keys`` + ``process_sort_params``.

    Keys outside the version's enum are a 400; ignored keys (and keys Kumo
    has no column for) are dropped with their direction; ``host``/``node``
    are admin-only (403). Missing directions repeat the first one.
    """
    ignored = [k for k in IGNORED_SORT_KEYS if not (k == "locked" and v("2.73"))]
    valid = list(SORT_KEYS) + (["locked"] if v("2.73") else []) + ([] if v("2.75") else ignored)
    for key in keys:
        if key not in valid:
            raise errors.BadRequest(f"Invalid input for query parameters sort_key. Value: {key}. "
                                    f"'{key}' is not one of {valid}")
    kept_keys: list[str] = []
    dropped: set[int] = set()
    for i, key in enumerate(keys):
        if key in ignored or key in ("auto_disk_config", "instance_type_id", "kernel_id", "ramdisk_id",
                                     "root_device_name"):
            dropped.add(i)
            continue
        if key in ("host", "node") and not is_admin:
            raise errors.Forbidden(f"Only administrators can sort servers by {key}")
        kept_keys.append(key)
    kept_dirs = [d for i, d in enumerate(dirs) if i not in dropped]
    if not keys:
        kept_keys = ["created_at"]
        kept_dirs = dirs[:1] or ["desc"]
    if len(kept_dirs) > len(kept_keys):
        raise errors.BadRequest("Invalid input received: Sort direction size exceeds sort key size")
    for direction in kept_dirs:
        if direction not in ("asc", "desc"):
            raise errors.BadRequest("Invalid input received: Unknown sort direction, must be 'desc' or 'asc'")
    default = kept_dirs[0] if kept_dirs else (dirs[0] if dirs else "desc")
    kept_dirs += [default] * (len(kept_keys) - len(kept_dirs))
    return kept_keys, kept_dirs
