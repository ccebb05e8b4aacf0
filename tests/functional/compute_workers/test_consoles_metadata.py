"""Remote consoles end to end (API -> agent token -> proxy -> the guest's console socket) and the metadata API.

The fake driver's consoles are Unix sockets that greet like the real ones
(an RFB version line, the console log) and echo, so the whole path runs
without QEMU: the node really listens (ports chosen by the kernel) and a
real websocket client connects to its proxy.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import websockets
from buildtest import build, context, wait_for
from kumotest import Cloud

from kumo.compute.instances import save_instance
from kumo.compute.metadata.api import sign_instance_id, shared_secret

API = "/compute/v2.1"


@contextlib.asynccontextmanager
async def serving(cloud: Cloud) -> AsyncIterator[dict[str, int]]:
    """The node's listeners on kernel-chosen loopback ports, for the duration of the block."""
    settings = cloud.node.settings
    settings.api.port = settings.metadata.port = settings.console.proxy_port = 0
    task = asyncio.create_task(cloud.node.serve())
    try:
        for _ in range(200):
            if cloud.node.server is not None and cloud.node.server.started:
                break
            await asyncio.sleep(0.02)
        yield cloud.node.bound
    finally:
        assert cloud.node.server is not None
        cloud.node.server.should_exit = True
        await task


async def active(cloud: Cloud) -> str:
    _ctx, [uuid] = await build(cloud)
    await wait_for(cloud, uuid, vm_state="active", task_state=None)
    return uuid


async def console(cloud: Cloud, uuid: str, protocol: str, kind: str, *, version: str = "2.6",
                  expect: int = 200) -> httpx.Response:
    headers = {**await cloud.admin(), "OpenStack-API-Version": f"compute {version}"}
    r = await cloud.client.post(f"{API}/servers/{uuid}/remote-consoles", headers=headers,
                                json={"remote_console": {"protocol": protocol, "type": kind}})
    assert r.status_code == expect, r.text
    return r


async def test_serial_and_vnc_consoles_through_the_proxy(fleet_cloud: Cloud) -> None:
    uuid = await active(fleet_cloud)
    async with serving(fleet_cloud) as ports:
        proxy = ports["console proxy"]
        fleet_cloud.node.settings.console.proxy_port = proxy  # the URL the agents hand out names it
        serial = (await console(fleet_cloud, uuid, "serial", "serial")).json()["remote_console"]
        assert serial["protocol"] == "serial" and serial["url"].startswith(f"ws://127.0.0.1:{proxy}/?token=")
        async with websockets.connect(serial["url"], subprotocols=["binary"]) as ws:
            assert ws.subprotocol == "binary"
            greeting = await asyncio.wait_for(ws.recv(), 5)
            assert b"spawned" in greeting  # the fake guest's console log
            await ws.send(b"hello guest\n")
            assert await asyncio.wait_for(ws.recv(), 5) == b"hello guest\n"

        vnc = (await console(fleet_cloud, uuid, "vnc", "novnc")).json()["remote_console"]
        url = urlsplit(vnc["url"])
        assert url.path == "/vnc_lite.html"
        path = parse_qs(url.query)["path"][0]  # noVNC connects to ws://host:port/<path>
        assert path.startswith("?token=")
        async with websockets.connect(f"ws://127.0.0.1:{proxy}/{path}") as ws:
            assert await asyncio.wait_for(ws.recv(), 5) == b"RFB 003.008\n"

        token = path.removeprefix("?token=")
        headers = {**await fleet_cloud.admin(), "OpenStack-API-Version": "compute 2.31"}
        r = await fleet_cloud.client.get(f"{API}/os-console-auth-tokens/{token}", headers=headers)
        assert r.status_code == 200, r.text
        shown = r.json()["console"]
        assert shown["instance_uuid"] == uuid and shown["port"] == 0 and shown["internal_access_path"]

        for bad in (f"ws://127.0.0.1:{proxy}/?token=not-a-token", f"ws://127.0.0.1:{proxy}/"):
            with pytest.raises(websockets.exceptions.InvalidStatus):
                await websockets.connect(bad)
        with pytest.raises(websockets.exceptions.InvalidStatus):  # only binary frames are spoken
            await websockets.connect(serial["url"], subprotocols=["base64"])
        with pytest.raises(websockets.exceptions.InvalidStatus):  # another site's page may not use a token
            await websockets.connect(serial["url"], origin="http://evil.example")  # type: ignore[arg-type]


