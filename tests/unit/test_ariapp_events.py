"""The call event stream: events reach Redis in order, once; a Redis outage never blocks a call."""

from __future__ import annotations

import asyncio
import json
import uuid

import redis
from django.conf import settings

from ariapp.events import EventPublisher
from contract import ConversationState, Transcript

REDIS = settings.AIPBX_EVENTS_REDIS_URL  # the session's Redis user, as the ARI app logs in


async def test_events_reach_the_stream_in_order_with_unique_ids() -> None:
    stream = f"aipbx:test-{uuid.uuid4().hex}:events"
    publisher = EventPublisher(REDIS, stream)
    runner = asyncio.create_task(publisher.run())
    try:
        for index in range(250):  # more than one batch
            publisher.publish("call-1", Transcript(speaker="caller", text=f"word {index}", final=False, t=0.0))
        async with asyncio.timeout(5):
            while publisher.published < 250:  # noqa: ASYNC110 - polling a counter, bounded by the timeout
                await asyncio.sleep(0.02)
    finally:
        runner.cancel()
    client = redis.Redis.from_url(REDIS, decode_responses=True)
    try:
        entries = client.xrange(stream)
    finally:
        client.delete(stream)
    texts = [json.loads(fields["data"])["text"] for _id, fields in entries]
    assert texts == [f"word {i}" for i in range(250)]
    assert len({fields["event_id"] for _id, fields in entries}) == 250


async def test_redis_away_never_blocks_or_raises_and_keeps_the_newest_events() -> None:
    # given a publisher whose Redis does not answer
    publisher = EventPublisher("redis://127.0.0.1:1/0", "aipbx:nowhere:events", buffer=100)
    runner = asyncio.create_task(publisher.run())
    try:
        # when a call publishes more than the buffer holds
        loop = asyncio.get_running_loop()
        started = loop.time()
        for index in range(150):
            publisher.publish("call-1", ConversationState(state=str(index)))
        # then publishing took no time, nothing was sent, and only the oldest were dropped
        assert loop.time() - started < 0.05
        await asyncio.sleep(0.3)
        assert publisher.published == 0 and publisher.dropped == 50
        assert json.loads(publisher._pending[-1]["data"])["state"] == "149"
    finally:
        runner.cancel()
