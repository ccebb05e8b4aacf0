"""What the image API does with malformed, oversized, unauthorized or misdirected requests."""

from __future__ import annotations

from imagetest import IMAGES, OCTET, PATCH_TYPE, ImageEnv

UNKNOWN = "5a0b0c6e-7c3b-4b1c-9f1e-000000000000"


async def test_malformed_create_bodies(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    for raw in (b"{", b"not json", b"", b"   ", b'{"name": "x",}', b"\xff\xfe"):
        r = await env.client.post(IMAGES, headers={**alpha.headers, "Content-Type": "application/json"}, content=raw)
        assert r.status_code == 400, (raw, r.text)
        body = r.json()
        assert body["code"] == "400 Bad Request" and body["title"] == "Bad Request" and body["message"]
    for value in ([], ["name"], "image", 42, None, True):
        r = await env.client.post(IMAGES, headers=alpha.headers, json=value)
        assert r.status_code == 400, (value, r.text)
    assert await env.list_ids(alpha) == []


async def test_invalid_create_fields(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    for fields in ({"disk_format": "floppy"}, {"container_format": "crate"}, {"disk_format": 5},
                   {"visibility": "everyone"}, {"min_ram": -1}, {"min_disk": "big"}, {"min_ram": 1.5},
                   {"min_disk": True}, {"protected": "yes"}, {"os_hidden": 1}, {"name": "n" * 256}, {"name": 12},
                   {"tags": "one"}, {"tags": [1]}, {"tags": [""]}, {"id": "not-a-uuid"}, {"owner": 5},
                   {"custom": 5}, {"custom": None}, {"custom": ["a"]}, {"custom": {"nested": "x"}},
                   {"k" * 256: "long key"}):
        r = await env.client.post(IMAGES, headers=alpha.headers, json=fields)
        assert r.status_code == 400, (fields, r.text)
        assert r.json()["code"] == "400 Bad Request"
    assert await env.list_ids(alpha) == []
    # formats are validated, but any of the known ones is accepted
    for disk in ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"):
        await env.create(alpha, disk_format=disk)
    for container in ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"):
        await env.create(alpha, container_format=container)


async def test_huge_bodies(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    r = await env.client.post(IMAGES, headers=alpha.headers, json={"name": "x", "description": "d" * 70_000})
    assert r.status_code == 413, r.text
    assert r.json()["code"].startswith("413")
    image = await env.create(alpha, name="small")
    r = await env.client.patch(f"{IMAGES}/{image['id']}", headers={**alpha.headers, "Content-Type": PATCH_TYPE},
                               json=[{"op": "add", "path": "/description", "value": "d" * 70_000}])
    assert r.status_code == 413
    r = await env.client.post(f"{IMAGES}/{image['id']}/members", headers=alpha.headers,
                              json={"member": "m" * 70_000})
    assert r.status_code == 413
    # a chunked body (no Content-Length) is cut off just the same
    async def endless():  # type: ignore[no-untyped-def]
        yield b'{"name": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    r = await env.client.post(IMAGES, headers={**alpha.headers, "Content-Type": "application/json"},
                              content=endless())
    assert r.status_code == 413
    assert await env.list_ids(alpha) == [image["id"]]


async def test_unknown_and_malformed_image_ids(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    for image_id in (UNKNOWN, "not-a-uuid", "1", "5a0b0c6e7c3b4b1c9f1e00000000000g"):
        base = f"{IMAGES}/{image_id}"
        for method, url, kwargs in (
                ("GET", base, {}),
                ("DELETE", base, {}),
                ("PATCH", base, {"headers": {"Content-Type": PATCH_TYPE},
                                 "json": [{"op": "replace", "path": "/name", "value": "x"}]}),
                ("GET", f"{base}/file", {}),
                ("PUT", f"{base}/file", {"headers": OCTET, "content": b"data"}),
                ("PUT", f"{base}/stage", {"headers": OCTET, "content": b"data"}),
                ("PUT", f"{base}/tags/t", {}),
                ("DELETE", f"{base}/tags/t", {}),
                ("GET", f"{base}/members", {}),
                ("POST", f"{base}/members", {"json": {"member": alpha.id}}),
                ("DELETE", f"{base}/members/{alpha.id}", {})):
            headers = {**alpha.headers, **kwargs.pop("headers", {})}
            r = await env.client.request(method, url, headers=headers, **kwargs)
            assert r.status_code == 404, (method, url, r.status_code, r.text)
            assert r.json()["code"] == "404 Not Found"


async def test_reader_role_is_read_only(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    reader = await env.project("alpha", role="reader")
    assert reader.id == alpha.id
    image = await env.active(alpha, b"readable", name="r")
    r = await env.client.post(IMAGES, headers=reader.headers, json={"name": "nope"})
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "403 Forbidden"
    # reading works
    assert await env.list_ids(reader) == [image["id"]]
    assert (await env.show(reader, image["id"]))["name"] == "r"
    assert (await env.download(reader, image["id"])).content == b"readable"
    # changing does not
    base = f"{IMAGES}/{image['id']}"
    r = await env.client.patch(base, headers={**reader.headers, "Content-Type": PATCH_TYPE},
                               json=[{"op": "replace", "path": "/name", "value": "x"}])
    assert r.status_code == 403
    for method, url in (("DELETE", base), ("PUT", f"{base}/tags/t"), ("POST", f"{base}/actions/deactivate")):
        r = await env.client.request(method, url, headers=reader.headers)
        assert r.status_code == 403, (method, url)
    queued = await env.create(alpha, name="q", disk_format="raw", container_format="bare")
    r = await env.client.put(f"{IMAGES}/{queued['id']}/file", headers={**reader.headers, **OCTET}, content=b"x")
    assert r.status_code == 403
    r = await env.client.post(f"{IMAGES}/{queued['id']}/members", headers=reader.headers, json={"member": "x"})
    assert r.status_code == 403
    assert (await env.show(alpha, image["id"]))["name"] == "r"


async def test_other_projects_private_image_is_not_found(env: ImageEnv) -> None:
    alpha, beta = await env.project("alpha"), await env.project("beta")
    image = await env.active(alpha, b"private data", name="mine", visibility="private")
    base = f"{IMAGES}/{image['id']}"
    for method, url, kwargs in (
            ("GET", base, {}),
            ("DELETE", base, {}),
            ("PATCH", base, {"headers": {"Content-Type": PATCH_TYPE},
                             "json": [{"op": "replace", "path": "/name", "value": "x"}]}),
            ("GET", f"{base}/file", {}),
            ("PUT", f"{base}/file", {"headers": OCTET, "content": b"data"}),
            ("PUT", f"{base}/tags/t", {}),
            ("GET", f"{base}/members", {}),
            ("POST", f"{base}/members", {"json": {"member": beta.id}}),
            ("POST", f"{base}/import", {"json": {"method": {"name": "glance-direct"}}})):
        headers = {**beta.headers, **kwargs.pop("headers", {})}
        r = await env.client.request(method, url, headers=headers, **kwargs)
        assert r.status_code == 404, (method, url, r.status_code, r.text)
    assert image["id"] not in await env.list_ids(beta, {"visibility": "all"})
    assert image["id"] not in await env.list_ids(beta, {"owner": alpha.id})
    shown = await env.show(alpha, image["id"])
    assert (shown["name"], shown["status"], shown["tags"]) == ("mine", "active", [])


async def test_bad_tokens(env: ImageEnv) -> None:
    for headers in ({}, {"X-Auth-Token": "garbage"}, {"X-Auth-Token": ""}):
        r = await env.client.get(IMAGES, headers=headers)
        assert r.status_code == 401, headers
        r = await env.client.post(IMAGES, headers=headers, json={"name": "x"})
        assert r.status_code == 401, headers


async def test_unknown_routes_and_methods(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    image = await env.create(alpha, name="x")
    r = await env.client.get("/image/v2/nothing-here", headers=alpha.headers)
    assert r.status_code == 404
    r = await env.client.post(f"{IMAGES}/{image['id']}", headers=alpha.headers, json={})
    assert r.status_code == 405
    r = await env.client.post(f"{IMAGES}/{image['id']}/actions/explode", headers=alpha.headers)
    assert r.status_code == 404
