"""Limit/marker pagination and sorting, as the OpenStack list APIs do it.

OpenStack lists are paged by ``?limit=N&marker=<id of the last item seen>``
(Nova, Cinder, Glance, Neutron, Keystone's few paged lists), never by
offset, so a page stays stable while rows are added. A full page carries a
``next`` link whose query is the request's own with the marker moved on.
Sorting uses Nova/Cinder's repeatable ``sort_key``/``sort_dir`` or the
``sort=key:dir,key2`` form of Cinder, Glance and Manila.

The query may be a plain mapping, a Starlette ``QueryParams`` (anything with
``getlist``) or a list of ``(name, value)`` pairs; the last two keep
repeated parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from kumo.core.errors import BadRequest

Query = Mapping[str, Any] | Sequence[tuple[str, str]]

SORT_DIRS = ("asc", "desc")


@dataclass(frozen=True)
class Page:
    """The requested page: ``limit`` None means "no limit asked for"."""

    limit: int | None = None
    marker: str | None = None


def _getlist(query: Query, name: str) -> list[str]:
    """Every value of ``name`` in ``query``, in order."""
    getlist = getattr(query, "getlist", None)
    if getlist is not None:
        return [str(v) for v in getlist(name)]
    if isinstance(query, Mapping):
        value = query.get(name)
        if value is None:
            return []
        if isinstance(value, (list, tuple)):
            return [str(v) for v in value]
        return [str(value)]
    return [str(v) for k, v in query if k == name]


def _items(query: Query) -> list[tuple[str, str]]:
    """``query`` as ordered ``(name, value)`` pairs, repeated names kept."""
    multi_items = getattr(query, "multi_items", None)
    if multi_items is not None:
        return [(str(k), str(v)) for k, v in multi_items()]
    if isinstance(query, Mapping):
        pairs: list[tuple[str, str]] = []
        for k, v in query.items():
            values: Iterable[Any] = v if isinstance(v, (list, tuple)) else [v]
            pairs.extend((str(k), str(x)) for x in values)
        return pairs
    return [(str(k), str(v)) for k, v in query]


def parse_page(query: Query, *, max_limit: int = 1000) -> Page:
    """Read ``limit`` and ``marker``; ``limit`` must be a non-negative integer.

    A limit above ``max_limit`` is silently capped, as Nova's
    ``osapi_max_limit``; an empty marker counts as no marker. Errors use
    Nova's wording (``limit param must be an integer`` / ``... positive``).
    """
    limits = _getlist(query, "limit")
    limit: int | None = None
    if limits:
        raw = limits[-1].strip()
        try:
            limit = int(raw)
        except ValueError:
            raise BadRequest("limit param must be an integer") from None
        if limit < 0:
            raise BadRequest("limit param must be positive")
        limit = min(limit, max_limit)
    markers = _getlist(query, "marker")
    marker = markers[-1] if markers and markers[-1] != "" else None
    return Page(limit=limit, marker=marker)


def next_link(
    base_url: str,
    query: Query,
    items: Sequence[Mapping[str, Any]],
    page: Page,
    key: str = "id",
) -> str | None:
    """URL of the next page, or None when this page was not full.

    A page is full when a limit was asked for and exactly that many items
    came back (Nova's ``_get_next_link`` rule); the next page repeats the
    request's query with ``marker`` set to the last item's ``key``. Any query
    string already on ``base_url`` is replaced by ``query``.
    """
    if page.limit is None or not items or len(items) != page.limit:
        return None
    marker = items[-1][key]
    pairs = [(k, v) for k, v in _items(query) if k != "marker"]
    pairs.append(("marker", str(marker)))
    scheme, netloc, path, _query, _fragment = urlsplit(base_url)
    return urlunsplit((scheme, netloc, path, urlencode(pairs), ""))


def sort_params(
    query: Query,
    allowed_keys: Iterable[str],
    default_key: str,
    default_dir: str = "desc",
) -> list[tuple[str, str]]:
    """``(key, dir)`` pairs from ``sort_key``/``sort_dir`` or ``sort=key:dir,...``.

    Follows Nova's ``process_sort_params``: directions missing for later
    ``sort_key``s take the first given direction (else ``default_dir``), more
    ``sort_dir``s than keys is an error, and ``default_key`` is appended when
    absent so that marker paging has a stable order. In the ``sort=`` form
    (Cinder, Glance) a key without ``:dir`` takes ``default_dir``. Mixing the
    two forms is rejected, as Cinder does. Unknown keys or directions are 400.
    """
    allowed = set(allowed_keys) | {default_key}
    keys = [k.strip() for k in _getlist(query, "sort_key")]
    dirs = [d.strip() for d in _getlist(query, "sort_dir")]
    sorts = _getlist(query, "sort")
    if sorts and (keys or dirs):
        raise BadRequest("The 'sort_key' and 'sort_dir' parameters cannot be used with the 'sort' parameter.")

    pairs: list[tuple[str, str]] = []
    if sorts:
        for spec in ",".join(sorts).split(","):
            spec = spec.strip()
            if not spec:
                continue
            key, _sep, direction = spec.partition(":")
            pairs.append((key.strip(), direction.strip() or default_dir))
        first_dir = default_dir
    else:
        if len(dirs) > len(keys):
            raise BadRequest("Sort direction size exceeds sort key size")
        first_dir = dirs[0] if dirs else default_dir
        dirs += [first_dir] * (len(keys) - len(dirs))
        pairs = list(zip(keys, dirs))

    for key, direction in pairs:
        if key not in allowed:
            raise BadRequest(f"Invalid sort key: {key}")
        if direction not in SORT_DIRS:
            raise BadRequest(f"Invalid sort direction: {direction}. Valid values are 'asc' and 'desc'.")
    if first_dir not in SORT_DIRS:
        raise BadRequest(f"Invalid sort direction: {first_dir}. Valid values are 'asc' and 'desc'.")
    if default_key not in {k for k, _ in pairs}:
        pairs.append((default_key, first_dir))
    return pairs
