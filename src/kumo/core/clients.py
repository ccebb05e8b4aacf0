"""Typed clients for other services' REST APIs, used with the caller's token.

A service never reads another service's tables; it asks the other service's
public API (compute asks the image service for an image's properties, a
compute agent uploads a snapshot), as Nova does through glanceclient. In an
all-in-one process the client talks to the node's own ASGI app through
``httpx.ASGITransport`` (same code path, no socket); on a split deployment it
talks HTTP to ``base_url``.

Errors come back as :mod:`kumo.core.errors` with the other service's
message, so a missing image is a NotFound the compute API can turn into its
own 400 ("Image ... could not be found.").
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from kumo.core import errors

_STATUS_ERRORS: dict[int, type[errors.KumoError]] = {
    400: errors.BadRequest, 401: errors.Unauthorized, 403: errors.Forbidden, 404: errors.NotFound,
    409: errors.Conflict, 413: errors.OverQuota,
}
CHUNK = 1 << 20


class ServiceClient:
    """An httpx client for one service's API root (``http://host:port/image``), token per call."""

    def __init__(self, base_url: str, *, transport: httpx.AsyncBaseTransport | None = None,
                 timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(base_url=self.base_url, transport=transport, timeout=timeout)

    async def close(self) -> None:
        await self._client.aclose()

    async def request(self, method: str, path: str, token: str | None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if token:
            headers["X-Auth-Token"] = token
        response = await self._client.request(method, path, headers=headers, **kwargs)
        if response.status_code >= 400:
            raise _error(response)
        return response


def _error(response: httpx.Response) -> errors.KumoError:
    """The other service's error as ours, keeping its message (Glance puts it in ``message``)."""
    message = response.text.strip()
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        inner = next(iter(body.values())) if len(body) == 1 and isinstance(next(iter(body.values())), dict) else body
        message = str(inner.get("message") or inner.get("title") or message)
    cls = _STATUS_ERRORS.get(response.status_code, errors.KumoError)
    return cls(message or f"HTTP {response.status_code}")


class ImageClient(ServiceClient):
    """The image service (Glance v2) as compute needs it."""

    async def get_image(self, token: str | None, image_id: str) -> dict[str, Any]:
        """The image's Glance JSON; NotFound when missing or not visible to the token's project."""
        response = await self.request("GET", f"/v2/images/{image_id}", token)
        return dict(response.json())

    async def create_image(self, token: str | None, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.request("POST", "/v2/images", token, json=body)
        return dict(response.json())

    async def delete_image(self, token: str | None, image_id: str) -> None:
        await self.request("DELETE", f"/v2/images/{image_id}", token)

    async def upload_file(self, token: str | None, image_id: str, path: Path) -> None:
        """Stream ``path`` into a queued image (``PUT /v2/images/{id}/file``)."""

        async def chunks() -> AsyncIterator[bytes]:
            with path.open("rb") as f:
                while chunk := f.read(CHUNK):
                    yield chunk

        await self.request("PUT", f"/v2/images/{image_id}/file", token, content=chunks(),
                           headers={"Content-Type": "application/octet-stream"})

    async def stream_file(self, token: str | None, image_id: str) -> AsyncIterator[bytes]:
        """The image's data in blocks of about ``CHUNK`` bytes, as the image service sends it."""
        headers = {"X-Auth-Token": token} if token else {}
        async with self._client.stream("GET", f"/v2/images/{image_id}/file", headers=headers) as response:
            if response.status_code >= 400:
                await response.aread()
                raise _error(response)
            async for chunk in response.aiter_bytes(CHUNK):
                yield chunk


class ServiceAuth:
    """The token of Kumo's own service user, fetched from the identity API and renewed before it expires.

    Nova's neutron client acts with its ``[neutron]`` credentials where the
    caller may not (binding a port to a host, deleting the ports it made), and
    so does Kumo's compute: with the ``kumo`` user, which holds the admin role
    on the ``service`` project. The password is never logged.
    """

    def __init__(self, identity: ServiceClient, username: str, password: str, *, project: str = "service",
                 domain: str = "Default", margin: float = 300.0) -> None:
        self._identity = identity
        self._username = username
        self._password = password
        self._project = project
        self._domain = domain
        self._margin = margin
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        async with self._lock:
            if self._token is None or time.time() > self._expires - self._margin:
                self._token, self._expires = await self._issue()
            return self._token

    def invalidate(self) -> None:
        """Forget the token (it was refused: revoked, or the keys rotated)."""
        self._token = None

    async def _issue(self) -> tuple[str, float]:
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": self._username, "domain": {"name": self._domain}, "password": self._password}}},
            "scope": {"project": {"name": self._project, "domain": {"name": self._domain}}}}}
        response = await self._identity.request("POST", "/v3/auth/tokens", None, json=body)
        expires = dt.datetime.fromisoformat(response.json()["token"]["expires_at"].replace("Z", "+00:00"))
        return response.headers["X-Subject-Token"], expires.timestamp()


class NetworkClient(ServiceClient):
    """The network service (Neutron v2.0) as compute needs it: networks, ports, floating IPs, security groups."""

    async def _get(self, token: str | None, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return dict((await self.request("GET", f"/v2.0/{path}", token, params=params)).json())

    async def get_network(self, token: str | None, network_id: str) -> dict[str, Any]:
        return dict((await self._get(token, f"networks/{network_id}"))["network"])

    async def list_networks(self, token: str | None, **filters: Any) -> list[dict[str, Any]]:
        return list((await self._get(token, "networks", filters))["networks"])

    async def list_subnets(self, token: str | None, **filters: Any) -> list[dict[str, Any]]:
        return list((await self._get(token, "subnets", filters))["subnets"])

    async def get_port(self, token: str | None, port_id: str) -> dict[str, Any]:
        return dict((await self._get(token, f"ports/{port_id}"))["port"])

    async def list_ports(self, token: str | None, **filters: Any) -> list[dict[str, Any]]:
        return list((await self._get(token, "ports", filters))["ports"])

    async def create_port(self, token: str | None, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.request("POST", "/v2.0/ports", token, json={"port": body})
        return dict(response.json()["port"])

    async def update_port(self, token: str | None, port_id: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.request("PUT", f"/v2.0/ports/{port_id}", token, json={"port": body})
        return dict(response.json()["port"])

    async def delete_port(self, token: str | None, port_id: str) -> None:
        await self.request("DELETE", f"/v2.0/ports/{port_id}", token)

    async def list_floating_ips(self, token: str | None, **filters: Any) -> list[dict[str, Any]]:
        return list((await self._get(token, "floatingips", filters))["floatingips"])

    async def list_security_groups(self, token: str | None, **filters: Any) -> list[dict[str, Any]]:
        return list((await self._get(token, "security-groups", filters))["security_groups"])

    async def get_security_group(self, token: str | None, group_id: str) -> dict[str, Any]:
        return dict((await self._get(token, f"security-groups/{group_id}"))["security_group"])

    async def create_security_group(self, token: str | None, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.request("POST", "/v2.0/security-groups", token, json={"security_group": body})
        return dict(response.json()["security_group"])

    async def update_security_group(self, token: str | None, group_id: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.request("PUT", f"/v2.0/security-groups/{group_id}", token,
                                      json={"security_group": body})
        return dict(response.json()["security_group"])

    async def delete_security_group(self, token: str | None, group_id: str) -> None:
        await self.request("DELETE", f"/v2.0/security-groups/{group_id}", token)

    async def get_security_group_rule(self, token: str | None, rule_id: str) -> dict[str, Any]:
        return dict((await self._get(token, f"security-group-rules/{rule_id}"))["security_group_rule"])

    async def create_security_group_rule(self, token: str | None, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.request("POST", "/v2.0/security-group-rules", token,
                                      json={"security_group_rule": body})
        return dict(response.json()["security_group_rule"])

    async def delete_security_group_rule(self, token: str | None, rule_id: str) -> None:
        await self.request("DELETE", f"/v2.0/security-group-rules/{rule_id}", token)
