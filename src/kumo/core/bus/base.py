"""The message bus: RPC ``call`` / ``cast`` / ``fanout`` on named topics.

This is how one service talks to its own workers on other processes or hosts
(compute API -> conductor -> scheduler -> ``compute.<host>``), as
oslo.messaging does for OpenStack. Two transports implement this interface:
``memory://`` (in-process, the all-in-one default) and ``amqp://`` (RabbitMQ,
for multi-node). Code above the bus never knows which one runs.

Contract every transport keeps (tests/unit/core/test_bus.py runs it on both):

* Messages are JSON-serialisable dicts, never pickles. A message carries the
  method name, keyword arguments and the sender's RPC ``version``.
* ``cast`` to a topic is delivered to exactly one of the topic's consumers
  (work-queue semantics). A cast to a topic that nobody consumes yet waits
  in the queue until somebody does.
* ``call`` is a cast that waits for the return value. If no reply comes
  within ``timeout`` seconds it raises :class:`BusTimeout` naming the topic
  and method. An exception in the remote method is raised at the caller as
  the same :mod:`kumo.core.errors` class when it is one of those, else as
  :class:`RemoteError`.
* ``fanout`` is delivered to every consumer currently subscribed to the
  topic with ``fanout=True``; nobody listening means it is dropped.
* A message is acknowledged only after the endpoint method returns (or
  raises). A consumer that dies mid-message (task cancelled, connection lost)
  leaves the message unacknowledged and it is redelivered to another consumer
  - never lost.
* Endpoints are plain objects; a message for method ``m`` awaits
  ``endpoint.m(**args)``. Methods starting with ``_`` are never dispatched.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from kumo.core import errors

JsonDict = dict[str, Any]


class BusError(Exception):
    """Base of transport errors."""


class BusTimeout(BusError, TimeoutError):
    """A call got no reply in time (no listener on the topic, or it is too slow)."""


class RemoteError(BusError):
    """The remote endpoint raised an exception that is not a Kumo error."""

    def __init__(self, exc_type: str, message: str) -> None:
        self.exc_type = exc_type
        self.message = message
        super().__init__(f"{exc_type}: {message}")


class Consumer(ABC):
    """A running subscription; ``stop()`` ends it (in-flight messages are requeued)."""

    @abstractmethod
    async def stop(self) -> None: ...


class Bus(ABC):
    """One connection to the bus for a process."""

    @abstractmethod
    async def start(self) -> None:
        """Connect. Must be awaited before any other method."""

    @abstractmethod
    async def close(self) -> None:
        """Stop every consumer and disconnect."""

    @abstractmethod
    async def call(
        self, topic: str, method: str, args: JsonDict | None = None, *, timeout: float | None = None, version: str = "1.0"
    ) -> Any:
        """Send to one consumer of ``topic`` and return what the method returned."""

    @abstractmethod
    async def cast(self, topic: str, method: str, args: JsonDict | None = None, *, version: str = "1.0") -> None:
        """Send to one consumer of ``topic``; do not wait."""

    @abstractmethod
    async def fanout(self, topic: str, method: str, args: JsonDict | None = None, *, version: str = "1.0") -> None:
        """Send to every fanout subscriber of ``topic``; do not wait."""

    @abstractmethod
    async def serve(self, topic: str, endpoint: object, *, fanout: bool = False) -> Consumer:
        """Start consuming ``topic`` (or its fanout) and dispatch to ``endpoint``."""


def encode_error(exc: BaseException) -> JsonDict:
    """The wire form of an exception raised by an endpoint."""
    return {"type": type(exc).__name__, "message": str(getattr(exc, "message", exc))}


def decode_error(payload: JsonDict) -> Exception:
    """Rebuild a remote exception: a Kumo error class by name, else RemoteError."""
    cls = getattr(errors, str(payload.get("type")), None)
    if isinstance(cls, type) and issubclass(cls, errors.KumoError) and cls is not errors.PolicyDenied:
        return cls(str(payload.get("message", "")))
    return RemoteError(str(payload.get("type")), str(payload.get("message", "")))


def find_method(endpoint: object, method: str) -> Any:
    """The endpoint's public coroutine for ``method``, or raise NotFound."""
    if method.startswith("_") or not hasattr(endpoint, method):
        raise errors.NotFound(f"No such RPC method: {method}")
    return getattr(endpoint, method)


class Exposed:
    """An endpoint that offers only the named methods of ``target`` to the bus.

    Workers have public methods that are not RPC (start, stop, periodic
    audits); serving ``Exposed(worker, {...})`` instead of the worker keeps
    them out of reach of any message.
    """

    def __init__(self, target: object, methods: frozenset[str] | set[str]) -> None:
        self._target = target
        self._methods = frozenset(methods)

    def __getattr__(self, name: str) -> Any:
        if name in self._methods:
            return getattr(self._target, name)
        raise AttributeError(name)
