"""Regions, services and endpoints, and how they reach tokens' catalogs."""

from __future__ import annotations

from typing import Any

from kumotest import Cloud

V3 = "/identity/v3"
BASE = "http://kumo.test/identity/v3"


async def _create(cloud: Cloud, headers: dict[str, str], key: str, fields: dict[str, Any]) -> dict[str, Any]:
    r = await cloud.client.post(f"{V3}/{key}s", headers=headers, json={key: fields})
    assert r.status_code == 201, r.text
    item: dict[str, Any] = r.json()[key]
    assert item["links"] == {"self": f"{BASE}/{key}s/{item['id']}"}
    return item


async def test_region_crud(cloud: Cloud) -> None:
    admin = await cloud.admin()
    r = await cloud.client.get(f"{V3}/regions", headers=admin)
    assert [x["id"] for x in r.json()["regions"]] == ["RegionOne"]
    generated = await _create(cloud, admin, "region", {"description": "auto id"})
    assert generated["id"] and generated["parent_region_id"] is None

    r = await cloud.client.put(f"{V3}/regions/RegionTwo", headers=admin,
                               json={"region": {"description": "two", "parent_region_id": "RegionOne"}})
    assert r.status_code == 201, r.text
    assert r.json()["region"] == {"id": "RegionTwo", "description": "two", "parent_region_id": "RegionOne",
                                  "links": {"self": f"{BASE}/regions/RegionTwo"}}
    r = await cloud.client.put(f"{V3}/regions/RegionTwo", headers=admin, json={"region": {}})
    assert r.status_code == 409
    r = await cloud.client.put(f"{V3}/regions/RegionX", headers=admin, json={"region": {"id": "RegionY"}})
    assert r.status_code == 400
    r = await cloud.client.post(f"{V3}/regions", headers=admin, json={"region": {"parent_region_id": "nope"}})
    assert r.status_code == 404

    r = await cloud.client.get(f"{V3}/regions", params={"parent_region_id": "RegionOne"}, headers=admin)
    assert [x["id"] for x in r.json()["regions"]] == ["RegionTwo"]
    r = await cloud.client.patch(f"{V3}/regions/RegionTwo", headers=admin, json={"region": {"description": "2"}})
    assert r.status_code == 200 and r.json()["region"]["description"] == "2"
    assert (await cloud.client.delete(f"{V3}/regions/RegionTwo", headers=admin)).status_code == 204
    r = await cloud.client.get(f"{V3}/regions/RegionTwo", headers=admin)
    assert r.status_code == 404 and r.json()["error"]["message"] == "Could not find region: RegionTwo."


