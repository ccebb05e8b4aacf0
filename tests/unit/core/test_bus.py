"""The bus contract (kumo.core.bus.base), run unchanged on both transports.

The same tests run on ``memory://`` and on a real RabbitMQ, because code above
the bus must not be able to tell them apart. The AMQP run is skipped when no
broker listens on 127.0.0.1:5672, except in CI, where that is a failure.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest

from kumo.core.bus import Bus, BusError, BusTimeout, Consumer, RemoteError, create_bus
from kumo.core.errors import NotFound

BROKER_HOST, BROKER_PORT = "127.0.0.1", 5672
BROKER_URL = f"amqp://guest:guest@{BROKER_HOST}:{BROKER_PORT}/"
WAIT = 5.0  # upper bound for anything that should happen "soon"; passing runs never reach it


class KillableProxy:
    """A TCP relay to the broker, so a test can cut a bus's connection the way a crash would."""

    def __init__(self) -> None:
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        """Listen on a free port and return it."""
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(BROKER_HOST, BROKER_PORT)
        self._writers += [writer, up_writer]
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    def kill(self) -> None:
        """Reset both sides at once: the broker sees the client vanish mid-message."""
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()


class Transport:
    """Makes buses for one test and cleans up after it; hides the memory/AMQP differences."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._buses: list[Bus] = []
        self._topics: list[str] = []
        self._proxies: list[KillableProxy] = []

    def topic(self) -> str:
        name = f"test-bus-{uuid.uuid4().hex[:12]}"
        self._topics.append(name)
        return name

    async def bus(self, *, killable: bool = False) -> Bus:
        """A started bus: another connection on AMQP, the one broker-in-a-process on memory."""
        if self.kind == "memory" and self._buses:
            return self._buses[0]
        url = "memory://" if self.kind == "memory" else BROKER_URL
        if killable and self.kind == "amqp":
            self._proxies.append(proxy := KillableProxy())
            url = f"amqp://guest:guest@127.0.0.1:{await proxy.start()}/"
        bus = create_bus(url, call_timeout=WAIT)
        await bus.start()
        self._buses.append(bus)
        return bus

    async def kill(self, consumer: Consumer) -> None:
        """Kill ``consumer`` mid-message: cancel it (memory) or reset its TCP link, as a crash would (AMQP)."""
        if self.kind == "memory":
            await consumer.stop()
        for proxy in self._proxies:
            proxy.kill()

    async def cleanup(self) -> None:
        for bus in self._buses:
            await bus.close()
        if self.kind == "amqp" and self._topics:
            connection = await aio_pika.connect(BROKER_URL)
            async with connection:
                channel = await connection.channel()
                for topic in self._topics:
                    await channel.queue_delete(f"kumo.{topic}")
                    await channel.exchange_delete(f"{topic}_fanout")


@pytest.fixture(params=["memory", pytest.param("amqp", marks=pytest.mark.rabbitmq)])
async def transport(request: pytest.FixtureRequest) -> AsyncIterator[Transport]:
    try:
        if request.param == "amqp":
            socket.create_connection((BROKER_HOST, BROKER_PORT), timeout=1).close()
    except OSError as exc:
        message = f"RabbitMQ is not reachable at {BROKER_HOST}:{BROKER_PORT}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run the AMQP bus tests")
        pytest.skip(message)
    t = Transport(request.param)
    yield t
    await t.cleanup()


class Recorder:
    """An endpoint that records what it received and can be held mid-method."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()  # set on each delivery
        self.entered = asyncio.Event()  # set when ``hold`` starts
        self.release = asyncio.Event()  # ``hold`` returns once this is set

    async def ping(self) -> str:
        return "pong"

    async def echo(self, **kwargs: Any) -> dict[str, Any]:
        return kwargs

    async def record(self, **kwargs: Any) -> None:
        self.received.append(kwargs)
        self.arrived.set()

    async def hold(self, **kwargs: Any) -> str:
        self.received.append(kwargs)
        self.entered.set()
        await self.release.wait()
        return "released"

    async def missing(self, name: str) -> None:
        raise NotFound(f"Server {name} could not be found.")

    async def broken(self) -> None:
        raise ValueError("bad value 42")

    async def opaque(self) -> object:
        return object()

    async def explode(self) -> None:
        self.received.append({})
        raise RuntimeError("boom")

    async def _secret(self) -> str:
        return "never dispatched"


