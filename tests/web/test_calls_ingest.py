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


def test_a_question_the_caller_went_on_with_replaces_its_first_part() -> None:
    # given the first part of a question, heard as final before the caller went on talking
    apply_event(event("call.started", "went-on", caller="1001", callee="1002", start="2026-11-25T01:00:00+00:00"))
    apply_event(event("call.answered", "went-on", answered_by="ai", ai=True))
    apply_event(event("transcript", "went-on", speaker="caller", text="When is the", final=True, t=3.104))
    # when both parts are heard as one question
    text = "When is the team meeting?"
    whole = event("transcript", "went-on", speaker="caller", text=text, final=True, t=4.2, replaces=3.104)
    apply_event(whole)
    apply_event(whole)  # (a replay changes nothing)
    # then the call's transcript holds the whole question only
    call = Call.objects.get(call_id="went-on")
    assert list(call.turns.values_list("speaker", "t", "text")) == [("caller", 4.2, "When is the team meeting?")]


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
    from django.conf import settings

    client = redis.Redis.from_url(settings.AIPBX_EVENTS_REDIS_URL)  # as the session's Redis user
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


def test_every_event_the_ari_app_can_publish_is_applied() -> None:
    from contract import Envelope, encode
    from tests.unit.test_contract import ONE_OF_EACH

    # when: one event of each type, encoded as the ARI app's publisher encodes it
    for typed in ONE_OF_EACH:
        assert apply_event(encode(Envelope.of(typed, "typed-call"))) is True
    # then
    call = Call.objects.get(call_id="typed-call")
    assert [e.type for e in CallEvent.objects.filter(call=call).order_by("id")] == [e.TYPE for e in ONE_OF_EACH]
    assert (call.callee, call.ai_handled, call.hitl_status) == ("1002", True, "resolved")  # spoken, then late events
    assert list(call.turns.order_by("id").values_list("speaker", flat=True)) == ["callee", "ai"]


def test_the_ai_reply_is_shown_as_it_is_spoken_then_as_it_was_heard_with_the_confidence() -> None:
    # given an AI call whose caller asked, and the knowledge the AI found
    for entry in ai_call_events("live-reply")[:6]:  # up to the caller's final transcript
        apply_event(entry)
    apply_event(
        event(
            "retrieval",
            "live-reply",
            question="When?",
            t=3.1,
            confidence=0.82,
            results=[{"text": "Tuesday at 10.", "score": 0.71, "item_id": None, "used": True}],
        )
    )
    call = Call.objects.get(call_id="live-reply")
    greeting = "안녕하세요, 이지영 님의 AI 비서입니다."  # the last reply heard
    assert (call.ai_confidence, call.ai_reply, call.ai_speaking) == (0.82, greeting, False)

    # when the reply starts to play, sentence by sentence
    apply_event(event("reply.speaking", "live-reply", t=4.0, text="The team meeting is on Tuesday."))
    first = Call.objects.get(call_id="live-reply")
    apply_event(event("reply.speaking", "live-reply", t=4.0, text="The team meeting is on Tuesday. It is at 10."))
    second = Call.objects.get(call_id="live-reply")
    # and the caller cut the second sentence short: the turn says what was heard
    apply_event(
        event(
            "turn",
            "live-reply",
            t=4.0,
            speaker="ai",
            text="The team meeting is on Tuesday. It is…",
            interrupted=True,
            unspoken="at 10.",
        )
    )
    said = Call.objects.get(call_id="live-reply")

    # then
    assert (first.ai_reply, first.ai_speaking) == ("The team meeting is on Tuesday.", True)
    assert (second.ai_reply, second.ai_speaking) == ("The team meeting is on Tuesday. It is at 10.", True)
    assert (said.ai_reply, said.ai_speaking) == ("The team meeting is on Tuesday. It is…", False)
    assert not Turn.objects.filter(call=said, text__startswith="The team meeting is on Tuesday. It is at")
    # a retrieval from an ARI app that sends no confidence says "unknown", not the old number
    apply_event(event("retrieval", "live-reply", question="And?", t=9.0, results=[]))
    assert Call.objects.get(call_id="live-reply").ai_confidence is None


@pytest.mark.parametrize(
    "after, speaking",
    [
        (("state", {"state": "listening"}), False),  # a reply cancelled before its turn was published
        (("state", {"state": "thinking"}), False),  # the caller interrupted: a new question
        (("state", {"state": "paused"}), True),  # maybe a backchannel: the reply may go on
        (("call.ended", {"cdr": {"ai_handled": True}}), False),
    ],
)
def test_a_reply_stops_being_spoken_when_the_conversation_moves_on(after, speaking) -> None:
    apply_event(event("call.started", "moves-on", caller="1001", callee="1002"))
    apply_event(event("call.answered", "moves-on", answered_by="ai", ai=True))
    apply_event(event("reply.speaking", "moves-on", t=4.0, text="We open at nine."))
    event_type, data = after
    apply_event(event(event_type, "moves-on", **data))
    call = Call.objects.get(call_id="moves-on")
    assert (call.ai_reply, call.ai_speaking) == ("We open at nine.", speaking)
    # and a late piece of an ended call does not bring it back
    apply_event(event("call.ended", "moves-on", cdr={"ai_handled": True}))
    apply_event(event("reply.speaking", "moves-on", t=4.0, text="We open at nine. And ten."))
    assert not Call.objects.get(call_id="moves-on").ai_speaking