async def test_remote_console_requests_like_nova(fleet_cloud: Cloud) -> None:
    uuid = await active(fleet_cloud)
    r = await console(fleet_cloud, uuid, "vnc", "novnc", version="2.5", expect=404)
    r = await console(fleet_cloud, uuid, "vnc", "serial", expect=400)
    assert r.json()["badRequest"]["message"] == "Invalid console type serial"
    r = await console(fleet_cloud, uuid, "spice", "spice-html5", expect=400)
    assert r.json()["badRequest"]["message"] == "Unavailable console type spice-html5."
    r = await console(fleet_cloud, uuid, "rdp", "rdp-html5", expect=400)
    assert r.json()["badRequest"]["message"] == "Unavailable console type rdp."
    r = await console(fleet_cloud, uuid, "mks", "webmks", expect=400)  # mks arrives with 2.8
    r = await console(fleet_cloud, uuid, "vnc", "nope", expect=400)
    await console(fleet_cloud, "7b0b0000-0000-4000-8000-00000000dead", "vnc", "novnc", expect=404)

    headers = {**await fleet_cloud.admin(), "OpenStack-API-Version": "compute 2.1"}
    r = await fleet_cloud.client.post(f"{API}/servers/{uuid}/action", headers=headers,
                                      json={"os-getSerialConsole": {"type": "serial"}})
    assert r.status_code == 200 and r.json()["console"]["type"] == "serial", r.text
    r = await fleet_cloud.client.post(f"{API}/servers/{uuid}/action", headers=headers,
                                      json={"os-getVNCConsole": {"type": "xvpvnc"}})
    assert r.status_code == 400 and "Unavailable console type xvpvnc" in r.text
    headers["OpenStack-API-Version"] = "compute 2.6"
    r = await fleet_cloud.client.post(f"{API}/servers/{uuid}/action", headers=headers,
                                      json={"os-getVNCConsole": {"type": "novnc"}})
    assert r.status_code == 404

    r = await fleet_cloud.client.get(f"{API}/os-console-auth-tokens/whatever", headers={
        **await fleet_cloud.admin(), "OpenStack-API-Version": "compute 2.30"})
    assert r.status_code == 400
    r = await fleet_cloud.client.get(f"{API}/os-console-auth-tokens/whatever", headers={
        **await fleet_cloud.admin(), "OpenStack-API-Version": "compute 2.31"})
    assert r.status_code == 404 and r.json()["itemNotFound"]["message"] == "Token not found"

    async with fleet_cloud.node.db.session() as s:  # being deleted: Nova's reject_instance_state
        await save_instance(s, uuid, task_state="deleting")
    r = await console(fleet_cloud, uuid, "vnc", "novnc", expect=400)
    assert "task_state deleting" in r.json()["badRequest"]["message"]


async def test_a_stopped_guest_has_no_console(fleet_cloud: Cloud) -> None:
    uuid = await active(fleet_cloud)
    inst = await wait_for(fleet_cloud, uuid, vm_state="active")
    driver = next(a.driver for a in fleet_cloud.node.fleet.agents if a.host == inst.host)  # type: ignore[union-attr]
    driver.vanish(uuid)  # type: ignore[attr-defined]
    r = await console(fleet_cloud, uuid, "serial", "serial", expect=409)
    assert r.json()["conflictingRequest"]["message"] == f"Instance {uuid} is not ready"


# ----------------------------------------------------------------------------------- metadata API

async def metadata_client(cloud: Cloud) -> httpx.AsyncClient:
    assert cloud.node.metadata_api is not None
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=cloud.node.metadata_api.app()),
                             base_url="http://169.254.169.254")


