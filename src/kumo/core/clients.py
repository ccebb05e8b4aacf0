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
