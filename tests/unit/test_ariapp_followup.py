"""After a call: which task the worker gets (a pure decision), and that it reaches the broker (real Redis)."""

from __future__ import annotations

import json
import uuid

import pytest
import redis
from django.conf import settings

from aipbx.directory import Extension
from aipbx.queues import EXTRACT_TASK, TRANSCRIBE_TASK, long_queue
from ariapp.cdr import CallRecord
from ariapp.followup import FollowUp, after_call

REDIS = settings.AIPBX_EVENTS_REDIS_URL  # the session's Redis user, as the ARI app logs in
LEARN = Extension("1002", "Jiyoung Lee", 10, "en-US", "Hi", "learn")
RECORD_ONLY = Extension("1002", "Jiyoung Lee", 10, "en-US", "Hi", "record")
OFF = Extension("1002", "Jiyoung Lee", 10, "en-US", "Hi", "off")
SAID = [{"t": 1.0, "speaker": "callee", "text": "We open on Saturdays from ten to two."}]


def phone_call(answered: bool = True) -> CallRecord:
    return CallRecord(
        "c1",
        "1001",
        "1002",
        "2026-11-25T01:00:00+00:00",
        answer="2026-11-25T01:00:05+00:00" if answered else None,
        recording_dir="/rec/c1" if answered else None,
    )


def live(complete: bool) -> dict:
    return {"turns": SAID, "extra": {"transcription": {"mode": "live", "complete": complete}}}


@pytest.mark.parametrize(
    ("record", "report", "ext", "expected"),
    [
        # a phone call written down live and completely goes straight to learning, or nowhere
        (phone_call(), live(True), LEARN, (EXTRACT_TASK, "live")),
        (phone_call(), live(True), RECORD_ONLY, ("", "live")),
        # anything less than a complete live transcript is transcribed from the recordings
        (phone_call(), live(False), LEARN, (TRANSCRIBE_TASK, "post_call")),
        (phone_call(), None, LEARN, (TRANSCRIBE_TASK, "post_call")),  # over budget, or the app restarted
        (phone_call(), None, RECORD_ONLY, (TRANSCRIBE_TASK, "post_call")),
        # nothing recorded: nothing to do
        (phone_call(), None, OFF, ("", "none")),
        (phone_call(answered=False), None, LEARN, ("", "none")),
        (phone_call(), None, None, ("", "none")),
    ],
)
def test_what_the_worker_gets_after_a_phone_call(record, report, ext, expected) -> None:
    assert after_call(record, report, ext) == expected


def test_an_ai_call_with_words_is_read_for_notes_only_when_the_owner_learns() -> None:
    ai = CallRecord(
        "c2",
        "1001",
        "1002",
        "2026-11-25T01:00:00+00:00",
        answer="2026-11-25T01:00:10+00:00",
        ai_handled=True,
        recording_dir="/rec/c2",
    )
    spoken = {"turns": [{"t": 0, "speaker": "caller", "text": "Call me back."}]}
    assert after_call(ai, spoken, LEARN) == (EXTRACT_TASK, "ai")
    assert after_call(ai, spoken, RECORD_ONLY) == ("", "ai")
    assert after_call(ai, {"turns": [{"t": 0, "speaker": "caller", "text": ""}]}, LEARN) == ("", "ai")


async def test_tasks_reach_the_long_queue_by_name() -> None:
    queue = f"aipbx-test-followup-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(REDIS)
    try:
        followup = FollowUp(REDIS, queue)
        assert await followup.send(EXTRACT_TASK, "call-1")
        assert await followup.send(TRANSCRIBE_TASK, "call-2")
        messages = [json.loads(m) for m in client.lrange(long_queue(queue), 0, -1)]
        assert client.llen(queue) == 0  # the default queue is for the short tasks (webhooks, retention)
    finally:
        client.delete(queue, long_queue(queue))
    assert followup.sent == 2
    assert sorted((m["headers"]["task"], m["headers"]["argsrepr"]) for m in messages) == [
        (EXTRACT_TASK, "['call-1']"),
        (TRANSCRIBE_TASK, "['call-2']"),
    ]


async def test_a_broker_that_is_down_does_not_disturb_the_call() -> None:
    followup = FollowUp("redis://127.0.0.1:1/0", "nowhere")
    followup._celery.conf.broker_connection_max_retries = 0
    followup._celery.conf.broker_connection_retry = False
    assert await followup.send(EXTRACT_TASK, "call-1") is False  # logs, does not raise
    assert followup.sent == 0
