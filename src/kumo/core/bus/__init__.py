"""The message bus (see :mod:`kumo.core.bus.base` for the contract)."""

from __future__ import annotations

from kumo.core.bus.base import Bus, BusError, BusTimeout, Consumer, RemoteError


def create_bus(url: str, *, call_timeout: float = 60.0) -> Bus:
    """A bus for ``url``: ``memory://`` or ``amqp://...``. Not started yet."""
    if url.startswith("memory://"):
        from kumo.core.bus.inproc import InProcessBus

        return InProcessBus(call_timeout=call_timeout)
    if url.startswith(("amqp://", "amqps://")):
        from kumo.core.bus.amqp import AmqpBus

        return AmqpBus(url, call_timeout=call_timeout)
    raise ValueError(f"unknown bus URL scheme: {url.split(':', 1)[0]!r} (use memory:// or amqp://)")


__all__ = ["Bus", "BusError", "BusTimeout", "Consumer", "RemoteError", "create_bus"]
