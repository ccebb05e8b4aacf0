"""The ``memory://`` bus: every topic is a queue inside this process.

It is the all-in-one default, and the reference for how a transport behaves,
so it keeps the same contract as RabbitMQ rather than being a shortcut:
messages go through the same JSON encoding (a non-JSON argument fails here
exactly as it would on ``amqp://``), a handler cancelled before it finishes
puts its message back at the head of the queue (like an unacked delivery), and
each message runs in its own task, bounded per consumer like a prefetch count.

One instance is the whole broker, so every service of a process must share it
(which the one-bus-per-process rule already asks for).

The wire format lives in :mod:`kumo.core.bus.wire`, shared with ``amqp://``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from typing import Any

from kumo.core.bus.base import Bus, BusError, Consumer, JsonDict
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



class _MessageQueue:
    """A FIFO of encoded messages that can put one back at the head.

    asyncio.Queue cannot, and redelivery must not send a message to the back
    of a long queue. ``put`` is synchronous so it works from a done-callback.
    """

    def __init__(self) -> None:
        self._items: deque[bytes] = deque()
        self._waiters: deque[asyncio.Future[None]] = deque()

    def put(self, body: bytes, *, front: bool = False) -> None:
        if front:
            self._items.appendleft(body)
        else:
            self._items.append(body)
        self._wake_one()

    async def get(self) -> bytes:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif self._items:
                    self._wake_one()  # we were woken but will not take it: pass it on
                raise
        return self._items.popleft()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


class _InProcessConsumer(Consumer):
    """Pulls from one queue and runs each message in its own task."""

    def __init__(self, bus: InProcessBus, topic: str, queue: _MessageQueue, endpoint: object) -> None:
        self._bus, self._topic, self._queue, self._endpoint = bus, topic, queue, endpoint
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False
        self._runner = asyncio.create_task(self._run(), name=f"kumo.bus consumer {topic}")

    async def _run(self) -> None:
        while True:
            await self._slots.acquire()
            try:
                body = await self._queue.get()
            except BaseException:
                self._slots.release()
                raise
            task = asyncio.create_task(self._bus._handle(self._endpoint, body, self._topic))
            self._tasks.add(task)
            task.add_done_callback(lambda t, body=body: self._done(t, body))

    def _done(self, task: asyncio.Task[None], body: bytes) -> None:
        """Release the slot; a handler that did not finish never acked, so redeliver."""
        self._tasks.discard(task)
        self._slots.release()
        if task.cancelled():
            self._queue.put(body, front=True)

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._runner.cancel()
        in_flight = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in in_flight:
            task.cancel()
        await asyncio.gather(self._runner, *in_flight, return_exceptions=True)
        self._bus._forget(self)


class InProcessBus(Bus):
    """A bus whose broker is this object: per-topic queues and fanout subscriber lists."""

    def __init__(self, *, call_timeout: float = 60.0) -> None:
        self._call_timeout = call_timeout
        self._queues: dict[str, _MessageQueue] = {}
        self._fanout: dict[str, dict[_InProcessConsumer, _MessageQueue]] = {}
        self._consumers: set[_InProcessConsumer] = set()
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._reply_to = f"inproc.{uuid.uuid4().hex}"
        self._state = "new"

    def _check_open(self) -> None:
        if self._state != "open":
            raise BusError(f"the bus is {'not started' if self._state == 'new' else 'closed'}")

    async def start(self) -> None:
        if self._state == "closed":
            raise BusError("the bus is closed")
        self._state = "open"

    async def close(self) -> None:
        if self._state == "closed":
            return
        self._state = "closed"
        for consumer in list(self._consumers):
            await consumer.stop()
        fail_pending(self._pending)

    def _queue(self, topic: str) -> _MessageQueue:
        return self._queues.setdefault(topic, _MessageQueue())

    async def call(
        self, topic: str, method: str, args: JsonDict | None = None, *, timeout: float | None = None, version: str = "1.0"
    ) -> Any:
        self._check_open()
        msg_id, body = pack_request(topic, method, args, version=version, reply_to=self._reply_to)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        try:
            self._queue(topic).put(body)
            return await await_reply(future, topic, method, self._call_timeout if timeout is None else timeout)
        finally:
            self._pending.pop(msg_id, None)

    async def cast(self, topic: str, method: str, args: JsonDict | None = None, *, version: str = "1.0") -> None:
        self._check_open()
        self._queue(topic).put(pack_request(topic, method, args, version=version)[1])

    async def fanout(self, topic: str, method: str, args: JsonDict | None = None, *, version: str = "1.0") -> None:
        self._check_open()
        body = pack_request(topic, method, args, version=version)[1]
        for queue in self._fanout.get(topic, {}).values():
            queue.put(body)

    async def serve(self, topic: str, endpoint: object, *, fanout: bool = False) -> Consumer:
        self._check_open()
        queue = _MessageQueue() if fanout else self._queue(topic)
        consumer = _InProcessConsumer(self, topic, queue, endpoint)
        if fanout:
            self._fanout.setdefault(topic, {})[consumer] = queue
        self._consumers.add(consumer)
        return consumer

    def _forget(self, consumer: _InProcessConsumer) -> None:
        self._consumers.discard(consumer)
        for subscribers in self._fanout.values():
            subscribers.pop(consumer, None)

    async def _handle(self, endpoint: object, body: bytes, topic: str) -> None:
        try:
            message = unpack_request(body)
        except ValueError:
            log.error("dropping malformed bus message on %r: %r", topic, body[:200])
            return
        if message.get("reply_to") is not None and message.get("msg_id") not in self._pending:
            log.debug("dropping call %r.%r: its caller stopped waiting", topic, message["method"])
            return
        reply = await invoke(endpoint, message, topic)
        if reply is not None:
            resolve_reply(self._pending, reply)
