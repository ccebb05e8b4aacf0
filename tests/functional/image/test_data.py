"""Image data: upload, download (Range), inspection, concurrency, cut-off uploads, quotas."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from imagetest import IMAGES, OCTET, ImageEnv, chunked, qcow2_header

MIB = 1024 * 1024


async def test_upload_and_download_roundtrip(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    data = os.urandom(300 * 1024 + 7)
    image = await env.create(alpha, name="rt", disk_format="raw", container_format="bare")
    r = await env.upload(alpha, image["id"], data)
    assert r.content == b""
    shown = await env.show(alpha, image["id"])
    assert shown["status"] == "active"
    assert shown["size"] == len(data)
    assert shown["virtual_size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["os_hash_algo"] == "sha512"
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert shown["updated_at"] >= image["updated_at"]
    r = await env.download(alpha, image["id"])
    assert r.content == data
    assert r.headers["Content-MD5"] == shown["checksum"]
    assert r.headers["Content-Length"] == str(len(data))
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert env.stored_files() == [image["id"]]  # one file, no temporary leftovers


async def test_streamed_upload_across_store_blocks(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    data = os.urandom(2 * MIB + 12345)
    image = await env.create(alpha, name="big", disk_format="raw", container_format="bare")
    await env.upload(alpha, image["id"], chunked(data, 100_003))  # chunked transfer, odd chunk size
    shown = await env.show(alpha, image["id"])
    assert shown["size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert (await env.download(alpha, image["id"])).content == data
    # a range that straddles the 1 MiB block boundary of the store
    r = await env.download(alpha, image["id"], expect=206, headers={"Range": f"bytes={MIB - 10}-{MIB + 9}"})
    assert r.content == data[MIB - 10:MIB + 10]
    assert r.headers["Content-Range"] == f"bytes {MIB - 10}-{MIB + 9}/{len(data)}"


async def test_range_requests(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    data = os.urandom(1000)
    image = await env.active(alpha, data)
    size = len(data)

    async def get(header: str, expect: int) -> httpx.Response:
        return await env.download(alpha, image["id"], expect=expect, headers={"Range": header})

    r = await get("bytes=0-9", 206)
    assert r.content == data[:10]
    assert r.headers["Content-Range"] == f"bytes 0-9/{size}"
    assert r.headers["Content-Length"] == "10"
    r = await get("bytes=-5", 206)
    assert r.content == data[-5:]
    assert r.headers["Content-Range"] == f"bytes {size - 5}-{size - 1}/{size}"
    r = await get("bytes=990-", 206)
    assert r.content == data[990:]
    r = await get("bytes=995-5000", 206)  # an end past the data is clipped
    assert r.content == data[995:]
    assert r.headers["Content-Range"] == f"bytes 995-999/{size}"
    r = await get(f"bytes={size}-", 416)
    assert r.headers["Content-Range"] == f"bytes */{size}"
    r = await get("bytes=5000-6000", 416)
    assert r.headers["Content-Range"] == f"bytes */{size}"
    r = await get("pages=1-2", 200)  # a Range we do not understand is ignored
    assert r.content == data


async def test_download_without_data(env: ImageEnv) -> None:
    alpha, beta = await env.project("alpha"), await env.project("beta")
    image = await env.create(alpha, name="empty")
    r = await env.download(alpha, image["id"], expect=204)
    assert r.content == b""
    await env.download(beta, image["id"], expect=404)  # not visible to beta
    await env.download(alpha, "5a0b0c6e-7c3b-4b1c-9f1e-000000000000", expect=404)


async def test_download_when_the_stored_file_is_gone(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    image = await env.active(alpha, b"soon gone")
    (env.images_dir() / image["id"]).unlink()
    # Glance answers 204 when the store has lost the data; never a 200 that breaks off
    r = await env.download(alpha, image["id"], expect=204)
    assert r.content == b""


async def test_upload_rules(env: ImageEnv) -> None:
    alpha, beta = await env.project("alpha"), await env.project("beta")
    image = await env.active(alpha, b"first")
    r = await env.upload(alpha, image["id"], b"second", expect=409)
    assert r.json()["code"] == "409 Conflict"
    assert (await env.download(alpha, image["id"])).content == b"first"
    other = await env.create(alpha, name="other", disk_format="raw", container_format="bare")
    r = await env.client.put(f"{IMAGES}/{other['id']}/file", headers={**alpha.headers, "Content-Type": "text/plain"},
                             content=b"x")
    assert r.status_code == 415
    await env.upload(beta, other["id"], b"not yours", expect=404)
    await env.upload(alpha, "5a0b0c6e-7c3b-4b1c-9f1e-000000000000", b"x", expect=404)
    assert (await env.show(alpha, other["id"]))["status"] == "queued"
    # data is only saved once both formats are set (Glance)
    bare = await env.create(alpha, name="no formats")
    r = await env.upload(alpha, bare["id"], b"x", expect=400)
    assert r.json()["message"] == "Properties disk_format, container_format must be set prior to saving data."
    await env.patch(alpha, bare["id"], [{"op": "add", "path": "/disk_format", "value": "raw"}])
    r = await env.upload(alpha, bare["id"], b"x", expect=400)
    assert r.json()["message"] == "Property container_format must be set prior to saving data."
    assert (await env.show(alpha, bare["id"]))["status"] == "queued"
    # an empty upload makes an active, empty image
    await env.upload(alpha, other["id"], b"")
    shown = await env.show(alpha, other["id"])
    assert (shown["status"], shown["size"], shown["checksum"]) == ("active", 0, hashlib.md5(b"").hexdigest())


async def test_upload_to_a_deactivated_image_conflicts(env: ImageEnv) -> None:
    alpha, admin = await env.project("alpha"), await env.admin()
    image = await env.active(alpha, b"data")
    r = await env.client.post(f"{IMAGES}/{image['id']}/actions/deactivate", headers=admin.headers)
    assert r.status_code == 204
    await env.upload(admin, image["id"], b"new", expect=409)


# -- inspection ---------------------------------------------------------------------------------------

async def test_random_bytes_claimed_as_qcow2_are_rejected(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    image = await env.create(alpha, name="liar", disk_format="qcow2", container_format="bare")
    r = await env.upload(alpha, image["id"], os.urandom(2 * MIB + 100), expect=400)
    assert "qcow2" in r.json()["message"]
    shown = await env.show(alpha, image["id"])
    assert shown["status"] == "queued"
    assert shown["size"] is None and shown["checksum"] is None
    assert env.stored_files() == []
    # the client may fix the format and try again
    await env.patch(alpha, image["id"], [{"op": "replace", "path": "/disk_format", "value": "raw"}])
    await env.upload(alpha, image["id"], b"raw after all")
    assert (await env.show(alpha, image["id"]))["status"] == "active"


async def test_qcow2_is_inspected(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    good = await env.create(alpha, name="good", disk_format="qcow2", container_format="bare")
    data = qcow2_header(virtual_size=5 * 1024**3)
    await env.upload(alpha, good["id"], data)
    shown = await env.show(alpha, good["id"])
    assert (shown["status"], shown["size"], shown["virtual_size"]) == ("active", len(data), 5 * 1024**3)
    # qcow2 bytes claimed as raw: format confusion is refused too
    confused = await env.create(alpha, name="confused", disk_format="raw", container_format="bare")
    r = await env.upload(alpha, confused["id"], data, expect=400)
    assert "qcow2" in r.json()["message"]
    assert (await env.show(alpha, confused["id"]))["status"] == "queued"


async def test_qcow2_with_backing_file_is_rejected(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    image = await env.create(alpha, name="backed", disk_format="qcow2", container_format="bare")
    r = await env.upload(alpha, image["id"], qcow2_header(backing=b"/etc/shadow"), expect=400)
    assert "backing file" in r.json()["message"]
    assert (await env.show(alpha, image["id"]))["status"] == "queued"
    assert env.stored_files() == []


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img is not installed")
async def test_qemu_img_images(env: ImageEnv, tmp_path: Path) -> None:
    alpha = await env.project("alpha")
    work = tmp_path / "qemu"
    work.mkdir()
    for args in (["-f", "raw", str(work / "base"), "1M"],
                 ["-f", "qcow2", "-b", str(work / "base"), "-F", "raw", str(work / "backed.qcow2")],
                 ["-f", "qcow2", str(work / "plain.qcow2"), "64M"]):
        await asyncio.to_thread(subprocess.run, ["qemu-img", "create", *args], check=True, capture_output=True)
    backed = await env.create(alpha, name="backed", disk_format="qcow2", container_format="bare")
    r = await env.upload(alpha, backed["id"], (work / "backed.qcow2").read_bytes(), expect=400)
    assert "backing file" in r.json()["message"]
    plain = await env.create(alpha, name="plain", disk_format="qcow2", container_format="bare")
    await env.upload(alpha, plain["id"], (work / "plain.qcow2").read_bytes())
    assert (await env.show(alpha, plain["id"]))["virtual_size"] == 64 * MIB
    assert env.stored_files() == [plain["id"]]


# -- concurrency and interrupted uploads --------------------------------------------------------------

async def test_concurrent_uploads_one_wins(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    image = await env.create(alpha, name="race", disk_format="raw", container_format="bare")
    first, second = os.urandom(MIB + 500), os.urandom(MIB + 700)

    async def put(data: bytes) -> httpx.Response:
        return await env.client.put(f"{IMAGES}/{image['id']}/file", headers={**alpha.headers, **OCTET},
                                    content=chunked(data, 64 * 1024, delay=0.005))

    results = await asyncio.gather(put(first), put(second))
    codes = sorted(r.status_code for r in results)
    assert codes == [204, 409], [r.text for r in results]
    loser = next(r for r in results if r.status_code == 409)
    assert "being uploaded" in loser.json()["message"]
    winner = first if results[0].status_code == 204 else second
    shown = await env.show(alpha, image["id"])
    assert shown["status"] == "active"
    assert shown["size"] == len(winner) and shown["checksum"] == hashlib.md5(winner).hexdigest()
    assert (await env.download(alpha, image["id"])).content == winner
    assert env.stored_files() == [image["id"]]


async def test_delete_during_upload(env: ImageEnv) -> None:
    alpha = await env.project("alpha")
    image = await env.create(alpha, name="vanishing", disk_format="raw", container_format="bare")
    started = asyncio.Event()
    deleted = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        for i in range(24):
            yield os.urandom(128 * 1024)
            if i == 10:
                started.set()
                await deleted.wait()

    upload = asyncio.create_task(env.client.put(f"{IMAGES}/{image['id']}/file", headers={**alpha.headers, **OCTET},
                                                content=body()))
    await started.wait()
    assert (await env.show(alpha, image["id"]))["status"] == "saving"
    r = await env.client.delete(f"{IMAGES}/{image['id']}", headers=alpha.headers)
    assert r.status_code == 204
    deleted.set()
    r = await upload
    assert r.status_code == 410, r.text  # Glance: the image was deleted during the upload
    await env.show(alpha, image["id"], expect=404)
    assert env.stored_files() == []


async def _receive_then_disconnect(chunks: list[bytes]) -> Any:
    queue = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(0)
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    return receive


async def test_client_disconnect_midway(env: ImageEnv) -> None:
    """The client goes away mid-upload (ASGI ``http.disconnect``): 400, image back to queued, nothing kept."""
    alpha = await env.project("alpha")
    image = await env.create(alpha, name="cut", disk_format="raw", container_format="bare")
    path = f"{IMAGES}/{image['id']}/file"
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "PUT", "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
             "headers": [(b"host", b"kumo.test"), (b"x-auth-token", alpha.headers["X-Auth-Token"].encode()),
                         (b"content-type", b"application/octet-stream"), (b"transfer-encoding", b"chunked")],
             "server": ("kumo.test", 80), "client": ("127.0.0.1", 50000)}
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    receive = await _receive_then_disconnect([os.urandom(512 * 1024) for _ in range(5)])
    await env.cloud.node.asgi_app()(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 400
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert b"cut off" in body
    shown = await env.show(alpha, image["id"])
    assert shown["status"] == "queued" and shown["size"] is None
    assert env.stored_files() == []
    await env.upload(alpha, image["id"], b"complete this time")  # and a new upload works


async def test_upload_aborted_by_the_client_over_http(env: ImageEnv) -> None:
    """A real socket: httpx aborts the request when its body generator fails; the server cleans up."""
    alpha = await env.project("alpha")
    image = await env.create(alpha, name="aborted", disk_format="raw", container_format="bare")
    statuses: list[int] = []
    app = env.cloud.node.asgi_app()

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        async def send_and_record(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and scope["method"] == "PUT":
                statuses.append(message["status"])
            await send(message)

        await app(scope, receive, send_and_record)

    server = uvicorn.Server(uvicorn.Config(recording, host="127.0.0.1", port=0, log_level="critical",
                                           lifespan="off"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        sent_enough = asyncio.Event()

        async def body() -> AsyncIterator[bytes]:
            for _ in range(5):
                yield os.urandom(512 * 1024)
            sent_enough.set()
            await asyncio.sleep(0.2)  # let the server take in (and write) what was sent
            raise RuntimeError("the client gives up")

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            with pytest.raises(RuntimeError, match="gives up"):
                await client.put(f"{IMAGES}/{image['id']}/file", headers={**alpha.headers, **OCTET},
                                 content=body())
        assert sent_enough.is_set()
        await env.wait_status(alpha, image["id"], {"queued"})
        for _ in range(100):
            if statuses:
                break
            await asyncio.sleep(0.02)
        assert statuses == [400]  # the handler turned ClientDisconnect into its 400
    finally:
        server.should_exit = True
        await serving
    shown = await env.show(alpha, image["id"])
    assert shown["status"] == "queued" and shown["size"] is None and shown["checksum"] is None
    assert env.stored_files() == []


async def test_body_stream_error_inside_the_app(env: ImageEnv) -> None:
    """In-process (ASGI transport) the client's failure surfaces inside the app: still nothing kept."""
    alpha = await env.project("alpha")
    image = await env.create(alpha, name="broken", disk_format="raw", container_format="bare")

    async def body() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield os.urandom(512 * 1024)
        raise RuntimeError("broken stream")

    r = await env.client.put(f"{IMAGES}/{image['id']}/file", headers={**alpha.headers, **OCTET}, content=body())
    # httpx's ASGI transport raises the client's error out of ``receive()`` inside the app, which no real
    # server does; it is an unexpected error there (500, no traceback to the client)
    assert r.status_code == 500
    assert "Traceback" not in r.text and "broken stream" not in r.text
    shown = await env.show(alpha, image["id"])
    assert shown["status"] == "queued"
    assert env.stored_files() == []


