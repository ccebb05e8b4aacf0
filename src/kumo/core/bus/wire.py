"""The message format both bus transports share: build, read, run and answer messages.

Both ``memory://`` and ``amqp://`` go through these functions, so a message
behaves identically on either (a non-JSON argument fails the same way, an
error comes back as the same exception).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from typing import Any

import orjson

from kumo.core import errors
from kumo.core.bus.base import (
    BusError,
    BusTimeout,
    JsonDict,
    decode_error,
    encode_error,
    find_method,
)

log = logging.getLogger("kumo.bus")

#: Messages one consumer handles at once, so a slow method cannot block a
#: topic yet a flood cannot spawn unbounded tasks (AMQP: the prefetch count).
MAX_IN_FLIGHT = 64



def pack_request(
    topic: str, method: str, args: JsonDict | None, *, version: str, reply_to: str | None = None
) -> tuple[str, bytes]:
    """``(msg_id, body)`` for a request; raises TypeError at the sender for non-JSON args."""
    if args is not None and not isinstance(args, dict):
        raise TypeError(f"bus arguments for {topic!r}.{method!r} must be a dict, not {type(args).__name__}")
    msg_id = uuid.uuid4().hex
    message: JsonDict = {"v": version, "method": method, "args": args or {}, "msg_id": msg_id}
    if reply_to is not None:
        message["reply_to"] = reply_to
    try:
        return msg_id, orjson.dumps(message)
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise TypeError(f"bus arguments for {topic!r}.{method!r} are not JSON-serialisable: {exc}") from None


def unpack_request(body: bytes) -> JsonDict:
    """The request in ``body``; ValueError when it is not one (it is then dropped, not retried)."""
    message = orjson.loads(body)  # orjson.JSONDecodeError is a ValueError
    if not (isinstance(message, dict) and isinstance(message.get("method"), str)):
        raise ValueError("not a bus request")
    if not isinstance(message.get("args", {}), dict):
        raise ValueError("bus request args must be an object")
    return message


async def invoke(endpoint: object, message: JsonDict, topic: str) -> bytes | None:
    """Run ``message`` on ``endpoint``; the encoded reply for a call, None for a cast.

    Exceptions never escape (only cancellation does): a cast's are logged,
    since nobody waits for them, and a call's travel back to the caller.
    """
    method, msg_id = message["method"], message.get("msg_id")
    wants_reply = message.get("reply_to") is not None
    try:
        result = find_method(endpoint, method)(**message.get("args", {}))
        if inspect.isawaitable(result):
            result = await result
        if not wants_reply:
            return None
        return orjson.dumps({"msg_id": msg_id, "result": result})  # a non-JSON result fails here
    except Exception as exc:
        if not isinstance(exc, errors.KumoError) or not wants_reply:
            log.exception("bus %s %r.%r failed", "call" if wants_reply else "cast", topic, method)
        if not wants_reply:
            return None
        return orjson.dumps({"msg_id": msg_id, "error": encode_error(exc)})


def resolve_reply(pending: dict[str, asyncio.Future[Any]], body: bytes) -> None:
    """Complete the waiting call a reply belongs to (late replies are ignored)."""
    try:
        reply = orjson.loads(body)
        future = pending.get(reply["msg_id"])
    except (ValueError, TypeError, KeyError):
        log.error("dropping malformed bus reply: %r", body[:200])
        return
    if future is None or future.done():
        return  # the caller timed out or went away
    if "error" in reply:
        future.set_exception(decode_error(reply["error"]))
    else:
        future.set_result(reply.get("result"))


async def await_reply(
    future: asyncio.Future[Any], topic: str, method: str, timeout: float, *, shown: float | None = None
) -> Any:
    """The call's result, or BusTimeout saying who did not answer and how long (``shown``) we waited."""
    try:
        return await asyncio.wait_for(future, timeout)
    except TimeoutError:
        waited = float(timeout if shown is None else shown)
        raise BusTimeout(
            f"no reply from topic {topic!r} to {method!r} within {waited}s (is a consumer running?)"
        ) from None


def fail_pending(pending: dict[str, asyncio.Future[Any]]) -> None:
    """Wake every waiting call with BusError, because its reply can no longer arrive."""
    for future in pending.values():
        if not future.done():
            future.set_exception(BusError("the bus was closed before the reply arrived"))
    pending.clear()


# -- the in-process transport -------------------------------------------------
