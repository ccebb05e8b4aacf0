"""The shortest path through identity: discover, log in, list."""

from __future__ import annotations

from kumotest import Cloud


async def test_discovery_and_token(cloud: Cloud) -> None:
    r = await cloud.client.get("/identity/")
    assert r.status_code == 300
    assert r.json()["versions"]["values"][0]["links"][0]["href"] == "http://kumo.test/identity/v3/"
    assert r.headers["x-openstack-request-id"].startswith("req-")
    token = await cloud.token()
    r = await cloud.client.get("/identity/v3/projects", headers={"X-Auth-Token": token})
    assert r.status_code == 200
    assert {p["name"] for p in r.json()["projects"]} == {"admin", "service"}