# -- quotas -------------------------------------------------------------------------------------------

async def test_image_size_total_quota(cloud_with) -> None:  # type: ignore[no-untyped-def]
    async with cloud_with(image__image_size_total=1) as env:  # 1 MiB per project
        alpha, beta = await env.project("alpha"), await env.project("beta")
        too_big = await env.create(alpha, name="2MiB", disk_format="raw", container_format="bare")
        r = await env.upload(alpha, too_big["id"], os.urandom(2 * MIB), expect=413)
        message = r.json()["message"]
        assert "quota" in message and "1 MiB" in message
        assert (await env.show(alpha, too_big["id"]))["status"] == "queued"
        assert env.stored_files() == []
        fits = await env.create(alpha, name="600KiB", disk_format="raw", container_format="bare")
        await env.upload(alpha, fits["id"], os.urandom(600 * 1024))
        # the project now holds 600 KiB: another 600 KiB goes over, for alpha only
        await env.upload(alpha, too_big["id"], os.urandom(600 * 1024), expect=413)
        theirs = await env.create(beta, name="beta", disk_format="raw", container_format="bare")
        await env.upload(beta, theirs["id"], os.urandom(600 * 1024))
        # deleting frees the space
        r = await env.client.delete(f"{IMAGES}/{fits['id']}", headers=alpha.headers)
        assert r.status_code == 204
        await env.upload(alpha, too_big["id"], os.urandom(600 * 1024))
        assert sorted(env.stored_files()) == sorted([too_big["id"], theirs["id"]])


async def test_image_size_cap(cloud_with) -> None:  # type: ignore[no-untyped-def]
    async with cloud_with(image__image_size_cap=1000) as env:
        alpha = await env.project("alpha")
        image = await env.create(alpha, name="capped", disk_format="raw", container_format="bare")
        r = await env.upload(alpha, image["id"], os.urandom(1001), expect=413)
        assert "1000" in r.json()["message"]
        assert (await env.show(alpha, image["id"]))["status"] == "queued"
        assert env.stored_files() == []
        await env.upload(alpha, image["id"], os.urandom(1000))
        assert (await env.show(alpha, image["id"]))["size"] == 1000
