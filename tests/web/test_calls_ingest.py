"""Call events from the ARI app become calls in PostgreSQL exactly once, and reach live pages after commit."""

from __future__ import annotations

import uuid

import pytest
import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import OperationalError, transaction

from knowledge.actions import do_add_item, reset_retriever
from knowledge.models import KnowledgeItem
from tests.web.calls_factory import ai_call_events, event
from webconsole.calls import ingest, live, stream
from webconsole.calls.ingest import BadEvent, apply_event
from webconsole.calls.models import Call, CallEvent, CallState, Turn
from webconsole.calls.stream import EventReader

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def memory_knowledge(settings):
    settings.AIPBX_KNOWLEDGE_STORE = "memory"
    settings.AIPBX_KNOWLEDGE_PREFIX = f"kbtest{uuid.uuid4().hex[:8]}"
    reset_retriever()
    yield
    reset_retriever()


def test_a_whole_ai_call_is_stored_with_its_transcript_retrieval_and_latency() -> None:
    # when
    for entry in ai_call_events("call-1"):
        assert apply_event(entry) is True
    # then
    call = Call.objects.get(call_id="call-1")
    assert (call.caller, call.callee, call.state, call.ai_handled) == ("1001", "1002", CallState.ENDED, True)
    assert (call.duration_s, call.billsec, call.termination_reason) == (30.5, 20.5, "caller_hangup")
    turns = list(call.turns.values_list("speaker", "text"))
    assert turns == [
        ("ai", "안녕하세요, 이지영 님의 AI 비서입니다."),
        ("caller", "When is the team meeting?"),
        ("ai", "The team meeting is on Tuesday at 10."),
    ]  # the interim text is not a turn
    question = call.turns.get(speaker="caller")
    assert question.retrieved[0]["score"] == 0.71 and question.latency_ms["first_rtp"] == 812.0
    assert CallEvent.objects.filter(call=call).count() == 10


def test_a_replayed_event_changes_nothing_and_counts_knowledge_use_once(memory_knowledge) -> None:
    # given: a knowledge item the AI quoted
    item_id = do_add_item("1002", "The team meeting is on Tuesday at 10.", status="approved")[0].item.pk
    entries = ai_call_events("call-2")
    retrieval = next(e for e in entries if e["type"] == "retrieval")
    retrieval["data"] = retrieval["data"].replace('"item_id": null', f'"item_id": {item_id}')
    # when: the stream delivers everything twice (a crash before XACK)
    first = [apply_event(e) for e in entries]
    second = [apply_event(e) for e in entries]
    # then
    assert all(first) and not any(second)
    assert Turn.objects.filter(call__call_id="call-2").count() == 3
    assert KnowledgeItem.objects.get(pk=item_id).usage_count == 1


def test_events_arriving_after_the_end_do_not_reopen_the_call() -> None:
    entries = ai_call_events("call-3")
    for entry in entries:
        apply_event(entry)
    apply_event(event("call.answered", "call-3", answered_by="ai", ai=True))
    apply_event(event("state", "call-3", state="speaking"))
    call = Call.objects.get(call_id="call-3")
    assert (call.state, call.conversation_state) == (CallState.ENDED, "")


@pytest.mark.parametrize(
    "broken, message",
    [
        ({"type": "state", "call_id": "c", "ts": "1", "data": "{}"}, "lacks event_id"),
        ({"event_id": "e", "type": "state", "call_id": "c", "ts": "yesterday", "data": "{}"}, "bad ts"),
        ({"event_id": "e", "type": "state", "call_id": "c", "ts": "1", "data": "{not json"}, "malformed data"),
        ({"event_id": "e", "type": "state", "call_id": "c", "ts": "1", "data": "[1, 2]"}, "not an object"),
        ({"event_id": "e" * 65, "type": "state", "call_id": "c", "ts": "1", "data": "{}"}, "over-long"),
    ],
)
def test_a_malformed_event_is_refused_with_a_clear_error_and_writes_nothing(broken, message) -> None:
    with pytest.raises(BadEvent, match=message):
        apply_event(broken)
    assert not Call.objects.exists() and not CallEvent.objects.exists()


def test_live_pages_hear_of_an_event_only_after_it_committed() -> None:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(live.ext_group("1002"), channel)
    try:
        # a transaction that rolls back sends nothing
        with pytest.raises(RuntimeError), transaction.atomic():
            apply_event(ai_call_events("call-4")[0])
            raise RuntimeError("rollback")
        assert not Call.objects.filter(call_id="call-4").exists()
        # a committed one sends the stored call
        apply_event(ai_call_events("call-4")[0])
        message = async_to_sync(layer.receive)(channel)
        assert message["type"] == "call.event" and message["event"]["type"] == "call.started"
        assert message["call"]["call_id"] == "call-4" and message["call"]["callee"] == "1002"
    finally:
        async_to_sync(layer.group_discard)(live.ext_group("1002"), channel)


@pytest.fixture
def redis_stream():
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    name = f"aipbx:test{uuid.uuid4().hex[:8]}:events"
    yield client, name
    client.delete(name, name + ":dead")
    client.close()


def test_the_reader_applies_the_stream_acks_after_commit_and_dead_letters_garbage(redis_stream) -> None:
    client, name = redis_stream
    entries = ai_call_events("call-5")
    for entry in entries:
        client.xadd(name, entry)
    client.xadd(name, entries[0])  # a duplicate delivery
    client.xadd(name, {"type": "state", "call_id": "call-5"})  # garbage
    reader = EventReader(client, name, consumer="t1")
    # when
    assert reader.drain() == len(entries) + 2
    # then
    assert (reader.applied, reader.duplicates, reader.dead) == (len(entries), 1, 1)
    assert client.xpending(name, stream.GROUP)["pending"] == 0
    dead = client.xrange(name + ":dead")
    assert len(dead) == 1 and b"lacks event_id" in dead[0][1][b"reason"]
    assert Call.objects.get(call_id="call-5").state == CallState.ENDED


def test_while_the_database_is_down_nothing_is_acknowledged_and_nothing_is_lost(redis_stream, monkeypatch) -> None:
    client, name = redis_stream
    for entry in ai_call_events("call-6"):
        client.xadd(name, entry)
    real_apply = ingest.apply_event
    outage = {"left": 3}

    def flaky_apply(fields):
        if outage["left"] > 0:
            outage["left"] -= 1
            raise OperationalError("connection refused")
        return real_apply(fields)

    monkeypatch.setattr(stream, "apply_event", flaky_apply)
    reader = EventReader(client, name, consumer="t2")
    # when: the database fails three times
    for _ in range(3):
        with pytest.raises(OperationalError):
            reader.drain()
        assert client.xpending(name, stream.GROUP)["pending"] == 10  # delivered, not acknowledged
    # then: once it answers, the pending entries are applied and acknowledged
    reader.drain()
    assert client.xpending(name, stream.GROUP)["pending"] == 0
    assert Turn.objects.filter(call__call_id="call-6").count() == 3
    assert CallEvent.objects.filter(call__call_id="call-6").count() == 10
