"""The metadata API guests read at 169.254.169.254 (Nova's ``nova-api-metadata``, port 8775).

Guests never reach it directly: the network layer's metadata proxy (the
``qrouter``/``qdhcp`` namespace of the guest's network) forwards each request
with three headers naming the guest, as Neutron's metadata agent does for
Nova:

* ``X-Instance-ID`` - the instance uuid;
* ``X-Tenant-ID`` - its project;
* ``X-Instance-ID-Signature`` - hex HMAC-SHA256 of the instance id, keyed
  with the secret shared by the proxy and this API.

The answer is only ever about that instance, and only when the signature is
right (403 otherwise) and the project matches (404 otherwise, as Nova: a
guest learns nothing about instances that are not its own). Requests without
the headers are refused with Nova's 400 messages. Only ``GET /`` (the
version list) needs no identity.

``password`` is Nova's: the guest may POST an (encrypted) password once,
at most 1020 bytes, kept in the instance's system metadata.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import posixpath
import secrets
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router

from kumo.compute.instances import save_instance
from kumo.compute.metadata.content import (
    EC2_VERSIONS,
    MD_JSON,
    PASS_NAME,
    VD2_JSON,
    VD_JSON,
    InstanceMetadata,
    MetadataNotFound,
)
from kumo.compute.models import Instance
from kumo.core.db import Database

log = logging.getLogger("kumo.compute.metadata")

TEXT = "text/plain; charset=UTF-8"
JSON_FILES = {MD_JSON, VD_JSON, VD2_JSON}
MAX_PASSWORD = 4 * 255  # Nova keeps it in four 255-character system metadata items


def sign_instance_id(secret: str, instance_id: str) -> str:
    """The ``X-Instance-ID-Signature`` a metadata proxy sends (Neutron's metadata agent computes the same)."""
    return hmac.new(secret.encode(), instance_id.encode(), hashlib.sha256).hexdigest()


def shared_secret(configured: str, state_dir: Path) -> str:
    """The configured secret, or one generated once into ``state_dir/metadata-secret`` (0600)."""
    if configured:
        return configured
    path = state_dir / "metadata-secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        value = secrets.token_hex(32)
        path.touch(mode=0o600)
        path.write_text(value + "\n")
        return value


class MetadataError(Exception):
    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class MetadataAPI:
    def __init__(self, db: Database, secret: str, *, default_zone: str = "nova", dhcp_domain: str = "novalocal",
                 vendor_data: dict[str, Any] | None = None) -> None:
        self.db = db
        self.secret = secret
        self.default_zone = default_zone
        self.dhcp_domain = dhcp_domain
        self.vendor_data = vendor_data or {}

    def app(self) -> Router:
        return Router(routes=[Route("/{path:path}", self.handle, methods=["GET", "HEAD", "POST", "PUT", "DELETE"])])

    async def handle(self, request: Request) -> Response:
        path = posixpath.normpath("/" + request.url.path.lstrip("/"))
        if path == "/":
            return Response("\n".join((*EC2_VERSIONS, "latest")), media_type=TEXT)
        try:
            row = await self._identify(request)
            metadata = InstanceMetadata.from_instance(row, default_zone=self.default_zone,
                                                      dhcp_domain=self.dhcp_domain, vendor_data=self.vendor_data)
            parts = [p for p in path.split("/") if p]
            if len(parts) == 3 and parts[0] == "openstack" and parts[2] == PASS_NAME:
                return await self._password(request, row, metadata, parts[1])
            if request.method not in ("GET", "HEAD"):
                raise MetadataError(405, "Method not allowed.")
            body = metadata.lookup(path)
        except MetadataError as exc:
            return Response(exc.message, status_code=exc.status, media_type=TEXT)
        except MetadataNotFound:
            return Response("The resource could not be found.", status_code=404, media_type=TEXT)
        media = "application/json" if parts[-1] in JSON_FILES and parts[0] == "openstack" else TEXT
        return Response(body, media_type=media)

    async def _identify(self, request: Request) -> Instance:
        """The instance the signed headers name (Nova's ``_handle_instance_id_request``)."""
        headers = request.headers
        instance_ids = headers.getlist("x-instance-id")
        signature = headers.get("x-instance-id-signature")
        tenants = headers.getlist("x-tenant-id")
        if not instance_ids:
            raise MetadataError(400, "X-Instance-ID header is missing from request.")
        if signature is None:
            raise MetadataError(400, "X-Instance-ID-Signature header is missing from request.")
        if not tenants:
            raise MetadataError(400, "X-Tenant-ID header is missing from request.")
        if len(instance_ids) > 1:
            raise MetadataError(400, "Multiple X-Instance-ID headers found within request.")
        if len(tenants) > 1:
            raise MetadataError(400, "Multiple X-Tenant-ID headers found within request.")
        instance_id, tenant = instance_ids[0], tenants[0]
        if not hmac.compare_digest(sign_instance_id(self.secret, instance_id), signature):
            log.warning("metadata request for %s with a bad signature (from %s)", instance_id,
                        headers.get("x-forwarded-for") or (request.client.host if request.client else "?"))
            raise MetadataError(403, "Invalid proxy request signature.")
        async with self.db.session() as s:
            row = await s.get(Instance, instance_id[:36])
        if row is None or row.deleted_at is not None or row.uuid != instance_id:
            raise MetadataError(404, "The resource could not be found.")
        if row.project_id != tenant:
            log.warning("metadata request for %s names project %s, which does not own it", instance_id, tenant)
            raise MetadataError(404, "The resource could not be found.")
        return row

    async def _password(self, request: Request, row: Instance, metadata: InstanceMetadata,
                        version: str) -> Response:
        """Nova's ``password.handle_password``: GET reads it, POST sets it once."""
        if PASS_NAME not in metadata.openstack_files(version):
            raise MetadataError(404, "The resource could not be found.")
        if request.method in ("GET", "HEAD"):
            return Response(metadata.password, media_type="text/html; charset=UTF-8")
        if request.method != "POST":
            raise MetadataError(400, "GET and POST only are supported.")
        if metadata.password:
            raise MetadataError(409, "Password already set.")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_PASSWORD:
            raise MetadataError(400, "Request is too large.")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_PASSWORD:
                raise MetadataError(400, "Request is too large.")
        text = body.decode(errors="replace")
        sysmeta = dict(row.system_metadata or {})
        for i in range(4):
            sysmeta[f"password_{i}"] = text[i * 255:(i + 1) * 255]
        async with self.db.session() as s:
            await save_instance(s, row.uuid, system_metadata=sysmeta)
        return Response(b"", media_type=TEXT)


def load_vendor_data(path: str) -> dict[str, Any]:
    """``vendor_data.json`` from the operator's file (Nova's ``vendordata_jsonfile_path``); {} when unset or unreadable."""
    if not path:
        return {}
    try:
        data = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        log.warning("vendor data file %s ignored: %s", path, exc)
        return {}
    return data if isinstance(data, dict) else {}
