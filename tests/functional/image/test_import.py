"""Interoperable image import: discovery, ``/stage`` then ``/import`` with glance-direct."""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import Any

import httpx
import pytest
from imagetest import API, IMAGES, OCTET, ImageEnv, Project, chunked, qcow2_header

MIB = 1024 * 1024


async def stage(env: ImageEnv, who: Project, image_id: str, data: Any, expect: int = 204) -> httpx.Response:
    r = await env.client.put(f"{IMAGES}/{image_id}/stage", headers={**who.headers, **OCTET}, content=data)
    assert r.status_code == expect, r.text
    return r


async def start_import(env: ImageEnv, who: Project, image_id: str, body: Any = None,
                       expect: int = 202) -> httpx.Response:
    body = {"method": {"name": "glance-direct"}} if body is None else body
    r = await env.client.post(f"{IMAGES}/{image_id}/import", headers=who.headers, json=body)
    assert r.status_code == expect, r.text
    return r


async def test_discovery(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    r = await env.client.get(f"{API}/info/import", headers=alpha.headers)
    assert r.status_code == 200
    methods = r.json()["import-methods"]
    assert "glance-direct" in methods["value"]
    assert methods["type"] == "array"
    r = await env.client.get(f"{API}/info/stores", headers=alpha.headers)
    assert r.status_code == 200
    stores = r.json()["stores"]
    assert len(stores) == 1 and stores[0]["default"] is True and stores[0]["id"]
    assert (await env.client.get(f"{API}/info/import")).status_code == 401


async def test_stage_then_import(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    data = os.urandom(2 * MIB + 4321)
    image = await env.create(alpha, name="imported", disk_format="raw", container_format="bare")
    r = await stage(env, alpha, image["id"], chunked(data, 200_000))
    assert r.content == b""
    staged = await env.show(alpha, image["id"])
    assert staged["status"] == "uploading"
    assert staged["size"] == len(data)
    assert staged["checksum"] is None
    await env.download(alpha, image["id"], expect=204)  # staged data is not downloadable
    await env.upload(alpha, image["id"], b"direct", expect=409)  # nor can /file be used meanwhile
    await stage(env, alpha, image["id"], b"again", expect=409)
    r = await start_import(env, alpha, image["id"])
    assert r.content == b""
    done = await env.wait_status(alpha, image["id"], {"active", "queued"})
    assert done["status"] == "active"
    assert done["size"] == len(data)
    assert done["checksum"] == hashlib.md5(data).hexdigest()
    assert done["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert (await env.download(alpha, image["id"])).content == data
    assert env.stored_files() == [image["id"]]  # the staged copy is gone
    await start_import(env, alpha, image["id"], expect=409)  # an active image is not an import target


async def test_import_of_bad_data_goes_back_to_queued(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    image = await env.create(alpha, name="bad", disk_format="qcow2", container_format="bare")
    await stage(env, alpha, image["id"], os.urandom(300 * 1024))
    await start_import(env, alpha, image["id"])
    done = await env.wait_status(alpha, image["id"], {"active", "queued"})
    assert done["status"] == "queued"
    assert done["size"] is None and done["checksum"] is None
    assert env.stored_files() == []
    # and a qcow2 that points at a backing file is refused the same way
    await stage(env, alpha, image["id"], qcow2_header(backing=b"/etc/passwd"))
    await start_import(env, alpha, image["id"])
    assert (await env.wait_status(alpha, image["id"], {"active", "queued"}))["status"] == "queued"
    assert env.stored_files() == []
    # a valid qcow2 then imports fine
    await stage(env, alpha, image["id"], qcow2_header(virtual_size=3 * MIB))
    await start_import(env, alpha, image["id"])
    done = await env.wait_status(alpha, image["id"], {"active", "queued"})
    assert (done["status"], done["virtual_size"]) == ("active", 3 * MIB)


async def test_import_errors(env: ImageEnv) -> None:
    alpha, beta = await env.project("alpha"), await env.project("beta")
    image = await env.create(alpha, name="nothing staged", disk_format="raw", container_format="bare")
    r = await start_import(env, alpha, image["id"], expect=409)
    assert "staged" in r.json()["message"]
    for body in ({"method": {"name": "web-download", "uri": "http://example.com/x.img"}},
                 {"method": {"name": "no-such-method"}}, {"method": {}}, {"method": "glance-direct"}, {},
                 ["glance-direct"]):
        r = await start_import(env, alpha, image["id"], body=body, expect=400)
        assert r.json()["code"] == "400 Bad Request"
    r = await env.client.post(f"{IMAGES}/{image['id']}/import", headers=alpha.headers, content=b"{nope")
    assert r.status_code == 400
    await start_import(env, alpha, "5a0b0c6e-7c3b-4b1c-9f1e-000000000000", expect=404)
    await start_import(env, beta, image["id"], expect=404)  # beta cannot see alpha's image
    await stage(env, beta, image["id"], b"x", expect=404)
    r = await env.client.put(f"{IMAGES}/{image['id']}/stage", headers={**alpha.headers, "Content-Type": "text/plain"},
                             content=b"x")
    assert r.status_code == 415
    assert (await env.show(alpha, image["id"]))["status"] == "queued"


async def test_import_needs_formats(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    for fields, missing in (({}, "container_format"), ({"container_format": "bare"}, "disk_format"),
                            ({"disk_format": "raw"}, "container_format")):
        image = await env.create(alpha, name="formatless", **fields)
        await stage(env, alpha, image["id"], b"some data")  # staging does not need them
        r = await start_import(env, alpha, image["id"], expect=409)
        assert r.json()["message"] == f"'{missing}' needs to be set before import"
        # formats can no longer change once data is staged (Glance: queued images only)
        value = "bare" if missing == "container_format" else "raw"
        await env.patch(alpha, image["id"], [{"op": "add", "path": f"/{missing}", "value": value}], expect=403)
        assert (await env.show(alpha, image["id"]))["status"] == "uploading"


async def test_member_cannot_stage_or_import(env: ImageEnv) -> None:
    alpha, beta = await env.project("alpha"), await env.project("beta")
    image = await env.create(alpha, name="shared", disk_format="raw", container_format="bare")
    await env.add_member(alpha, image["id"], beta.id)
    await stage(env, beta, image["id"], b"x", expect=403)
    await stage(env, alpha, image["id"], b"owner's data")
    await start_import(env, beta, image["id"], expect=403)
    assert (await env.show(alpha, image["id"]))["status"] == "uploading"


async def test_deleting_a_staged_image_removes_the_staged_data(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    image = await env.create(alpha, name="staged", disk_format="raw", container_format="bare")
    await stage(env, alpha, image["id"], os.urandom(10_000))
    assert len(env.stored_files()) == 1
    r = await env.client.delete(f"{IMAGES}/{image['id']}", headers=alpha.headers)
    assert r.status_code == 204
    assert env.stored_files() == []


async def test_staging_counts_against_the_quota(cloud_with) -> None:  # type: ignore[no-untyped-def]
    async with cloud_with(image__image_size_total=1) as env:
        alpha = await env.project("alpha")
        image = await env.create(alpha, name="too big", disk_format="raw", container_format="bare")
        r = await stage(env, alpha, image["id"], os.urandom(2 * MIB), expect=413)
        assert "quota" in r.json()["message"]
        assert (await env.show(alpha, image["id"]))["status"] == "queued"
        assert env.stored_files() == []
        await stage(env, alpha, image["id"], os.urandom(700 * 1024))
        other = await env.create(alpha, name="other", disk_format="raw", container_format="bare")
        await env.upload(alpha, other["id"], os.urandom(700 * 1024), expect=413)  # staged bytes count
        await start_import(env, alpha, image["id"])
        assert (await env.wait_status(alpha, image["id"], {"active", "queued"}))["status"] == "active"


@pytest.mark.parametrize("head_start", [None, 0.0, 0.005])
async def test_stopping_the_node_mid_import_does_not_strand_the_image(env: ImageEnv, head_start: float | None
                                                                     ) -> None:
    """A cancelled import (the API process stops) puts the image back to queued, not stuck in importing.

    The task is cancelled before it ever ran (None), while it opens its store writer (0.0) or in the middle
    of its copy; whichever, no temporary or staged file is left behind.
    """
    alpha = await env.project("alpha")
    image = await env.create(alpha, name="interrupted", disk_format="raw", container_format="bare")
    await stage(env, alpha, image["id"], os.urandom(3 * MIB))
    await start_import(env, alpha, image["id"])
    if head_start is not None:
        await asyncio.sleep(head_start)
    await env.cloud.node.image_data.stop()  # cancels the import task, as Node.stop does
    shown = await env.show(alpha, image["id"])
    assert shown["status"] in ("queued", "active"), shown["status"]
    if shown["status"] == "queued":
        assert env.stored_files() == []
        await stage(env, alpha, image["id"], b"try again")  # and the client can start over
    else:
        assert env.stored_files() == [image["id"]]
