"""List queries (fields, filters, sorting, paging), bad bodies, tags and quotas — Neutron's wording throughout."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from neutrontest import API, NetEnv, neutron_error


async def test_fields_filters_and_sorting(net: NetEnv) -> None:
    alice = await net.user("alice")
    for name in ("b", "a", "c"):
        await net.network(alice, name=name, admin_state_up=name != "c")
    r = await net.call(alice, "GET", "/networks", params=[("fields", "name"), ("fields", "mtu"),
                                                          ("sort_key", "name"), ("sort_dir", "desc")])
    assert r.json()["networks"] == [{"name": "c", "mtu": 1450}, {"name": "b", "mtu": 1450},
                                    {"name": "a", "mtu": 1450}]
    r = await net.call(alice, "GET", "/networks", params=[("name", "a"), ("name", "b"), ("fields", "name"),
                                                          ("sort_key", "name")])
    assert [n["name"] for n in r.json()["networks"]] == ["a", "b"]
    down = (await net.call(alice, "GET", "/networks", params={"admin_state_up": "false"})).json()["networks"]
    assert [n["name"] for n in down] == ["c"]
    r = await net.call(alice, "GET", "/networks", params={"colour": "red"}, expect=400)
    assert neutron_error(r, 400, "HTTPBadRequest") == "['colour'] is invalid attribute for filtering"
    r = await net.call(alice, "GET", "/networks", params={"sort_key": "colour"}, expect=400)
    assert neutron_error(r, 400) == "['colour'] is invalid attribute for sort_keys"
    r = await net.call(alice, "GET", "/networks", params={"admin_state_up": "maybe"}, expect=400)
    assert neutron_error(r, 400, "InvalidInput") == \
        "Invalid input for operation: 'maybe' cannot be converted to boolean."
    r = await net.call(alice, "GET", "/networks", params={"limit": "x"}, expect=400)
    assert neutron_error(r, 400, "BadRequest") == \
        "Bad limit request: Limit must be an integer 0 or greater and not 'x'."


async def test_pagination_links(net: NetEnv) -> None:
    alice = await net.user("alice")
    made = sorted([(await net.network(alice, name=f"n{i}"))["id"] for i in range(5)])
    r = await net.call(alice, "GET", "/networks", params={"limit": 2})
    page = r.json()
    assert [n["id"] for n in page["networks"]] == made[:2]
    [next_link] = [link for link in page["networks_links"] if link["rel"] == "next"]
    query = parse_qs(urlsplit(next_link["href"]).query)
    assert query == {"limit": ["2"], "marker": [made[1]]} and next_link["href"].startswith("http://kumo.test" + API)
    seen = list(made[:2])
    href = next_link["href"]
    while href:
        body = (await net.client.get(href, headers=alice.headers)).json()
        seen += [n["id"] for n in body["networks"]]
        href = next((link["href"] for link in body.get("networks_links", []) if link["rel"] == "next"), None)
    assert seen == made
    r = await net.call(alice, "GET", "/networks", params={"limit": 2, "marker": made[4], "page_reverse": "True"})
    assert [n["id"] for n in r.json()["networks"]] == made[2:4]
    await net.call(alice, "GET", "/networks", params={"marker": "7b0b0000-0000-4000-8000-00000000dead"}, expect=404)


async def test_bad_bodies(net: NetEnv) -> None:
    alice = await net.user("alice")
    cases = [
        (b"", "Resource body required"),
        (b"{not json", "Body contains invalid data"),
        (b"[1, 2]", "Body contains invalid data"),
        (b'{"net": {}}', "Unable to find 'network' in request body"),
        (b'{"network": []}', "Object 'network' contains invalid data"),
        (b'{"network": {"colour": "red", "size": 1}}', "Unrecognized attribute(s) 'colour, size'"),
        (b'{"network": {"status": "DOWN"}}', "Attribute 'status' not allowed in POST"),
        (b'{"network": {"name": 5}}', "Invalid input for name. Reason: '5' is not a valid string."),
        (b'{"network": {"project_id": "other"}}', "Specifying 'project_id' other than the authenticated project "
                                                  "in request is not allowed for the current user."),
    ]
    for raw, message in cases:
        r = await net.call(alice, "POST", "/networks", content=raw, expect=400)
        assert neutron_error(r, 400, "HTTPBadRequest") == message, raw
    r = await net.call(alice, "POST", "/networks", content=b'{"network": {"admin_state_up": "sure"}}', expect=400)
    assert neutron_error(r, 400, "InvalidInput") == "Invalid input for operation: 'sure' cannot be converted to boolean."
    huge = b'{"network": {"name": "' + b"x" * (2 << 20) + b'"}}'
    r = await net.call(alice, "POST", "/networks", content=huge, expect=413)
    n = await net.network(alice)
    r = await net.call(alice, "DELETE", f"/networks/{n['id']}", content=b"{}", expect=400)
    assert neutron_error(r, 400) == "Request body is not supported in DELETE."
    assert len((await net.call(alice, "GET", "/networks")).json()["networks"]) == 1  # nothing half-made


async def test_tags(net: NetEnv) -> None:
    alice, bob = await net.user("alice"), await net.user("bob", "beta")
    red = await net.network(alice, name="red")
    blue = await net.network(alice, name="blue")
    r = await net.call(alice, "PUT", f"/networks/{red['id']}/tags", json={"tags": ["red", "warm"]})
    assert r.json() == {"tags": ["red", "warm"]}
    await net.call(alice, "PUT", f"/networks/{blue['id']}/tags/cold", expect=201)
    await net.call(alice, "GET", f"/networks/{blue['id']}/tags/cold", expect=204)
    r = await net.call(alice, "GET", f"/networks/{blue['id']}/tags/hot", expect=404)
    assert neutron_error(r, 404, "TagNotFound") == "Tag hot could not be found."
    names = lambda r: sorted(n["name"] for n in r.json()["networks"])  # noqa: E731
    assert names(await net.call(alice, "GET", "/networks", params={"tags": "red,warm"})) == ["red"]
    assert names(await net.call(alice, "GET", "/networks", params={"tags-any": "red,cold"})) == ["blue", "red"]
    assert names(await net.call(alice, "GET", "/networks", params={"not-tags": "red"})) == ["blue"]
    assert (await net.call(alice, "GET", f"/networks/{red['id']}")).json()["network"]["tags"] == ["red", "warm"]
    await net.call(bob, "PUT", f"/networks/{red['id']}/tags/mine", expect=404)
    r = await net.call(alice, "PUT", f"/networks/{red['id']}/tags", json={"tags": [f"t{i}" for i in range(51)]},
                       expect=400)
    assert neutron_error(r, 400, "BadRequest") == \
        "Bad network request: The number of tags exceed the per-resource limit of 50."
    await net.call(alice, "DELETE", f"/networks/{red['id']}/tags", expect=204)
    assert (await net.call(alice, "GET", f"/networks/{red['id']}/tags")).json() == {"tags": []}


async def test_quotas(net: NetEnv) -> None:
    alice, admin = await net.user("alice"), await net.admin()
    r = await net.call(alice, "GET", f"/quotas/{alice.project_id}")
    assert r.json()["quota"] == {"network": 100, "subnet": 100, "port": 500, "router": 10, "floatingip": 50,
                                 "security_group": 10, "security_group_rule": 100}
    await net.call(alice, "PUT", f"/quotas/{alice.project_id}", json={"quota": {"network": 1}}, expect=403)
    r = await net.call(admin, "PUT", f"/quotas/{alice.project_id}", json={"quota": {"network": 1}})
    assert r.json()["quota"]["network"] == 1
    await net.network(alice)
    r = await net.call(alice, "POST", "/networks", json={"network": {"name": "two"}}, expect=409)
    assert neutron_error(r, 409, "OverQuota") == "Quota exceeded for resources: ['network']."
    details = (await net.call(alice, "GET", f"/quotas/{alice.project_id}/details")).json()["quota"]
    assert details["network"] == {"limit": 1, "used": 1, "reserved": 0}
    listed = (await net.call(admin, "GET", "/quotas")).json()["quotas"]
    assert [q["project_id"] for q in listed] == [alice.project_id]
    await net.call(admin, "DELETE", f"/quotas/{alice.project_id}", expect=204)
    assert (await net.call(alice, "GET", f"/quotas/{alice.project_id}/default")).json()["quota"]["network"] == 100
    await net.call(alice, "GET", f"/quotas/{admin.project_id}", expect=403)
    r = await net.call(admin, "PUT", f"/quotas/{alice.project_id}", json={"quota": {"network": "lots"}}, expect=400)
    r = await net.call(admin, "PUT", f"/quotas/{alice.project_id}", json={"quota": {"widgets": 3}}, expect=400)
