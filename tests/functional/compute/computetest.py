"""Helpers for the compute API suite: users in projects and short calls at a microversion.

Every test talks HTTP to the real in-process cloud (the ``cloud`` fixture
of tests/conftest.py), which mounts the compute API at ``/compute``.
``env.user("alice", "alpha")`` makes (once) a member of project ``alpha``;
``env.call(who, "GET", "/flavors", version="2.61")`` sends the request at
that microversion and checks the status.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from kumotest import Cloud

API = "/compute/v2.1"


@dataclass
class Caller:
    name: str
    user_id: str
    project_id: str
    headers: dict[str, str]


class ComputeEnv:
    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.client: httpx.AsyncClient = cloud.client
        self._admin: Caller | None = None
        self._users: dict[str, Caller] = {}

    async def admin(self) -> Caller:
        if self._admin is None:
            token = await self.cloud.token()
            r = await self.client.get("/identity/v3/auth/tokens", headers={"X-Auth-Token": token,
                                                                            "X-Subject-Token": token})
            body = r.json()["token"]
            self._admin = Caller("admin", body["user"]["id"], body["project"]["id"], {"X-Auth-Token": token})
        return self._admin

    async def user(self, name: str, project: str = "alpha", role: str = "member") -> Caller:
        """A user with ``role`` on ``project`` (both made on first use)."""
        if name not in self._users:
            admin = await self.admin()
            password = f"pw-{name}"
            user = await self.cloud.make_user(name, password, project=project, role=role, headers=admin.headers)
            token = await self.cloud.token(name, password, project=project)
            r = await self.client.get(f"/identity/v3/projects?name={project}", headers=admin.headers)
            self._users[name] = Caller(name, user["id"], r.json()["projects"][0]["id"], {"X-Auth-Token": token})
        return self._users[name]

    async def call(self, who: Caller, method: str, path: str, *, version: str | None = None, json: Any = None,
                   content: bytes | None = None, params: Any = None, expect: int | None = 200,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        all_headers = dict(who.headers)
        if version is not None:
            all_headers["OpenStack-API-Version"] = f"compute {version}"
        all_headers.update(headers or {})
        r = await self.client.request(method, f"{API}{path}", headers=all_headers, json=json, content=content,
                                      params=params)
        if expect is not None:
            assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
        return r

    async def create_flavor(self, name: str, version: str | None = None, expect: int = 200,
                            **fields: Any) -> dict[str, Any]:
        body = {"name": name, "ram": 256, "vcpus": 1, "disk": 1, **fields}
        r = await self.call(await self.admin(), "POST", "/flavors", version=version, json={"flavor": body},
                            expect=expect)
        return r.json()  # type: ignore[no-any-return]


def fault(r: httpx.Response, key: str, code: int) -> str:
    """The message of Nova's error body ``{key: {"code": code, "message": ...}}``."""
    assert r.status_code == code, r.text
    body = r.json()
    assert list(body) == [key], body
    assert body[key]["code"] == code, body
    return str(body[key]["message"])
