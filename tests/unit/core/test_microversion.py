"""Unit tests for kumo.core.microversion."""

from __future__ import annotations

import pytest

from kumo.core.errors import BadRequest, NotAcceptable
from kumo.core.microversion import NULL_VERSION, APIVersion, negotiate, requested_version, response_headers

MIN = APIVersion(2, 1)
MAX = APIVersion(2, 79)
LEGACY = "X-OpenStack-Nova-API-Version"


@pytest.mark.parametrize("text,expected", [("2.1", (2, 1)), ("2.0", (2, 0)), ("2.79", (2, 79)), ("10.123", (10, 123))])
def test_parse_valid(text, expected):
    v = APIVersion.parse(text)
    assert (v.major, v.minor) == expected
    assert str(v) == text


@pytest.mark.parametrize(
    "text", ["2", "2.01x", "-2.1", "2.-1", "2.01", "02.1", "0.1", "", "2.1.1", " 2.1", "a.b", "latest"]
)
def test_parse_invalid(text):
    with pytest.raises(ValueError):
        APIVersion.parse(text)


def test_ordering_and_null():
    assert APIVersion(2, 10) > APIVersion(2, 9)
    assert APIVersion(3, 0) > APIVersion(2, 99)
    assert sorted([APIVersion(2, 10), APIVersion(2, 2)]) == [APIVersion(2, 2), APIVersion(2, 10)]
    assert NULL_VERSION.is_null and APIVersion(0, 0).is_null
    assert not MIN.is_null
    assert APIVersion(2, 5).matches(MIN, NULL_VERSION)
    assert APIVersion(2, 5).matches(NULL_VERSION, APIVersion(2, 5))
    assert not APIVersion(2, 6).matches(MIN, APIVersion(2, 5))
    with pytest.raises(AttributeError):
        MIN.major = 3  # type: ignore[misc]


def test_absent_header_gives_minimum():
    assert negotiate({}, "compute", MIN, MAX) == MIN
    assert negotiate({"OpenStack-API-Version": "volume 3.2"}, "compute", MIN, MAX) == MIN


def test_standard_header():
    assert negotiate({"OpenStack-API-Version": "compute 2.5"}, "compute", MIN, MAX) == APIVersion(2, 5)
    assert negotiate({"openstack-api-version": "COMPUTE 2.6"}, "compute", MIN, MAX) == APIVersion(2, 6)
    assert negotiate({"OpenStack-API-Version": "compute 2.5"}, "Compute", MIN, MAX) == APIVersion(2, 5)


def test_several_services_in_header():
    h = {"OpenStack-API-Version": "compute 2.5, volume 3.2"}
    assert negotiate(h, "compute", MIN, MAX) == APIVersion(2, 5)
    assert negotiate(h, "volume", APIVersion(3, 0), APIVersion(3, 60)) == APIVersion(3, 2)
    # last entry for the service wins, as microversion_parse
    h = {"OpenStack-API-Version": "compute 2.5,compute 2.7"}
    assert negotiate(h, "compute", MIN, MAX) == APIVersion(2, 7)


def test_repeated_header_lines_are_folded():
    class MultiHeaders(dict):
        def items(self):
            return [("OpenStack-API-Version", "volume 3.2"), ("openstack-api-version", "compute 2.9")]

    assert negotiate(MultiHeaders(), "compute", MIN, MAX) == APIVersion(2, 9)


def test_latest():
    assert negotiate({"OpenStack-API-Version": "compute latest"}, "compute", MIN, MAX) == MAX
    assert negotiate({LEGACY: "latest"}, "compute", MIN, MAX, legacy_header=LEGACY) == MAX


def test_legacy_header_fallback():
    h = {"x-openstack-nova-api-version": "2.5"}
    assert negotiate(h, "compute", MIN, MAX, legacy_header=LEGACY) == APIVersion(2, 5)
    # ignored when the service has no legacy header
    assert negotiate(h, "compute", MIN, MAX) == MIN
    # the standard header wins over the legacy one
    h = {LEGACY: "2.5", "OpenStack-API-Version": "compute 2.8"}
    assert negotiate(h, "compute", MIN, MAX, legacy_header=LEGACY) == APIVersion(2, 8)
    # standard header for another service only: legacy still consulted
    h = {LEGACY: "2.5", "OpenStack-API-Version": "volume 3.1"}
    assert negotiate(h, "compute", MIN, MAX, legacy_header=LEGACY) == APIVersion(2, 5)
    assert requested_version({LEGACY: "2.3, 2.4"}, "compute", LEGACY) == "2.4"


@pytest.mark.parametrize("value", ["compute 2", "compute 2.01x", "compute -2.1", "compute abc"])
def test_malformed_is_400(value):
    with pytest.raises(BadRequest) as exc:
        negotiate({"OpenStack-API-Version": value}, "compute", MIN, MAX)
    assert exc.value.status == 400
    requested = value.split()[1]
    assert exc.value.message == (
        f"API Version String {requested} is of invalid format. Must be of format MajorNum.MinorNum."
    )


@pytest.mark.parametrize("value", ["2.0", "2.80", "3.0", "1.5"])
def test_out_of_range_is_406(value):
    with pytest.raises(NotAcceptable) as exc:
        negotiate({"OpenStack-API-Version": f"compute {value}"}, "compute", MIN, MAX)
    assert exc.value.status == 406
    assert exc.value.message == f"Version {value} is not supported by the API. Minimum is 2.1 and maximum is 2.79."


def test_bounds_are_inclusive():
    assert negotiate({"OpenStack-API-Version": "compute 2.1"}, "compute", MIN, MAX) == MIN
    assert negotiate({"OpenStack-API-Version": "compute 2.79"}, "compute", MIN, MAX) == MAX


def test_response_headers():
    assert response_headers("compute", APIVersion(2, 79)) == {
        "OpenStack-API-Version": "compute 2.79",
        "Vary": "OpenStack-API-Version",
    }
    assert response_headers("compute", APIVersion(2, 5), legacy_header=LEGACY) == {
        "OpenStack-API-Version": "compute 2.5",
        LEGACY: "2.5",
        "Vary": f"OpenStack-API-Version, {LEGACY}",
    }
