"""Call events for the console: published to a Redis Stream, never in the way of a call.

The ARI app never imports Django. It appends events (call started/answered/ended, conversation
state, interim and final transcripts, AI turns with latency) to the stream ``aipbx:<instance>:events``;
the web side consumes them into PostgreSQL and relays them to Channels groups. Each event carries
its own ``event_id`` so a consumer can apply it idempotently. The events, their fields and the
stream's name are those of :mod:`contract`, which the console reads with.

Publishing is fire-and-forget from the call's point of view: :meth:`EventPublisher.publish` only
appends to a bounded in-memory queue; one task writes batches to Redis and, while Redis is away,
keeps the newest events (counting what it had to drop) and retries with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from contract import Envelope, Event, encode, stream_name

__all__ = ["EventPublisher", "NullPublisher", "Publish", "stream_name"]

log = logging.getLogger(__name__)

#: What the call code is given to publish with: ``publish(call_id, event)``.
Publish = Callable[[str, Event], None]


class EventPublisher:
    def __init__(self, redis_url: str, stream: str, *, maxlen: int = 100_000, buffer: int = 10_000) -> None:
        self.redis_url = redis_url
        self.stream = stream
        self.maxlen = maxlen
        self._pending: deque[dict[str, str]] = deque(maxlen=buffer)
        self._wake = asyncio.Event()
        self.published = 0
        self.dropped = 0

    def publish(self, call_id: str, event: Event) -> None:
        """Queue one event (never blocks, never raises)."""
        if len(self._pending) == self._pending.maxlen:
            self.dropped += 1  # the oldest goes: the newest state matters most to a live console
        self._pending.append(encode(Envelope.of(event, call_id)))
        self._wake.set()

    async def run(self) -> None:
        import redis.asyncio as redis

        client = redis.from_url(self.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
        delay = 0.25
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._pending:
                    batch = [self._pending[i] for i in range(min(200, len(self._pending)))]
                    try:
                        async with client.pipeline(transaction=False) as pipe:
                            for fields in batch:
                                pipe.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)
                            await pipe.execute()
                    except (redis.RedisError, OSError) as exc:
                        log.warning("event stream unavailable (%s); retrying in %.2f s", exc, delay)
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, 5.0)
                        continue
                    delay = 0.25
                    for fields in batch:  # identity check: an overflowing deque may have moved on
                        if self._pending and self._pending[0] is fields:
                            self._pending.popleft()
                    self.published += len(batch)
        finally:
            await client.aclose()


class NullPublisher:
    """Events switched off (``AIPBX_EVENTS=0``)."""

    published = dropped = 0

    def publish(self, call_id: str, event: Event) -> None:
        return None

    async def run(self) -> None:
        await asyncio.Event().wait()