async def test_service_and_endpoint_crud(cloud: Cloud) -> None:
    admin = await cloud.admin()
    svc = await _create(cloud, admin, "service", {"type": "widget", "name": "widgets", "description": "w"})
    assert svc["enabled"] is True
    r = await cloud.client.get(f"{V3}/services", params={"type": "widget"}, headers=admin)
    assert [x["id"] for x in r.json()["services"]] == [svc["id"]]
    r = await cloud.client.patch(f"{V3}/services/{svc['id']}", headers=admin, json={"service": {"name": "w2"}})
    assert r.status_code == 200 and r.json()["service"]["name"] == "w2"
    r = await cloud.client.post(f"{V3}/services", headers=admin, json={"service": {"name": "no type"}})
    assert r.status_code == 400

    fields = {"service_id": svc["id"], "interface": "public", "url": "http://w.test/", "region_id": "RegionOne"}
    ep = await _create(cloud, admin, "endpoint", fields)
    assert {k: ep[k] for k in fields} == fields and ep["region"] == "RegionOne" and ep["enabled"] is True
    internal = await _create(cloud, admin, "endpoint", {**fields, "interface": "internal"})
    for bad in ({**fields, "interface": "bogus"}, {**fields, "url": 5}, {**fields, "enabled": "yes"}):
        r = await cloud.client.post(f"{V3}/endpoints", headers=admin, json={"endpoint": bad})
        assert r.status_code == 400, bad
    for missing in ({**fields, "service_id": "nope"}, {**fields, "region_id": "nope"}):
        r = await cloud.client.post(f"{V3}/endpoints", headers=admin, json={"endpoint": missing})
        assert r.status_code == 400, missing  # Keystone: a ValidationError, not a 404

    r = await cloud.client.get(f"{V3}/endpoints", params={"interface": "internal", "service_id": svc["id"]},
                               headers=admin)
    assert [x["id"] for x in r.json()["endpoints"]] == [internal["id"]]
    r = await cloud.client.get(f"{V3}/endpoints", params={"interface": "internal"}, headers=admin)
    assert all(x["interface"] == "internal" for x in r.json()["endpoints"]) and len(r.json()["endpoints"]) > 1
    r = await cloud.client.patch(f"{V3}/endpoints/{ep['id']}", headers=admin,
                                 json={"endpoint": {"url": "http://w2.test/"}})
    assert r.status_code == 200 and r.json()["endpoint"]["url"] == "http://w2.test/"
    r = await cloud.client.patch(f"{V3}/endpoints/{ep['id']}", headers=admin, json={"endpoint": {"interface": "x"}})
    assert r.status_code == 400
    assert (await cloud.client.delete(f"{V3}/endpoints/{ep['id']}", headers=admin)).status_code == 204
    assert (await cloud.client.get(f"{V3}/endpoints/{ep['id']}", headers=admin)).status_code == 404

    # Deleting a service deletes its endpoints.
    assert (await cloud.client.delete(f"{V3}/services/{svc['id']}", headers=admin)).status_code == 204
    assert (await cloud.client.get(f"{V3}/endpoints/{internal['id']}", headers=admin)).status_code == 404
    r = await cloud.client.get(f"{V3}/endpoints", params={"service_id": svc["id"]}, headers=admin)
    assert r.json()["endpoints"] == []


async def test_catalog_changes_reach_new_tokens(cloud: Cloud) -> None:
    admin = await cloud.admin()
    svc = await _create(cloud, admin, "service", {"type": "widget", "name": "widgets"})
    ep = await _create(cloud, admin, "endpoint", {"service_id": svc["id"], "interface": "public",
                                                  "url": "http://w.test/", "region_id": "RegionOne"})

    def widget(catalog: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [entry for entry in catalog if entry["type"] == "widget"]

    r = await cloud.client.post(f"{V3}/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": cloud.admin_password}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
    assert r.status_code == 201
    assert widget(r.json()["token"]["catalog"]) == [{
        "id": svc["id"], "type": "widget", "name": "widgets",
        "endpoints": [{"id": ep["id"], "interface": "public", "region": "RegionOne", "region_id": "RegionOne",
                       "url": "http://w.test/"}]}]
    r = await cloud.client.get(f"{V3}/auth/catalog", headers=admin)
    assert r.status_code == 200 and widget(r.json()["catalog"])[0]["endpoints"][0]["id"] == ep["id"]

    assert (await cloud.client.delete(f"{V3}/services/{svc['id']}", headers=admin)).status_code == 204
    token = await cloud.token()
    r = await cloud.client.get(f"{V3}/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token})
    assert widget(r.json()["token"]["catalog"]) == []
    assert widget((await cloud.client.get(f"{V3}/auth/catalog", headers=admin)).json()["catalog"]) == []


async def test_member_may_read_regions_but_not_change_the_catalog(cloud: Cloud) -> None:
    await cloud.make_user("erin", "erin-pw", project="demo", role="member")
    member = {"X-Auth-Token": await cloud.token("erin", "erin-pw", project="demo")}
    assert (await cloud.client.get(f"{V3}/regions", headers=member)).status_code == 200
    assert (await cloud.client.get(f"{V3}/regions/RegionOne", headers=member)).status_code == 200
    assert (await cloud.client.get(f"{V3}/services", headers=member)).status_code == 403
    r = await cloud.client.post(f"{V3}/services", headers=member, json={"service": {"type": "x"}})
    assert r.status_code == 403
    r = await cloud.client.put(f"{V3}/regions/Mine", headers=member, json={"region": {}})
    assert r.status_code == 403
