"""Helpers for the image API suite: projects with users, and short image calls.

Every test talks HTTP to the real in-process cloud (the ``cloud`` fixture of
tests/conftest.py). ``env.project("alpha")`` makes (once) a project with a
``member`` user and returns its id and token headers; the helpers below keep
the tests about the behaviour, not the plumbing.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from kumotest import Cloud

API = "/image/v2"
IMAGES = f"{API}/images"
PATCH_TYPE = "application/openstack-images-v2.1-json-patch"
OCTET = {"Content-Type": "application/octet-stream"}


@dataclass
class Project:
    name: str
    id: str
    headers: dict[str, str]


class ImageEnv:
    """A cloud plus the projects and image helpers the tests share."""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.client: httpx.AsyncClient = cloud.client
        self._admin: Project | None = None
        self._projects: dict[tuple[str, str], Project] = {}

    async def admin(self) -> Project:
        if self._admin is None:
            headers = await self.cloud.admin()
            self._admin = Project("admin", await self.project_id("admin", headers), headers)
        return self._admin

    async def project_id(self, name: str, headers: dict[str, str] | None = None) -> str:
        headers = headers or (await self.admin()).headers
        r = await self.client.get(f"/identity/v3/projects?name={name}", headers=headers)
        assert r.status_code == 200, r.text
        return str(r.json()["projects"][0]["id"])

    async def project(self, name: str, role: str = "member") -> Project:
        """A user with ``role`` on project ``name`` (both made on first use)."""
        key = (name, role)
        if key not in self._projects:
            admin = await self.admin()
            user = f"{name}-{role}"
            await self.cloud.make_user(user, "pw-" + user, project=name, role=role, headers=admin.headers)
            token = await self.cloud.token(user, "pw-" + user, project=name)
            self._projects[key] = Project(name, await self.project_id(name), {"X-Auth-Token": token})
        return self._projects[key]

    # -- images ------------------------------------------------------------------------------------
    async def create(self, who: Project, expect: int = 201, **fields: Any) -> dict[str, Any]:
        r = await self.client.post(IMAGES, headers=who.headers, json=fields)
        assert r.status_code == expect, r.text
        return r.json()  # type: ignore[no-any-return]

    async def show(self, who: Project, image_id: str, expect: int = 200) -> dict[str, Any]:
        r = await self.client.get(f"{IMAGES}/{image_id}", headers=who.headers)
        assert r.status_code == expect, r.text
        return r.json()  # type: ignore[no-any-return]

    async def list(self, who: Project, params: Any = None, expect: int = 200) -> dict[str, Any]:
        r = await self.client.get(IMAGES, headers=who.headers, params=params)
        assert r.status_code == expect, r.text
        return r.json()  # type: ignore[no-any-return]

    async def list_ids(self, who: Project, params: Any = None) -> list[str]:
        return [i["id"] for i in (await self.list(who, params))["images"]]

    async def patch(self, who: Project, image_id: str, ops: Any, expect: int = 200) -> httpx.Response:
        r = await self.client.patch(f"{IMAGES}/{image_id}", headers={**who.headers, "Content-Type": PATCH_TYPE},
                                    json=ops)
        assert r.status_code == expect, r.text
        return r

    async def upload(self, who: Project, image_id: str, data: Any, expect: int = 204) -> httpx.Response:
        r = await self.client.put(f"{IMAGES}/{image_id}/file", headers={**who.headers, **OCTET}, content=data)
        assert r.status_code == expect, r.text
        return r

    async def download(self, who: Project, image_id: str, expect: int = 200,
                       headers: dict[str, str] | None = None) -> httpx.Response:
        r = await self.client.get(f"{IMAGES}/{image_id}/file", headers={**who.headers, **(headers or {})})
        assert r.status_code == expect, r.text
        return r

    async def active(self, who: Project, data: bytes | None = None, **fields: Any) -> dict[str, Any]:
        """A raw/bare image with ``data`` uploaded (active)."""
        fields = {"disk_format": "raw", "container_format": "bare", **fields}
        image = await self.create(who, **fields)
        await self.upload(who, image["id"], os.urandom(1024) if data is None else data)
        return await self.show(who, image["id"])

    async def add_member(self, who: Project, image_id: str, member: str, expect: int = 200) -> httpx.Response:
        r = await self.client.post(f"{IMAGES}/{image_id}/members", headers=who.headers, json={"member": member})
        assert r.status_code == expect, r.text
        return r

    async def set_member(self, who: Project, image_id: str, member: str, status: str,
                         expect: int = 200) -> httpx.Response:
        r = await self.client.put(f"{IMAGES}/{image_id}/members/{member}", headers=who.headers,
                                  json={"status": status})
        assert r.status_code == expect, r.text
        return r

    def images_dir(self) -> Path:
        return Path(self.cloud.node.settings.state_dir) / "images"

    def stored_files(self) -> list[str]:
        """Everything in the file store's directory, temporary ``.part`` files included."""
        return sorted(p.name for p in self.images_dir().iterdir())

    async def wait_status(self, who: Project, image_id: str, statuses: set[str], timeout: float = 10.0
                          ) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            image = await self.show(who, image_id)
            if image["status"] in statuses:
                return image
            assert asyncio.get_running_loop().time() < deadline, f"image stuck in {image['status']}"
            await asyncio.sleep(0.02)


async def chunked(data: bytes, size: int = 65536, delay: float = 0.0) -> AsyncIterator[bytes]:
    """``data`` as an async stream of ``size``-byte chunks, ``delay`` seconds apart."""
    for i in range(0, len(data), size):
        if delay:
            await asyncio.sleep(delay)
        yield data[i:i + size]


def qcow2_header(virtual_size: int = 1 << 30, backing: bytes | None = None, version: int = 2) -> bytes:
    """A minimal qcow2 image: the header (and a backing file name after it, if any), one cluster long."""
    import struct

    cluster_bits = 16
    backing_offset = 512 if backing else 0
    header = struct.pack(">4sIQIIQIIQQIIQ", b"QFI\xfb", version, backing_offset, len(backing or b""),
                         cluster_bits, virtual_size, 0, 1, 3 << cluster_bits, 1 << cluster_bits, 1, 0, 0)
    if version == 3:
        header += struct.pack(">QQQII", 0, 0, 0, 4, 104)
    data = bytearray(1 << cluster_bits)
    data[:len(header)] = header
    if backing:
        data[512:512 + len(backing)] = backing
    return bytes(data)
