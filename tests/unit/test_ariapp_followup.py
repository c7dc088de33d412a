"""After an AI call with a transcript, the extraction task is queued on the broker (real Redis)."""

from __future__ import annotations

import json
import uuid

import redis

from ariapp.followup import EXTRACT_TASK, FollowUp

REDIS = "redis://127.0.0.1:6379/0"


async def test_a_call_with_a_transcript_queues_extraction_by_task_name() -> None:
    queue = f"test-followup-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(REDIS)
    try:
        followup = FollowUp(REDIS, queue)
        await followup.call_finished("call-1", has_transcript=True)
        await followup.call_finished("call-2", has_transcript=False)  # nothing to learn from
        messages = [json.loads(m) for m in client.lrange(queue, 0, -1)]
    finally:
        client.delete(queue)
    assert len(messages) == 1 and followup.sent == 1
    headers = messages[0]["headers"]
    assert headers["task"] == EXTRACT_TASK and "call-1" in headers["argsrepr"]


async def test_a_broker_that_is_down_does_not_disturb_the_call() -> None:
    followup = FollowUp("redis://127.0.0.1:1/0", "nowhere")
    followup._celery.conf.broker_connection_max_retries = 0
    followup._celery.conf.broker_connection_retry = False
    await followup.call_finished("call-1", has_transcript=True)  # logs, does not raise
    assert followup.sent == 0