async def wait_for(predicate: Any, timeout: float = WAIT) -> None:
    """Poll ``predicate`` until true; the deadline only matters when the test is failing."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def test_call_returns_value_with_args(transport: Transport) -> None:
    server, client, topic = await transport.bus(), await transport.bus(), transport.topic()
    await server.serve(topic, Recorder())
    assert await client.call(topic, "ping") == "pong"
    nested = {"name": "vm-ü", "tags": ["a", None], "meta": {"n": 1.5, "ok": True}}
    assert await client.call(topic, "echo", nested) == nested


async def test_remote_errors_reach_the_caller(transport: Transport) -> None:
    bus, topic = await transport.bus(), transport.topic()
    await bus.serve(topic, Recorder())
    with pytest.raises(NotFound, match="Server vm1 could not be found."):
        await bus.call(topic, "missing", {"name": "vm1"})
    for method in ("no_such_method", "_secret"):  # unknown and private methods are not dispatched
        with pytest.raises(NotFound, match="No such RPC method"):
            await bus.call(topic, method)
    with pytest.raises(RemoteError) as info:  # not a Kumo error
        await bus.call(topic, "broken")
    assert (info.value.exc_type, info.value.message) == ("ValueError", "bad value 42")
    with pytest.raises(RemoteError, match="TypeError"):  # a non-JSON return value fails at the callee
        await bus.call(topic, "opaque")


async def test_call_without_listener_times_out(transport: Transport) -> None:
    bus, topic = await transport.bus(), transport.topic()
    started = time.monotonic()
    with pytest.raises(BusTimeout) as info:
        await bus.call(topic, "build", {"x": 1}, timeout=1.0)
    assert 0.9 <= time.monotonic() - started < 2.0
    assert str(info.value) == f"no reply from topic {topic!r} to 'build' within 1.0s (is a consumer running?)"


async def test_cast_goes_to_exactly_one_of_competing_consumers(transport: Transport) -> None:
    topic, first, second = transport.topic(), Recorder(), Recorder()
    await (await transport.bus()).serve(topic, first)
    await (await transport.bus()).serve(topic, second)
    sender, n = await transport.bus(), 20
    for i in range(n):
        await sender.cast(topic, "record", {"i": i})
    await wait_for(lambda: len(first.received) + len(second.received) >= n)
    await asyncio.sleep(0.2)  # give any duplicate time to show up
    counts = Counter(msg["i"] for msg in first.received + second.received)
    assert counts == Counter(range(n))


async def test_cast_waits_for_a_consumer(transport: Transport) -> None:
    bus, topic, endpoint = await transport.bus(), transport.topic(), Recorder()
    await bus.cast(topic, "record", {"early": True})
    await asyncio.sleep(0.1)
    await (await transport.bus()).serve(topic, endpoint)
    await asyncio.wait_for(endpoint.arrived.wait(), WAIT)
    assert endpoint.received == [{"early": True}]


async def test_fanout_reaches_every_subscriber(transport: Transport) -> None:
    topic, subscribers, worker = transport.topic(), [Recorder(), Recorder()], Recorder()
    sender = await transport.bus()
    await sender.fanout(topic, "record", {"lost": True})  # nobody subscribed yet: dropped
    for endpoint in subscribers:
        await (await transport.bus()).serve(topic, endpoint, fanout=True)
    await (await transport.bus()).serve(topic, worker)  # a work-queue consumer does not get fanouts
    await sender.fanout(topic, "record", {"refresh": 1})
    for endpoint in subscribers:
        await asyncio.wait_for(endpoint.arrived.wait(), WAIT)
    await asyncio.sleep(0.1)
    assert [s.received for s in subscribers] == [[{"refresh": 1}], [{"refresh": 1}]]
    assert worker.received == []


async def test_consumer_dying_mid_message_redelivers(transport: Transport) -> None:
    topic, doomed, survivor = transport.topic(), Recorder(), Recorder()
    doomed_bus = await transport.bus(killable=True)
    doomed_consumer = await doomed_bus.serve(topic, doomed)
    sender = await transport.bus()
    await sender.cast(topic, "hold", {"job": 7})
    await asyncio.wait_for(doomed.entered.wait(), WAIT)
    await transport.kill(doomed_consumer)
    survivor.release.set()
    await (await transport.bus()).serve(topic, survivor)
    await asyncio.wait_for(survivor.entered.wait(), WAIT)
    assert doomed.received == survivor.received == [{"job": 7}]


async def test_cast_handler_error_is_logged_and_not_redelivered(
    transport: Transport, caplog: pytest.LogCaptureFixture
) -> None:
    bus, topic, endpoint = await transport.bus(), transport.topic(), Recorder()
    await bus.serve(topic, endpoint)
    with caplog.at_level(logging.ERROR, logger="kumo.bus"):
        await bus.cast(topic, "explode")
        await wait_for(lambda: endpoint.received)
        await asyncio.sleep(0.2)  # a redelivery would show up by now
    assert endpoint.received == [{}]
    assert any("explode" in r.getMessage() and r.exc_info for r in caplog.records if r.name == "kumo.bus")


async def test_non_json_args_fail_at_the_sender(transport: Transport) -> None:
    bus, topic = await transport.bus(), transport.topic()
    for send in (bus.cast, bus.fanout, bus.call):
        with pytest.raises((TypeError, BusError), match="not JSON-serialisable"):
            await send(topic, "record", {"when": object()})
    with pytest.raises((TypeError, BusError)):
        await bus.cast(topic, "record", {1: "non-string key"})


async def test_slow_handler_does_not_block_the_topic(transport: Transport) -> None:
    bus, topic, endpoint = await transport.bus(), transport.topic(), Recorder()
    await bus.serve(topic, endpoint)
    slow = asyncio.create_task(bus.call(topic, "hold", {"slow": True}))
    await asyncio.wait_for(endpoint.entered.wait(), WAIT)
    assert await bus.call(topic, "ping", timeout=2.0) == "pong"
    assert not slow.done()
    endpoint.release.set()
    assert await slow == "released"


async def test_close_fails_pending_calls(transport: Transport) -> None:
    server, topic, endpoint = await transport.bus(), transport.topic(), Recorder()
    await server.serve(topic, endpoint)
    client = await transport.bus()
    pending = asyncio.create_task(client.call(topic, "hold"))
    await asyncio.wait_for(endpoint.entered.wait(), WAIT)
    await client.close()
    with pytest.raises(BusError, match="closed"):
        await pending
    with pytest.raises(BusError):
        await client.cast(topic, "record")
