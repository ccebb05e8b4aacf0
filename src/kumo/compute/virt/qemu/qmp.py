"""Talking to a guest's QEMU over QMP, through the ``qemu.qmp`` library (QEMU's own async client).

One short session per operation: connect to the guest's monitor socket,
negotiate, run the commands, disconnect. QEMU accepts one monitor client at a
time, so sessions on one guest are serialised (the agent holds the instance's
lock for actions; reads take this module's per-socket lock). Failures become
:class:`QmpError` (a ``VirtError``) carrying QEMU's own message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from qemu.qmp import ConnectError, ExecuteError, QMPClient, QMPError

from kumo.compute.virt.base import VirtError

# qemu.qmp logs every connection, and every failed one as an ERROR with a traceback; the failures
# reach the caller as QmpError with the reason, and the agent's own log says what matters.
logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)

CONNECT_TIMEOUT = 5.0
COMMAND_TIMEOUT = 30.0
_locks: dict[str, asyncio.Lock] = {}


class QmpError(VirtError):
    """A QMP command failed or the monitor could not be reached; the message is QEMU's."""


@contextlib.asynccontextmanager
async def session(socket: Path, *, timeout: float = CONNECT_TIMEOUT) -> AsyncIterator[QMPClient]:
    """An open, negotiated QMP session on ``socket`` for the duration of the block."""
    key = str(socket)
    lock = _locks.setdefault(key, asyncio.Lock())
    async with lock:
        client = QMPClient(f"kumo:{socket.parent.name}")
        try:
            await asyncio.wait_for(client.connect(key), timeout)
        except (ConnectError, OSError, asyncio.TimeoutError) as exc:
            with contextlib.suppress(Exception):
                await client.disconnect()
            raise QmpError(f"QEMU monitor {socket} is not answering: {_reason(exc)}") from exc
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                await client.disconnect()
    if not lock.locked() and _locks.get(key) is lock:
        del _locks[key]


async def execute(client: QMPClient, command: str, arguments: dict[str, Any] | None = None, *,
                  timeout: float = COMMAND_TIMEOUT) -> Any:
    """Run one command in an open session; QEMU's error ``desc`` becomes the QmpError message."""
    try:
        return await asyncio.wait_for(client.execute(command, arguments), timeout)
    except ExecuteError as exc:
        raise QmpError(f"QEMU refused {command}: {exc}") from exc
    except (QMPError, OSError, asyncio.TimeoutError) as exc:
        raise QmpError(f"QMP {command} failed: {_reason(exc)}") from exc


async def command(socket: Path, name: str, arguments: dict[str, Any] | None = None, *,
                  timeout: float = COMMAND_TIMEOUT) -> Any:
    """Connect, run one command, disconnect."""
    async with session(socket) as client:
        return await execute(client, name, arguments, timeout=timeout)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