def signed(cloud: Cloud, uuid: str, project: str = "p1") -> dict[str, str]:
    secret = shared_secret(cloud.node.settings.metadata.shared_secret, cloud.node.settings.state_dir)
    return {"X-Instance-ID": uuid, "X-Tenant-ID": project, "X-Instance-ID-Signature": sign_instance_id(secret, uuid)}


async def test_metadata_answers_only_for_the_signed_instance(fleet_cloud: Cloud) -> None:
    ctx = context()
    _ctx, [uuid] = await build(fleet_cloud, ctx=ctx)
    await wait_for(fleet_cloud, uuid, vm_state="active")
    async with fleet_cloud.node.db.session() as s:
        await save_instance(s, uuid, key_name="k", key_data="ssh-ed25519 AAAAkey k",
                            user_data=base64.b64encode(b"#!/bin/sh\necho hi\n").decode())
    async with await metadata_client(fleet_cloud) as md:
        r = await md.get("/")
        assert r.status_code == 200 and r.text.endswith("2009-04-04\nlatest")
        headers = signed(fleet_cloud, uuid)
        r = await md.get("/openstack/latest/meta_data.json", headers=headers)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        body = r.json()
        assert body["uuid"] == uuid and body["hostname"] == "vm-0.novalocal" and body["public_keys"] == {
            "k": "ssh-ed25519 AAAAkey k"}
        r = await md.get("/openstack/latest/network_data.json", headers=headers)
        assert r.headers["content-type"].startswith("text/plain") and json.loads(r.text) == {}
        assert (await md.get("/latest/meta-data/hostname", headers=headers)).text == "vm-0.novalocal"
        assert (await md.get("/openstack/latest/user_data", headers=headers)).content == b"#!/bin/sh\necho hi\n"
        assert (await md.get("/latest/meta-data/public-keys/0/openssh-key", headers=headers)).text.startswith(
            "ssh-ed25519")
        assert (await md.get("/openstack/latest/nothing", headers=headers)).status_code == 404

        for drop, message in (("X-Instance-ID", "X-Instance-ID header is missing from request."),
                              ("X-Instance-ID-Signature", "X-Instance-ID-Signature header is missing from request."),
                              ("X-Tenant-ID", "X-Tenant-ID header is missing from request.")):
            r = await md.get("/latest/meta-data/", headers={k: v for k, v in headers.items() if k != drop})
            assert (r.status_code, r.text) == (400, message)
        r = await md.get("/latest/meta-data/", headers={**headers, "X-Instance-ID-Signature": "0" * 64})
        assert (r.status_code, r.text) == (403, "Invalid proxy request signature.")
        r = await md.get("/latest/meta-data/", headers=signed(fleet_cloud, uuid, project="someone-else"))
        assert r.status_code == 404  # the instance exists, but not for that project: nothing is told
        other = "7b0b0000-0000-4000-8000-00000000dead"
        assert (await md.get("/latest/meta-data/", headers=signed(fleet_cloud, other))).status_code == 404


async def test_metadata_password_is_set_once(fleet_cloud: Cloud) -> None:
    _ctx, [uuid] = await build(fleet_cloud)
    await wait_for(fleet_cloud, uuid, vm_state="active")
    headers = signed(fleet_cloud, uuid)
    async with await metadata_client(fleet_cloud) as md:
        r = await md.get("/openstack/latest/password", headers=headers)
        assert (r.status_code, r.text) == (200, "")
        assert (await md.post("/openstack/latest/password", headers=headers, content=b"x" * 1021)).status_code == 400
        assert (await md.post("/openstack/latest/password", headers=headers, content=b"enc-pw")).status_code == 200
        assert (await md.get("/openstack/latest/password", headers=headers)).text == "enc-pw"
        assert (await md.post("/openstack/latest/password", headers=headers, content=b"again")).status_code == 409
        assert (await md.put("/openstack/latest/password", headers=headers, content=b"x")).status_code == 400
        assert (await md.get("/openstack/2012-08-10/password", headers=headers)).status_code == 404
