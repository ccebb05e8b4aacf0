"""Version discovery and microversion negotiation of the compute API (Nova v2.1, 2.1 to 2.96)."""

from __future__ import annotations

import pytest
from computetest import ComputeEnv, fault

VERSION_HEADERS = ("OpenStack-API-Version", "X-OpenStack-Nova-API-Version")


async def test_version_list_and_document_need_no_token(env: ComputeEnv) -> None:
    r = await env.client.get("/compute/")
    assert r.status_code == 200
    [v21] = r.json()["versions"]
    assert (v21["id"], v21["status"], v21["min_version"], v21["version"]) == ("v2.1", "CURRENT", "2.1", "2.96")
    assert v21["links"] == [{"rel": "self", "href": "http://kumo.test/compute/v2.1/"}]
    for path in ("/compute/v2.1", "/compute/v2.1/", "/compute"):
        r = await env.client.get(path)
        assert r.status_code == 200, path
    r = await env.client.get("/compute/v2.1")
    doc = r.json()["version"]
    assert doc["version"] == "2.96" and doc["min_version"] == "2.1"
    assert doc["links"][0] == {"rel": "self", "href": "http://kumo.test/compute/v2.1/"}
    assert doc["media-types"][0]["type"] == "application/vnd.openstack.compute+json;version=2.1"


async def test_catalog_points_at_v21(env: ComputeEnv) -> None:
    admin = await env.admin()
    r = await env.client.get("/identity/v3/auth/catalog", headers=admin.headers)
    [compute] = [s for s in r.json()["catalog"] if s["type"] == "compute"]
    assert compute["name"] == "nova"
    assert {e["url"] for e in compute["endpoints"]} == {"http://127.0.0.1:8080/compute/v2.1"}


async def test_no_header_means_minimum(env: ComputeEnv) -> None:
    r = await env.call(await env.admin(), "GET", "/flavors")
    assert r.headers["OpenStack-API-Version"] == "compute 2.1"
    assert r.headers["X-OpenStack-Nova-API-Version"] == "2.1"
    assert "OpenStack-API-Version" in r.headers["Vary"] and "X-OpenStack-Nova-API-Version" in r.headers["Vary"]


@pytest.mark.parametrize(("sent", "served"), [("latest", "2.96"), ("2.55", "2.55"), ("2.1", "2.1"),
                                              ("2.96", "2.96"), ("LATEST", "2.96")])
async def test_requested_version_is_served_and_echoed(env: ComputeEnv, sent: str, served: str) -> None:
    r = await env.call(await env.admin(), "GET", "/flavors", version=sent)
    assert r.headers["OpenStack-API-Version"] == f"compute {served}"
    assert r.headers["X-OpenStack-Nova-API-Version"] == served


async def test_legacy_header_is_honoured(env: ComputeEnv) -> None:
    r = await env.call(await env.admin(), "GET", "/flavors/1", headers={"X-OpenStack-Nova-API-Version": "2.55"})
    assert r.headers["OpenStack-API-Version"] == "compute 2.55"
    assert "description" in r.json()["flavor"]
    # The standard header wins over the legacy one; other services' entries are ignored.
    r = await env.call(await env.admin(), "GET", "/flavors/1", headers={
        "X-OpenStack-Nova-API-Version": "2.55", "OpenStack-API-Version": "volume 3.5, compute 2.3"})
    assert r.headers["OpenStack-API-Version"] == "compute 2.3"


@pytest.mark.parametrize("sent", ["2.97", "3.0", "2.0", "1.1"])
async def test_out_of_range_is_406(env: ComputeEnv, sent: str) -> None:
    r = await env.call(await env.admin(), "GET", "/flavors", version=sent, expect=406)
    message = fault(r, "computeFault", 406)
    assert message == f"Version {sent} is not supported by the API. Minimum is 2.1 and maximum is 2.96."


@pytest.mark.parametrize("sent", ["2", "2.x", "two", "2.01", "-2.1", "2.1.1"])
async def test_malformed_version_is_400(env: ComputeEnv, sent: str) -> None:
    r = await env.call(await env.admin(), "GET", "/flavors", version=sent, expect=400)
    assert "is of invalid format" in fault(r, "badRequest", 400)


async def test_errors_carry_version_headers_and_nova_body(env: ComputeEnv) -> None:
    r = await env.call(await env.admin(), "GET", "/flavors/nope", version="2.60", expect=404)
    assert fault(r, "itemNotFound", 404) == "Flavor nope could not be found."
    assert r.headers["OpenStack-API-Version"] == "compute 2.60"
    assert r.headers["x-openstack-request-id"].startswith("req-")


async def test_token_required_with_nova_body(env: ComputeEnv) -> None:
    r = await env.client.get("/compute/v2.1/flavors")
    fault(r, "unauthorized", 401)
    assert r.headers["WWW-Authenticate"].startswith("Keystone uri=")
    r = await env.client.get("/compute/v2.1/flavors", headers={"X-Auth-Token": "garbage"})
    fault(r, "unauthorized", 401)


async def test_unknown_route_and_method(env: ComputeEnv) -> None:
    admin = await env.admin()
    fault(await env.call(admin, "GET", "/no-such-thing", expect=404), "itemNotFound", 404)
    fault(await env.call(admin, "PATCH", "/flavors", expect=405), "badMethod", 405)
