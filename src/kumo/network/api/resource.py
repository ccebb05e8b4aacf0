"""Neutron's attribute-map API in small: one table of attributes per resource drives every route.

Neutron's v2 API is generated from each resource's ``RESOURCE_ATTRIBUTE_MAP``
(which attributes a POST may carry, which a PUT may change, defaults,
validators, which need a policy check). Kumo keeps that idea, so networks,
subnets, ports and security groups answer bad input, ``fields=``, filters,
sorting and pagination the same way, with Neutron's messages:

* a body must be ``{"<resource>": {...}}`` ("Unable to find 'network' in
  request body"); unknown keys are "Unrecognized attribute(s) 'x'"; a
  read-only key is "Attribute 'x' not allowed in POST" / "Cannot update
  read-only attribute x"; a missing required one "Failed to parse request.
  Required attribute 'x' not specified"; a bad value "Invalid input for x.
  Reason: ..." - all 400;
* list queries filter on any visible attribute (repeated values are "any
  of"), unknown ones are 400 "[x] is invalid attribute for filtering";
  ``fields`` keeps only the named keys; ``sort_key``/``sort_dir`` pairs;
  ``limit``/``marker`` with ``<collection>_links`` next/previous hrefs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from kumo.network.errors import BadRequest, BadResourceRequest, InvalidInput, NotFound

MISSING: Any = object()
Converter = Callable[[Any], Any]


@dataclass(frozen=True)
class Attr:
    """One attribute of a resource: who may set it, how it is checked, how a query filter parses."""

    post: bool = False
    put: bool = False
    required: bool = False
    default: Any = MISSING
    convert: Converter | None = None
    filter: Converter | None = None  # a query string value -> the attribute's type; None = compare as text
    policy: bool = False  # setting it needs the "<action>:<attr>" policy rule (admin-only attributes)
    filterable: bool = True


@dataclass(frozen=True)
class Resource:
    name: str  # "network"
    collection: str  # "networks"
    kind: str  # "Network": the NotFound type
    attrs: Mapping[str, Attr] = field(default_factory=dict)


# -- converters (Neutron's validators and convert_to_* helpers)

def to_bool(value: Any) -> bool:
    """Neutron's ``convert_to_boolean`` (oslo's strict ``bool_from_string``); InvalidInput otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "t", "y", "on"):
        return True
    if isinstance(value, str) and value.lower() in ("false", "0", "no", "f", "n", "off"):
        return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise InvalidInput(f"'{value}' cannot be converted to boolean")


def to_int(value: Any) -> int:
    """Neutron's ``convert_to_int``; InvalidInput otherwise."""
    if isinstance(value, bool):
        raise InvalidInput(f"'{value}' is not an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"'{value}' is not an integer") from None


def string(max_len: int = 255) -> Converter:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"'{value}' is not a valid string")
        if len(value) > max_len:
            raise ValueError(f"'{value}' exceeds maximum length of {max_len}")
        return value

    return check


def nullable(inner: Converter) -> Converter:
    return lambda value: None if value is None else inner(value)


def uuid_like(value: Any) -> str:
    import uuid

    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValueError(f"'{value}' is not a valid UUID") from None


