"""The contract between the ARI app and the console: every event survives the stream unchanged,
the wire is the one the console has always read, and neither side needs the other to import it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import contract
from contract import (
    EVENT_TYPES,
    BadEvent,
    CallAnswered,
    CallbackRequest,
    CallbackStatus,
    CallEnded,
    CallRejected,
    CallStarted,
    CallTranscription,
    ConversationState,
    Envelope,
    HitlCancelled,
    HitlRequested,
    HitlSpoken,
    HitlTimeout,
    Latency,
    ReplySpeaking,
    Retrieval,
    Transcript,
    TurnPlayed,
    VoicemailRecorded,
    decode,
    encode,
)

ONE_OF_EACH = [
    CallStarted(caller="01012345678", callee="1002", start="2026-11-25T01:00:00.000+00:00"),
    CallAnswered(answered_by="ai", ai=True),
    CallEnded(cdr={"call_id": "c1", "duration": 30.5, "ai_handled": True, "termination_reason": "caller_hangup"}),
    CallRejected(limit="per_caller", reason="limit_per_caller", active_ai_calls=2),
    CallTranscription(mode="post_call"),
    ConversationState(state="listening"),
    Transcript(speaker="caller", text="When is the team", final=False, t=3.1),
    Transcript(speaker="callee", text="내일 오전 열 시요.", final=True, t=4.2, end=5.9, confidence=None),
    TurnPlayed(
        t=4.0,
        speaker="ai",
        text="On Tuesday at 10.",
        interrupted=True,
        unspoken="at 10.",
        latency_ms={"first_rtp": 812.0},
        retrieved=[{"text": "Tuesday 10", "score": 0.71, "item_id": 3}],
    ),
    ReplySpeaking(t=4.0, text="On Tuesday"),
    Retrieval(
        question="When?",
        results=[{"text": "Tuesday 10", "score": 0.71, "item_id": None, "used": True}],
        t=3.1,
        confidence=0.93,
    ),
    Latency({"stt_final": 310.0, "retrieval": 330.5, "first_rtp": 812.0}),
    HitlRequested(
        request_id="r1",
        question="Can I get a refund?",
        reason="sensitive_topic",
        detail="refund",
        confidence=0.4,
        retrieved=[],
        recent_turns=[{"speaker": "ai", "text": "Hello"}],
        callee="1002",
        language="en-US",
    ),
    HitlSpoken(request_id="r1", text="Yes, within 30 days."),
    HitlTimeout(request_id="r1"),
    HitlCancelled(request_id="r1", why="caller_hangup"),
    VoicemailRecorded(
        file="voicemail.wav",
        t=21.5,
        duration=12.3,
        ended="hangup",
        reason="timeout",
        request_id="r1",
        callee="1002",
        language="ko-KR",
        transcript="내일 다시 전화 주세요.",
    ),
    CallbackStatus(callback_id="cb1", status="failed", reason="operator_unregistered"),
    contract.TransferStatus(transfer_id="t1", status="failed", reason="operator_no_answer", operator_ext="1003"),
]


#: Events with the optional fields that are sent only when set.
WITH_OPTIONAL_FIELDS = [
    Transcript(speaker="caller", text="When is the team meeting?", final=True, t=3.4, replaces=3.1),
    CallEnded(cdr={"call_id": "c1", "ai_handled": True}, turns=4),
]


def test_every_event_type_is_exercised_here() -> None:
    assert {type(event) for event in ONE_OF_EACH} == set(EVENT_TYPES.values())


@pytest.mark.parametrize("event", ONE_OF_EACH + WITH_OPTIONAL_FIELDS, ids=lambda e: f"{e.TYPE}")
def test_an_event_survives_the_stream_unchanged(event: contract.Event) -> None:
    # given: what the ARI app appends (redis-py hands the reader bytes)
    fields = encode(Envelope.of(event, "call-1"))
    as_read = {k.encode(): v.encode() for k, v in fields.items()}
    # when
    envelope = decode(as_read)
    # then
    assert (envelope.type, envelope.call_id, envelope.version) == (event.TYPE, "call-1", event.VERSION)
    assert envelope.event_id == fields["event_id"] and len(envelope.event_id) == 32
    assert envelope.event() == event
    assert encode(envelope) == fields


def test_the_wire_is_the_one_the_console_always_read() -> None:
    fields = encode(
        Envelope.of(Transcript(speaker="caller", text="When", final=False, t=3.1), "c1", event_id="e1", ts=1764032400.5)
    )
    assert fields == {
        "event_id": "e1",
        "type": "transcript",
        "call_id": "c1",
        "ts": "1764032400.500",
        "v": "1",
        "data": '{"speaker": "caller", "text": "When", "final": false, "t": 3.1}',
    }
    # a transcribed line has its end and confidence (even when the recogniser gave none)
    line = Transcript(speaker="callee", text="네", final=True, t=1.0, end=1.4, confidence=None)
    assert json.loads(encode(Envelope.of(line, "c1"))["data"]) == {
        "speaker": "callee",
        "text": "네",
        "final": True,
        "t": 1.0,
        "end": 1.4,
        "confidence": None,
    }
    # a line that replaces an earlier one says which, and a call's end how many turns it had; only when set
    whole = Transcript(speaker="caller", text="When is it?", final=True, t=3.4, replaces=3.1)
    assert whole.data() == {"speaker": "caller", "text": "When is it?", "final": True, "t": 3.4, "replaces": 3.1}
    assert CallEnded(cdr={}).data() == {"cdr": {}} and CallEnded(cdr={}, turns=0).data() == {"cdr": {}, "turns": 0}
    # latency marks are the data itself, as the console reads them
    assert Latency({"first_rtp": 812.0}).data() == {"first_rtp": 812.0}


def test_a_retrieval_from_before_its_confidence_reads_as_none() -> None:
    old = {
        "event_id": "e3",
        "type": "retrieval",
        "call_id": "c1",
        "ts": "1764032400.000",
        "data": '{"question": "When?", "results": [], "t": 3.1}',
    }
    assert decode(old).event() == Retrieval(question="When?", results=[], t=3.1, confidence=None)


def test_an_entry_from_before_the_contract_is_version_one_and_unknown_types_are_kept_untyped() -> None:
    old = {"event_id": "e2", "type": "state", "call_id": "c1", "ts": "1764032400.000", "data": '{"state": "thinking"}'}
    assert decode(old).version == 1 and decode(old).event() == ConversationState(state="thinking")
    newer = {**old, "type": "call.transferred", "v": "3", "data": '{"to": "1003"}'}
    envelope = decode(newer)
    assert (envelope.version, envelope.data, envelope.event()) == (3, {"to": "1003"}, None)
    # a newer publisher's extra field is ignored by an older reader
    assert decode({**old, "data": '{"state": "thinking", "since": 2.5}'}).event() == ConversationState("thinking")


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"type": "state", "call_id": "c1", "ts": "1.0"}, "lacks event_id"),
        ({"event_id": "e", "type": "state", "call_id": "c1", "ts": "soon"}, "bad ts"),
        ({"event_id": "e", "type": "state", "call_id": "c1", "ts": "1.0", "data": "{"}, "malformed data"),
        ({"event_id": "e", "type": "state", "call_id": "c1", "ts": "1.0", "data": "[]"}, "not an object"),
        ({"event_id": "e" * 65, "type": "state", "call_id": "c1", "ts": "1.0"}, "over-long"),
        ({"event_id": "e", "type": "state", "call_id": "c1", "ts": "1.0", "v": "two"}, "bad version"),
    ],
)
def test_a_malformed_envelope_is_a_bad_event(fields: dict[str, str], reason: str) -> None:
    with pytest.raises(BadEvent, match=reason):
        decode(fields)


def test_a_known_type_without_its_required_fields_is_a_bad_event() -> None:
    envelope = decode({"event_id": "e", "type": "hitl.spoken", "call_id": "c1", "ts": "1.0", "data": "{}"})
    with pytest.raises(BadEvent, match="hitl.spoken"):
        envelope.event()


def test_a_callback_request_survives_the_list_and_a_malformed_one_is_refused() -> None:
    request = CallbackRequest(
        callback_id="cb1", call_id="dev-cb-1", operator_ext="1003", number="+821012345678", callee="1002",
        callback_of="dev-1", requested_at=1764032400.5,
    )  # fmt: skip
    assert CallbackRequest.from_json(request.to_json().encode()) == request
    for raw in (
        "not json",
        "[]",
        '{"callback_id": "cb1"}',
        request.to_json().replace("+821012345678", "1002&PJSIP/evil"),
        request.to_json().replace('"1003"', '"PJSIP/1003"'),
        request.to_json().replace("dev-cb-1", "../../etc"),
    ):
        with pytest.raises(contract.BadRequest):
            CallbackRequest.from_json(raw)


def test_a_transfer_request_survives_the_list_and_a_malformed_one_is_refused() -> None:
    request = contract.TransferRequest(
        transfer_id="t1", call_id="dev-1", operator_ext="1003", operator="Alice", question="I want a refund",
        request_id="r1", requested_at=1764032400.5,
    )  # fmt: skip
    assert contract.TransferRequest.from_json(request.to_json().encode()) == request
    for raw in (
        "not json",
        "[]",
        '{"transfer_id": "t1"}',
        request.to_json().replace('"1003"', '"1003&PJSIP/evil"'),
        request.to_json().replace('"1003"', '"+821012345678"'),
        request.to_json().replace("dev-1", "../../etc"),
    ):
        with pytest.raises(contract.BadRequest):
            contract.TransferRequest.from_json(raw)


def test_the_redis_keys() -> None:
    assert contract.transfer_requests_key("dev") == "aipbx:dev:transfers"
    assert contract.callback_requests_key("dev") == "aipbx:dev:callbacks"
    assert contract.stream_name("dev") == "aipbx:dev:events"
    assert contract.dead_letter_stream("aipbx:dev:events") == "aipbx:dev:events:dead"
    assert contract.hitl_reply_key("dev", "r1") == "aipbx:dev:hitl:r1"


def test_both_sides_build_their_keys_from_the_contract() -> None:
    from ariapp.conversation.hitl import RedisDesk
    from ariapp.events import stream_name

    assert RedisDesk("redis://127.0.0.1:6379/0", "dev").key("r1") == contract.hitl_reply_key("dev", "r1")
    assert stream_name is contract.stream_name


def test_importing_the_contract_loads_neither_django_nor_the_ari_app() -> None:
    code = (
        "import sys, contract\n"
        "print(','.join(m for m in ('django', 'ariapp', 'webconsole', 'redis') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == ""
