"""Helpers of the network API suite: callers in projects and short calls that check the status.

``net.user("alice", "alpha")`` makes (once) a member of project ``alpha``;
``await net.call(who, "POST", "/networks", json=..., expect=201)`` sends it
to ``/network/v2.0/networks``; :func:`neutron_error` unpacks Neutron's error body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from kumotest import Cloud

API = "/network/v2.0"


@dataclass
class Caller:
    name: str
    project_id: str
    headers: dict[str, str]


class NetEnv:
    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.client: httpx.AsyncClient = cloud.client
        self._callers: dict[str, Caller] = {}

    async def admin(self) -> Caller:
        if "admin" not in self._callers:
            token = await self.cloud.token()
            r = await self.client.get("/identity/v3/auth/tokens", headers={"X-Auth-Token": token,
                                                                            "X-Subject-Token": token})
            self._callers["admin"] = Caller("admin", r.json()["token"]["project"]["id"], {"X-Auth-Token": token})
        return self._callers["admin"]

    async def user(self, name: str, project: str = "alpha", role: str = "member") -> Caller:
        if name not in self._callers:
            admin = await self.admin()
            await self.cloud.make_user(name, f"pw-{name}", project=project, role=role, headers=admin.headers)
            token = await self.cloud.token(name, f"pw-{name}", project=project)
            r = await self.client.get(f"/identity/v3/projects?name={project}", headers=admin.headers)
            self._callers[name] = Caller(name, r.json()["projects"][0]["id"], {"X-Auth-Token": token})
        return self._callers[name]

    async def call(self, who: Caller, method: str, path: str, *, json: Any = None, content: bytes | None = None,
                   params: Any = None, expect: int | None = 200) -> httpx.Response:
        r = await self.client.request(method, f"{API}{path}", headers=who.headers, json=json, content=content,
                                      params=params)
        if expect is not None:
            assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
        return r

    async def network(self, who: Caller, **fields: Any) -> dict[str, Any]:
        r = await self.call(who, "POST", "/networks", json={"network": {"name": "net", **fields}}, expect=201)
        return r.json()["network"]  # type: ignore[no-any-return]

    async def subnet(self, who: Caller, network_id: str, cidr: str = "10.0.0.0/24", **fields: Any
                     ) -> dict[str, Any]:
        body = {"subnet": {"network_id": network_id, "cidr": cidr, "ip_version": 6 if ":" in cidr else 4,
                           **fields}}
        return (await self.call(who, "POST", "/subnets", json=body, expect=201)).json()["subnet"]  # type: ignore

    async def port(self, who: Caller, network_id: str, expect: int = 201, **fields: Any) -> dict[str, Any]:
        r = await self.call(who, "POST", "/ports", json={"port": {"network_id": network_id, **fields}},
                            expect=expect)
        return r.json()  # type: ignore[no-any-return]


def neutron_error(r: httpx.Response, status: int, kind: str | None = None) -> str:
    """The message of ``{"NeutronError": {"type", "message", "detail"}}``, after checking status and type."""
    assert r.status_code == status, r.text
    body = r.json()["NeutronError"]
    assert set(body) == {"type", "message", "detail"}, body
    if kind is not None:
        assert body["type"] == kind, body
    return str(body["message"])