def list_of(item: Converter) -> Converter:
    def check(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise ValueError(f"'{value}' is not a list")
        return [item(v) for v in value]

    return check


def one_of(*choices: Any) -> Converter:
    def check(value: Any) -> Any:
        if value not in choices:
            raise ValueError(f"'{value}' is not in {list(choices)}")
        return value

    return check


# -- bodies

def parse_body(resource: Resource, body: Any, *, create: bool) -> dict[str, Any]:
    """The resource's attributes from a POST/PUT body, converted, defaults filled on create."""
    if body is None:
        raise BadRequest("Resource body required")
    if not isinstance(body, dict):
        raise BadRequest("Body contains invalid data")
    if resource.name not in body:
        raise BadRequest(f"Unable to find '{resource.name}' in request body")
    if not isinstance(body[resource.name], dict):
        raise BadRequest(f"Object '{resource.name}' contains invalid data")
    given: dict[str, Any] = body[resource.name]
    unknown = [k for k in given if k not in resource.attrs]
    if unknown:
        raise BadRequest(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    values: dict[str, Any] = {}
    for key, value in given.items():
        attr = resource.attrs[key]
        if create and not attr.post:
            raise BadRequest(f"Attribute '{key}' not allowed in POST")
        if not create and not attr.put:
            raise BadRequest(f"Cannot update read-only attribute {key}")
        values[key] = convert(key, attr, value)
    if create:
        for key, attr in resource.attrs.items():
            if key in values or not attr.post:
                continue
            if attr.required:
                raise BadRequest(f"Failed to parse request. Required attribute '{key}' not specified")
            if attr.default is not MISSING:
                values[key] = attr.default() if callable(attr.default) else attr.default
    return values


def convert(key: str, attr: Attr, value: Any) -> Any:
    if attr.convert is None or value is None and attr.default is None:
        return value
    try:
        return attr.convert(value)
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"Invalid input for {key}. Reason: {exc}.") from None


# -- queries

@dataclass
class ListQuery:
    filters: dict[str, list[Any]]
    fields: list[str]
    sorts: list[tuple[str, bool]]  # (key, ascending)
    limit: int | None
    marker: str | None
    page_reverse: bool


CONTROL_PARAMS = {"fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse"}


def parse_query(resource: Resource, request: Request, extra_filters: tuple[str, ...] = ()) -> ListQuery:
    params = request.query_params
    filters: dict[str, list[Any]] = {}
    for key in dict.fromkeys(params.keys()):
        if key in CONTROL_PARAMS:
            continue
        attr = resource.attrs.get(key)
        if (attr is None or not attr.filterable) and key not in extra_filters:
            raise BadRequest(f"[{key!r}] is invalid attribute for filtering")
        values: list[Any] = []
        for raw in params.getlist(key):
            try:
                values.append(attr.filter(raw) if attr is not None and attr.filter is not None else raw)
            except (ValueError, TypeError) as exc:
                raise InvalidInput(str(exc)) from None
        filters[key] = values
    fields = list(dict.fromkeys(f for f in params.getlist("fields") if f))
    keys, dirs = params.getlist("sort_key"), params.getlist("sort_dir")
    if dirs and len(dirs) != len(keys):
        raise BadRequest("The number of sort_keys and sort_dirs must be same")
    sorts = []
    for i, key in enumerate(keys):
        if key not in resource.attrs:
            raise BadRequest(f"[{key!r}] is invalid attribute for sort_keys")
        direction = dirs[i] if dirs else "asc"
        if direction not in ("asc", "desc"):
            raise BadRequest(f"[{direction!r}] is invalid value for sort_dirs, valid value is 'asc' and 'desc'")
        sorts.append((key, direction == "asc"))
    limit = None
    if params.get("limit") not in (None, ""):
        raw = params["limit"]
        if not raw.isdigit():
            raise BadResourceRequest("limit", f"Limit must be an integer 0 or greater and not '{raw}'")
        limit = int(raw) or None
    reverse = to_bool(params.get("page_reverse", "false"))
    return ListQuery(filters, fields, sorts, limit, params.get("marker") or None, reverse)


def _matches(item: Mapping[str, Any], filters: Mapping[str, list[Any]]) -> bool:
    for key, wanted in filters.items():
        if key not in item:
            continue  # filters on attributes a view leaves out (handled by the service) match everything
        value = item[key]
        if isinstance(value, list) and any(isinstance(w, dict) for w in wanted):
            # fixed_ips=ip_address=10.0.0.5: an element holding every given key/value matches
            if not any(isinstance(w, dict) and any(isinstance(v, dict) and w.items() <= v.items() for v in value)
                       for w in wanted):
                return False
        elif isinstance(value, list):
            if not any(w in value or str(w) in map(str, value) for w in wanted):
                return False
        elif value not in wanted and str(value) not in map(str, wanted):
            return False
    return True


def _sort_value(value: Any) -> tuple[int, Any]:
    return (0, "") if value is None else (1, value if isinstance(value, (int, float, str)) else str(value))


def select(resource: Resource, items: list[dict[str, Any]], query: ListQuery, request: Request
           ) -> dict[str, Any]:
    """Filter, sort, page and trim ``items`` (already only what the caller may see); the collection body."""
    chosen = [item for item in items if _matches(item, query.filters)]
    sorts = query.sorts or [("id", True)]
    if query.limit is not None and all(key != "id" for key, _ in sorts):
        sorts = [*sorts, ("id", True)]  # a stable order for markers
    for key, ascending in reversed(sorts):
        chosen.sort(key=lambda item, k=key: _sort_value(item.get(k)), reverse=not ascending)
    links: list[dict[str, str]] = []
    if query.limit is not None or query.marker is not None:
        chosen, links = _page(resource, chosen, query, request)
    body: dict[str, Any] = {resource.collection: [trim(item, query.fields) for item in chosen]}
    if links:
        body[f"{resource.collection}_links"] = links
    return body


def _page(resource: Resource, items: list[dict[str, Any]], query: ListQuery, request: Request
          ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    ids = [item["id"] for item in items]
    if query.marker is not None and query.marker not in ids:
        raise NotFound(resource.kind, query.marker)
    at = ids.index(query.marker) if query.marker is not None else None
    if query.page_reverse:
        end = at if at is not None else len(items)
        start = max(0, end - query.limit) if query.limit is not None else 0
    else:
        start = at + 1 if at is not None else 0
        end = start + query.limit if query.limit is not None else len(items)
    page = items[start:end]
    links = []
    if page and query.limit is not None:
        base = str(request.url.replace(query=""))
        params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("marker", "page_reverse")]
        full = len(page) == query.limit
        if full or query.page_reverse:
            links.append({"rel": "next", "href": f"{base}?{urlencode([*params, ('marker', page[-1]['id'])])}"})
        if (full or not query.page_reverse) and (start > 0 or query.marker is not None):
            previous = [*params, ("marker", page[0]["id"]), ("page_reverse", "True")]
            links.append({"rel": "previous", "href": f"{base}?{urlencode(previous)}"})
    return page, links


def trim(item: Mapping[str, Any], fields: list[str]) -> dict[str, Any]:
    if not fields:
        return dict(item)
    return {k: item[k] for k in fields if k in item}
