"""Unit tests for kumo.core.pagination."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from starlette.datastructures import QueryParams

from kumo.core.errors import BadRequest
from kumo.core.pagination import Page, next_link, parse_page, sort_params

# ------------------------------------------------------------------ parse_page


def test_parse_page_defaults():
    assert parse_page({}) == Page(limit=None, marker=None)


def test_parse_page_values():
    assert parse_page({"limit": "10", "marker": "abc"}) == Page(10, "abc")
    assert parse_page({"limit": "0"}) == Page(0, None)
    assert parse_page({"marker": ""}) == Page(None, None)


def test_parse_page_caps_limit():
    assert parse_page({"limit": "5000"}) == Page(1000, None)
    assert parse_page({"limit": "50"}, max_limit=20).limit == 20


@pytest.mark.parametrize("value", ["abc", "1.5", "", "10x"])
def test_parse_page_non_integer(value):
    with pytest.raises(BadRequest, match="limit param must be an integer"):
        parse_page({"limit": value})


def test_parse_page_negative():
    with pytest.raises(BadRequest, match="limit param must be positive") as exc:
        parse_page({"limit": "-1"})
    assert exc.value.status == 400


def test_parse_page_multi_sources():
    assert parse_page(QueryParams("limit=3&marker=m1")) == Page(3, "m1")
    assert parse_page([("limit", "4"), ("marker", "m2")]) == Page(4, "m2")


def test_page_is_frozen():
    with pytest.raises(AttributeError):
        Page(1, None).limit = 2  # type: ignore[misc]


# ------------------------------------------------------------------- next_link

ITEMS = [{"id": "a"}, {"id": "b"}, {"id": "c"}]


def test_next_link_full_page():
    link = next_link("http://h/v2.1/servers", {"limit": "3", "name": "x y"}, ITEMS, Page(3, None))
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "h", "/v2.1/servers")
    assert parse_qsl(parts.query) == [("limit", "3"), ("name", "x y"), ("marker", "c")]
    assert "name=x+y" in link


def test_next_link_replaces_marker_and_keeps_repeats():
    query = [("marker", "old"), ("limit", "3"), ("sort_key", "name"), ("sort_key", "id")]
    link = next_link("http://h/x", query, ITEMS, Page(3, "old"))
    expected = [("limit", "3"), ("sort_key", "name"), ("sort_key", "id"), ("marker", "c")]
    assert parse_qsl(urlsplit(link).query) == expected


def test_next_link_from_query_params_and_custom_key():
    items = [{"name": "n1", "id": 1}, {"name": "n&2", "id": 2}]
    link = next_link("http://h/x?ignored=1", QueryParams("limit=2&marker=z"), items, Page(2, "z"), key="name")
    assert parse_qsl(urlsplit(link).query) == [("limit", "2"), ("marker", "n&2")]
    assert "ignored" not in link


def test_no_next_link_when_not_full_or_unlimited():
    assert next_link("http://h/x", {"limit": "5"}, ITEMS, Page(5, None)) is None
    assert next_link("http://h/x", {}, ITEMS, Page(None, None)) is None
    assert next_link("http://h/x", {"limit": "0"}, [], Page(0, None)) is None


# ------------------------------------------------------------------ sort_params

ALLOWED = ["name", "created_at", "id", "status"]


def test_sort_default():
    assert sort_params({}, ALLOWED, "created_at") == [("created_at", "desc")]
    assert sort_params({}, ALLOWED, "id", "asc") == [("id", "asc")]


def test_sort_key_dir_pairs():
    q = [("sort_key", "name"), ("sort_dir", "asc"), ("sort_key", "status"), ("sort_dir", "desc")]
    assert sort_params(q, ALLOWED, "created_at") == [("name", "asc"), ("status", "desc"), ("created_at", "asc")]


def test_sort_key_missing_dirs_take_first_dir():
    q = QueryParams("sort_key=name&sort_key=status&sort_dir=asc")
    assert sort_params(q, ALLOWED, "id") == [("name", "asc"), ("status", "asc"), ("id", "asc")]
    assert sort_params({"sort_key": "name"}, ALLOWED, "id") == [("name", "desc"), ("id", "desc")]


def test_sort_default_key_not_duplicated():
    assert sort_params({"sort_key": "id", "sort_dir": "asc"}, ALLOWED, "id") == [("id", "asc")]


def test_sort_form():
    q = {"sort": "name:asc,status, created_at:desc"}
    assert sort_params(q, ALLOWED, "id") == [
        ("name", "asc"),
        ("status", "desc"),
        ("created_at", "desc"),
        ("id", "desc"),
    ]
    assert sort_params({"sort": "name"}, ALLOWED, "id", "asc") == [("name", "asc"), ("id", "asc")]


@pytest.mark.parametrize(
    "query",
    [
        {"sort_key": "password"},
        {"sort_key": "name", "sort_dir": "up"},
        {"sort_dir": "asc"},  # more dirs than keys
        {"sort_dir": "sideways"},
        {"sort": "bogus:asc"},
        {"sort": "name:ASC"},
        {"sort": "name:asc", "sort_key": "status"},
    ],
)
def test_sort_errors(query):
    with pytest.raises(BadRequest):
        sort_params(query, ALLOWED, "created_at")
