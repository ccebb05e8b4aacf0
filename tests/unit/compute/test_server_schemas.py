"""Pure rules of the servers API: networks, hostnames, sort parameters, query booleans and times."""

from __future__ import annotations

import datetime as dt

import pytest

from kumo.compute.api.server_schemas import (
    bool_from_string,
    check_hostname,
    check_networks,
    is_uuid_like,
    parse_time,
    sort_params,
)
from kumo.core import errors

NET = "3f1a5c0e-6d2b-4b8e-9d8f-1f2e3d4c5b6a"


def versions(upto: str):  # type: ignore[no-untyped-def]
    def at_least(v: str) -> bool:
        return tuple(map(int, v.split("."))) <= tuple(map(int, upto.split(".")))
    return at_least


def test_uuid_like_accepts_what_oslo_accepts() -> None:
    assert is_uuid_like(NET) and is_uuid_like(NET.upper()) and is_uuid_like(NET.replace("-", ""))
    assert not is_uuid_like("nope") and not is_uuid_like(None) and not is_uuid_like(NET + "0")


def test_networks_before_and_from_237() -> None:
    assert check_networks(None, v237=False, tags_allowed=False) is None
    assert check_networks([{"uuid": NET}], v237=False, tags_allowed=False) == [{"uuid": NET}]
    assert check_networks("auto", v237=True, tags_allowed=False) == "auto"
    with pytest.raises(errors.ValidationError, match="'networks' is a required property"):
        check_networks(None, v237=True, tags_allowed=False)
    with pytest.raises(errors.ValidationError, match="not of type 'array'"):
        check_networks("auto", v237=False, tags_allowed=False)
    with pytest.raises(errors.ValidationError, match="'tag' was unexpected"):
        check_networks([{"uuid": NET, "tag": "t"}], v237=False, tags_allowed=False)
    assert check_networks([{"uuid": NET, "tag": "t"}], v237=True, tags_allowed=True) == [{"uuid": NET, "tag": "t"}]


def test_network_ports_and_fixed_ips() -> None:
    port = "6a0f6d62-8f5e-4d4a-9b1e-0a2b3c4d5e6f"
    with pytest.raises(errors.BadRequest, match="was specified twice"):
        check_networks([{"port": port}, {"port": port}], v237=True, tags_allowed=False)
    with pytest.raises(errors.BadRequest, match="cannot be used with port"):
        check_networks([{"port": port, "fixed_ip": "10.0.0.3"}], v237=True, tags_allowed=False)


@pytest.mark.parametrize(("value", "fqdn", "ok"), [
    ("web-1", False, True), ("w", False, False), ("-web", False, False), ("a" * 64, False, False),
    ("web.example.org", False, False), ("web.example.org", True, True), ("web_1", True, True),
    ("bad host", True, False)])
def test_hostnames(value: str, fqdn: bool, ok: bool) -> None:
    if ok:
        check_hostname(value, fqdn)
    else:
        with pytest.raises(errors.ValidationError, match="field/attribute hostname"):
            check_hostname(value, fqdn)


def test_sort_params_defaults_padding_and_ignored_keys() -> None:
    assert sort_params([], [], versions("2.1"), False) == (["created_at"], ["desc"])
    assert sort_params([], ["asc"], versions("2.1"), False) == (["created_at"], ["asc"])
    assert sort_params(["display_name", "uuid"], ["asc"], versions("2.1"), False) == \
        (["display_name", "uuid"], ["asc", "asc"])
    assert sort_params(["vcpus", "display_name"], ["desc", "asc"], versions("2.1"), False) == \
        (["display_name"], ["asc"])
    assert sort_params(["locked"], [], versions("2.73"), False) == (["locked"], ["desc"])
    with pytest.raises(errors.BadRequest, match="'vcpus' is not one of"):
        sort_params(["vcpus"], [], versions("2.75"), False)
    with pytest.raises(errors.Forbidden, match="by node"):
        sort_params(["node"], [], versions("2.1"), False)
    assert sort_params(["node"], [], versions("2.1"), True) == (["node"], ["desc"])
    with pytest.raises(errors.BadRequest, match="Sort direction size exceeds sort key size"):
        sort_params(["uuid"], ["asc", "desc"], versions("2.1"), False)


def test_bool_from_string() -> None:
    assert bool_from_string("Yes", strict=True) and not bool_from_string("off", strict=True)
    assert bool_from_string("junk", strict=False) is False
    with pytest.raises(errors.BadRequest, match="Unrecognized value 'junk'"):
        bool_from_string("junk", strict=True)


def test_parse_time() -> None:
    utc = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    assert parse_time("changes-since", "2024-05-01T12:00:00Z") == utc
    assert parse_time("changes-since", "2024-05-01T12:00:00") == utc
    assert parse_time("changes-since", "2024-05-01T14:00:00+02:00") == utc
    with pytest.raises(errors.BadRequest, match="is not a 'date-time'"):
        parse_time("changes-since", "yesterday")
