"""Remote consoles: short-lived tokens and the websocket proxy that joins a browser to a guest's console.

Nova's design, kept: the compute agent of the guest's host issues the token
(a random uuid; only its SHA-256 is stored, with the console's address and
an expiry, Nova's ``console_auth_tokens``) and answers with a URL built from
*its* proxy base URL; the proxy validates the token when the browser
connects and relays bytes between the websocket and the console.

One difference: the proxy runs on every compute node and reaches consoles
through the Unix sockets QEMU opened in the guest's run directory, so no
console ever listens on a TCP port (QEMU's VNC has no authentication; Nova
relies on firewalling the compute hosts' VNC ports instead). A token is only
honoured by the proxy of the host that issued it.

The proxy (``proxy_app``) serves, on one port:

* ``GET /<file>`` - the noVNC client (``console.novnc_web``) when installed;
* websocket ``/`` (or ``/websockify``) - the relay. The token comes from the
  ``token`` query parameter or cookie (noVNC's ``path=%3Ftoken%3D...``
  becomes ``/?token=...``). The ``binary`` subprotocol is chosen when
  offered, as websockify does; a browser's ``Origin`` must name the host it
  connected to (cross-site websocket hijacking).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit

from sqlalchemy import delete, select
from starlette.routing import Mount, Router, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from kumo.compute.models import ConsoleAuthToken
from kumo.core.db import Database

log = logging.getLogger("kumo.compute.consoles")

#: Console types Kumo serves -> (protocol, the driver's console kind).
CONSOLE_TYPES = {"novnc": ("vnc", "vnc"), "serial": ("serial", "serial")}
RELAY_CHUNK = 65536


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def console_url(base_url: str, console_type: str, token: str) -> str:
    """Nova's URLs: noVNC wants the token inside its ``path`` parameter, everything else ``?token=``."""
    if console_type == "novnc":
        return f"{base_url}?path={quote('?token=' + token, safe='')}"
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}token={token}"


async def issue_token(db: Database, *, instance_uuid: str, host: str, console_type: str, socket_path: str,
                      base_url: str, ttl: int) -> str:
    """Store a new token for the console and return the URL that carries it (the token itself is not kept)."""
    token = str(uuid.uuid4())
    now = int(time.time())
    async with db.session() as s:
        await s.execute(delete(ConsoleAuthToken).where(ConsoleAuthToken.expires < now))
        s.add(ConsoleAuthToken(token_hash=token_hash(token), console_type=console_type, host=host, port=0,
                               internal_access_path=socket_path, access_url_base=base_url,
                               instance_uuid=instance_uuid, expires=now + ttl))
    return console_url(base_url, console_type, token)


async def find_token(db: Database, token: str) -> ConsoleAuthToken | None:
    """The live (unexpired) record of ``token``, or None."""
    async with db.session() as s:
        row = await s.scalar(select(ConsoleAuthToken).where(ConsoleAuthToken.token_hash == token_hash(token)))
    if row is None or row.expires < int(time.time()):
        return None
    return row


def _origin_ok(websocket: WebSocket) -> bool:
    """No Origin (a non-browser client), or one naming the host the browser connected to."""
    origin = websocket.headers.get("origin")
    if not origin:
        return True
    host = websocket.headers.get("host", "")
    return urlsplit(origin).hostname == urlsplit(f"//{host}").hostname


class ConsoleProxy:
    """The relay of one compute node (its ``hosts``): only their tokens, only to their own sockets."""

    def __init__(self, db: Database, hosts: set[str], novnc_web: str = "") -> None:
        self.db = db
        self.hosts = hosts
        self.novnc_web = novnc_web

    def app(self) -> Router:
        routes: list[object] = [WebSocketRoute("/", self.relay), WebSocketRoute("/websockify", self.relay)]
        if self.novnc_web and Path(self.novnc_web).is_dir():
            routes.append(Mount("/", app=StaticFiles(directory=self.novnc_web, html=False)))
        return Router(routes=routes)  # type: ignore[arg-type]

    async def relay(self, websocket: WebSocket) -> None:
        offered = websocket.scope.get("subprotocols") or []
        if offered and "binary" not in offered:
            await websocket.close(code=1002)  # websockify: only binary frames are spoken
            return
        token = websocket.query_params.get("token") or websocket.cookies.get("token") or ""
        record = await find_token(self.db, token) if token else None
        if record is None or record.host not in self.hosts or not record.internal_access_path or not _origin_ok(websocket):
            log.info("console connection refused: %s", "bad origin" if record else "invalid or expired token")
            await websocket.close(code=1008)
            return
        try:
            reader, writer = await asyncio.open_unix_connection(record.internal_access_path)
        except OSError as exc:
            log.info("console of %s is not reachable: %s", record.instance_uuid, exc)
            await websocket.close(code=1011)
            return
        await websocket.accept(subprotocol="binary" if offered else None)
        log.info("console %s of instance %s connected", record.console_type, record.instance_uuid)
        try:
            await _pump(websocket, reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            log.info("console %s of instance %s closed", record.console_type, record.instance_uuid)


async def _pump(websocket: WebSocket, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Bytes both ways until either side ends."""

    async def to_console() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                data = message.get("bytes") or (message.get("text") or "").encode()
                writer.write(data)
                await writer.drain()

    async def to_browser() -> None:
        while data := await reader.read(RELAY_CHUNK):
            await websocket.send_bytes(data)
        with contextlib.suppress(Exception):
            await websocket.close()

    tasks = [asyncio.create_task(to_console()), asyncio.create_task(to_browser())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
