"""The ``amqp://`` bus: RabbitMQ via aio-pika, for multi-node deployments.

Layout on the broker, chosen so that a restart of any one process loses
nothing:

* ``kumo.<topic>``: one durable queue per topic, shared by the topic's
  consumers (work-queue semantics). Senders declare it too, so a cast sent
  before any consumer exists waits in it instead of being dropped.
* ``<topic>_fanout``: a durable fanout exchange; every fanout subscriber binds
  its own exclusive auto-delete queue, which disappears with the subscriber.
* ``kumo.reply.<uuid>``: one exclusive reply queue per bus. Calls carry its
  name in ``reply_to`` and a ``msg_id`` that maps to the waiting future.

Deliveries are acked only after the endpoint returns, with at most
``MAX_IN_FLIGHT`` unacked per consumer (the prefetch count), each in its own
task. A consumer whose channel or connection dies leaves its messages
unacked, and RabbitMQ hands them to another consumer.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import aio_pika
import aiormq.exceptions
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.exceptions import PublishError

from kumo.core.bus.base import Bus, BusError, BusTimeout, Consumer, JsonDict
from kumo.core.bus.wire import (
    MAX_IN_FLIGHT,
    await_reply,
    fail_pending,
    invoke,
    pack_request,
    resolve_reply,
    unpack_request,
)

log = logging.getLogger("kumo.bus")

#: What a dead channel or connection raises; handlers log these instead of crashing.
_LINK_ERRORS = (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError, ConnectionError, BusError)


class _AmqpConsumer(Consumer):
    """One basic.consume on its own channel, so closing it requeues exactly its unacked messages."""

    def __init__(self, bus: AmqpBus, topic: str, channel: AbstractChannel, queue: AbstractQueue, endpoint: object):
        self._bus, self._topic, self._channel, self._queue, self._endpoint = bus, topic, channel, queue, endpoint
        self._tasks: set[asyncio.Task[None]] = set()
        self._tag: str | None = None
        self._stopped = False

    async def start(self) -> None:
        self._tag = await self._queue.consume(self._on_message, no_ack=False)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        """Hand the delivery to its own task, so consuming never waits for a handler."""
        if self._stopped:
            return  # arrived while stopping: left unacked, requeued when the channel closes
        self._spawn(self._handle(message))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            request = unpack_request(message.body)
        except ValueError:
            log.error("dropping malformed bus message on %r: %r", self._topic, message.body[:200])
            await self._settle(message.reject(requeue=False))
            return
        try:
            reply = await invoke(self._endpoint, request, self._topic)
        except asyncio.CancelledError:
            if not self._stopped:  # cancelled from outside: give the message back now
                self._spawn(self._settle(message.nack(requeue=True)))
            raise
        if reply is not None:
            await self._settle(self._bus._reply(str(request["reply_to"]), reply))
        await self._settle(message.ack())

    async def _settle(self, operation: Any) -> None:
        """Await an ack/nack/reply; a dead link only means RabbitMQ will redeliver."""
        try:
            await operation
        except _LINK_ERRORS as exc:
            log.warning("bus %r: could not settle a message (%s); the broker will redeliver it", self._topic, exc)

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._tag is not None and self._bus._link_up():  # with the link down it waits for recovery
            await _quietly(self._queue.cancel(self._tag))
        in_flight = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in in_flight:
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)
        # The broker requeues whatever we did not ack; closing also stops the robust
        # channel from restoring this consumer after a reconnect.
        await _quietly(self._channel.close())
        self._bus._consumers.discard(self)


async def _quietly(operation: Any, timeout: float = 5.0) -> None:
    """Best-effort broker housekeeping: never let a dead or stalled link block a shutdown."""
    try:
        await asyncio.wait_for(operation, timeout)
    except (*_LINK_ERRORS, TimeoutError) as exc:
        log.debug("bus shutdown step failed: %r", exc)


class AmqpBus(Bus):
    """A bus on one robust RabbitMQ connection: a shared publishing channel plus one channel per consumer."""

    def __init__(self, url: str, *, call_timeout: float = 60.0) -> None:
        self._url = url
        self._call_timeout = call_timeout
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._reply_queue_name = f"kumo.reply.{uuid.uuid4().hex}"
        self._declared: set[str] = set()
        self._exchanges: dict[str, AbstractExchange] = {}
        self._consumers: set[_AmqpConsumer] = set()
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._closed = False

    async def start(self) -> None:
        if self._closed:
            raise BusError("the bus is closed")
        self._connection = await aio_pika.connect_robust(self._url)
        # Confirms make a publish return only once the broker has the message;
        # on_return_raises turns "no such queue" into PublishError instead of a silent drop.
        self._channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        # Named by us (not amq.gen-*) so the robust channel can redeclare it after a reconnect.
        reply_queue = await self._channel.declare_queue(self._reply_queue_name, exclusive=True, auto_delete=True)
        await reply_queue.consume(self._on_reply, no_ack=True)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Together: against a broker that has gone away each stop waits out its own timeout, and one after the
        # other a node with several consumers took that many times as long to stop.
        await asyncio.gather(*(consumer.stop() for consumer in list(self._consumers)))
        fail_pending(self._pending)
        if self._connection is not None:
            await _quietly(self._connection.close())

    def _link_up(self) -> bool:
        return self._connection is not None and self._connection.connected.is_set()

    def _open_channel(self) -> AbstractChannel:
        if self._closed or self._channel is None:
            raise BusError(f"the bus is {'closed' if self._closed else 'not started'}")
        return self._channel

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        resolve_reply(self._pending, message.body)

    async def _reply(self, reply_to: str, body: bytes) -> None:
        """Send a call's answer; mandatory=False because a vanished caller is not an error."""
        message = aio_pika.Message(body, content_type="application/json")
        await self._open_channel().default_exchange.publish(message, routing_key=reply_to, mandatory=False)

    async def _send(self, topic: str, message: aio_pika.Message) -> None:
        """Publish to the topic's queue, declaring it first so the message waits for a consumer."""
        channel = self._open_channel()
        queue_name = f"kumo.{topic}"
        for attempt in (1, 2):
            if queue_name not in self._declared:
                await channel.declare_queue(queue_name, durable=True)
                self._declared.add(queue_name)
            try:
                await channel.default_exchange.publish(message, routing_key=queue_name, mandatory=True)
                return
            except PublishError:
                # Unroutable: somebody deleted the queue since we declared it. Redeclare once.
                self._declared.discard(queue_name)
                if attempt == 2:
                    raise BusError(f"topic {topic!r}: the broker could not route the message") from None

    async def call(
        self, topic: str, method: str, args: JsonDict | None = None, *, timeout: float | None = None, version: str = "1.0"
    ) -> Any:
        timeout = self._call_timeout if timeout is None else timeout
        msg_id, body = pack_request(topic, method, args, version=version, reply_to=self._reply_queue_name)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        try:
            # The expiration drops a call nobody picked up before the caller gave up on it.
            message = aio_pika.Message(body, content_type="application/json", message_id=msg_id, expiration=timeout)
            deadline = asyncio.get_running_loop().time() + timeout
            try:  # publishing waits while the robust connection recovers; that counts against the timeout
                await asyncio.wait_for(self._send(topic, message), timeout)
            except TimeoutError:
                raise BusTimeout(
                    f"could not send {method!r} to topic {topic!r} within {float(timeout)}s (is the broker up?)"
                ) from None
            remaining = max(deadline - asyncio.get_running_loop().time(), 0.0)
            return await await_reply(future, topic, method, remaining, shown=timeout)
        finally:
            self._pending.pop(msg_id, None)

    async def cast(self, topic: str, method: str, args: JsonDict | None = None, *, version: str = "1.0") -> None:
        msg_id, body = pack_request(topic, method, args, version=version)
        await self._send(
            topic,
            aio_pika.Message(
                body, content_type="application/json", message_id=msg_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
            ),
        )

    async def fanout(self, topic: str, method: str, args: JsonDict | None = None, *, version: str = "1.0") -> None:
        msg_id, body = pack_request(topic, method, args, version=version)
        exchange = await self._fanout_exchange(self._open_channel(), topic)
        message = aio_pika.Message(body, content_type="application/json", message_id=msg_id)
        await exchange.publish(message, routing_key="", mandatory=False)  # no subscriber: dropped

    async def _fanout_exchange(self, channel: AbstractChannel, topic: str) -> AbstractExchange:
        """Declare (durable, so publishing to it never hits a missing exchange) and cache it."""
        if channel is self._channel and topic in self._exchanges:
            return self._exchanges[topic]
        exchange = await channel.declare_exchange(f"{topic}_fanout", aio_pika.ExchangeType.FANOUT, durable=True)
        if channel is self._channel:
            self._exchanges[topic] = exchange
        return exchange

    async def serve(self, topic: str, endpoint: object, *, fanout: bool = False) -> Consumer:
        self._open_channel()
        assert self._connection is not None
        channel = await self._connection.channel()
        try:
            await channel.set_qos(prefetch_count=MAX_IN_FLIGHT)
            if fanout:
                exchange = await self._fanout_exchange(channel, topic)
                queue = await channel.declare_queue(
                    f"kumo.{topic}_fanout.{uuid.uuid4().hex}", exclusive=True, auto_delete=True
                )
                await queue.bind(exchange)
            else:
                queue = await channel.declare_queue(f"kumo.{topic}", durable=True)
            consumer = _AmqpConsumer(self, topic, channel, queue, endpoint)
            await consumer.start()
        except BaseException:
            await channel.close()
            raise
        self._consumers.add(consumer)
        return consumer
