"""Apply the ARI app's call events to PostgreSQL, exactly once each, then tell the live pages.

An event is the stream entry ``{event_id, type, call_id, ts, v, data}`` written by
``ariapp.events.EventPublisher`` and read with :func:`contract.decode`; the handlers are keyed by
the contract's event types. :func:`apply_event` stores it and updates the call in one
transaction; a replay of the same ``event_id`` changes nothing and sends nothing. Live updates
(:mod:`webconsole.calls.live`) leave only after the commit, so a page that reloads after an
update sees at least what the update said.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from django.db import transaction

import contract
from contract import BadEvent
from contract import Envelope as Event
from webconsole.calls import live
from webconsole.calls.models import Call, CallEvent, CallState, TranscriptSource, Turn
from webconsole.webhooks.actions import emit_call_event

__all__ = ["BadEvent", "Event", "apply_event", "parse_event"]

log = logging.getLogger(__name__)

#: The envelope of one stream entry (raises :class:`BadEvent`: dead-lettered, not retried).
parse_event = contract.decode


def apply_event(fields: Mapping[str | bytes, str | bytes]) -> bool:
    """Store one event and apply it to its call. Returns False when it was already applied.

    Raises:
        BadEvent: the entry is malformed (nothing is written).
        django.db.Error: the database is unavailable (nothing is written; retry later).
    """
    event = parse_event(fields)
    with transaction.atomic():
        call, _ = Call.objects.get_or_create(call_id=event.call_id)
        call = Call.objects.select_for_update().get(pk=call.pk)
        stored, created = CallEvent.objects.get_or_create(
            event_id=event.event_id,
            defaults={"call": call, "type": event.type, "ts": event.ts, "data": event.data},
        )
        if not created:
            return False
        turn = _apply(call, event)
        call.save()
        emit_call_event(call, event.type, event.data, event.ts)  # webhooks outbox, same transaction
        # stored.pk is the event's sequence number: the call's row is locked, so it follows the commit order.
        transaction.on_commit(lambda: live.call_event(call, event, turn, seq=stored.pk))
    return True


def _apply(call: Call, event: Event) -> Turn | None:
    """Update ``call`` (saved by the caller) from ``event``; returns the turn it stored, if any."""
    data = event.data
    if event.type.startswith("hitl."):
        from webconsole.hitl.ingest import apply_hitl_event  # the human-in-the-loop app owns these

        apply_hitl_event(call, event)
        return None
    if event.type == contract.VoicemailRecorded.TYPE:
        from webconsole.voicemail.ingest import apply_voicemail_event  # the voicemail app owns its messages

        apply_voicemail_event(call, event)
        return None
    if event.type == contract.TransferStatus.TYPE:
        from webconsole.calls.transfers import apply_transfer_event

        apply_transfer_event(call, data)
        return None
    if event.type == contract.CallbackStatus.TYPE:
        from webconsole.calls.callbacks import apply_callback_event

        apply_callback_event(call, data)
        return None
    handler = _HANDLERS.get(event.type)
    if handler is None:
        return None  # kept in CallEvent; unknown types are for newer consoles
    return handler(call, event, data)


def _started(call: Call, event: Event, data: dict[str, Any]) -> None:
    call.caller = str(data.get("caller") or call.caller)[:64]
    call.callee = str(data.get("callee") or call.callee)[:16]
    call.started = _iso(data.get("start")) or call.started or event.ts


def _answered(call: Call, event: Event, data: dict[str, Any]) -> None:
    if call.state == CallState.ENDED:
        return
    call.answered = call.answered or event.ts
    call.answered_by = str(data.get("answered_by") or "")[:64]
    call.ai_handled = call.ai_handled or bool(data.get("ai"))
    call.state = CallState.AI if data.get("ai") else CallState.ANSWERED
    if call.ai_handled:
        call.transcript_source = TranscriptSource.AI


#: Conversation states in which the AI says nothing: a reply still marked as being spoken was cut off
#: (a reply cancelled before its turn was published has no closing ``turn`` event).
_SILENT_STATES = ("listening", "thinking")


def _state(call: Call, event: Event, data: dict[str, Any]) -> None:
    if call.state != CallState.ENDED:
        call.conversation_state = str(data.get("state") or "")[:24]
        if call.conversation_state in _SILENT_STATES:
            call.ai_speaking = False


def _ended(call: Call, event: Event, data: dict[str, Any]) -> None:
    cdr = data.get("cdr") or {}
    call.state = CallState.ENDED
    call.conversation_state = ""
    call.ai_speaking = False
    call.caller = str(cdr.get("caller") or call.caller)[:64]
    call.callee = str(cdr.get("callee") or call.callee)[:16]
    call.started = _iso(cdr.get("start")) or call.started or event.ts
    call.answered = _iso(cdr.get("answer")) or call.answered
    call.ended = _iso(cdr.get("end")) or event.ts
    call.ai_handled = bool(cdr.get("ai_handled", call.ai_handled))
    call.answered_by = str(cdr.get("answered_by") or call.answered_by or "")[:64]
    call.duration_s = _float(cdr.get("duration"))
    call.billsec = _float(cdr.get("billsec"))
    call.dial_status = str(cdr.get("dial_status") or "")[:32]
    call.hangup_by = str(cdr.get("hangup_by") or "")[:16]
    call.termination_reason = str(cdr.get("termination_reason") or "")[:64]
    call.codec = str(cdr.get("codec") or "")[:16]
    call.recording_dir = str(cdr.get("recording_dir") or "")[:512]


def _transcript(call: Call, event: Event, data: dict[str, Any]) -> Turn | None:
    if not data.get("final"):
        return None  # interim text is shown live and kept as an event, not as a turn
    if not call.ai_handled and call.transcript_source == "":
        call.transcript_source = TranscriptSource.LIVE  # a phone call being written down as it happens
    speaker = str(data.get("speaker") or "caller")[:16]
    replaces = _float(data.get("replaces"))
    if replaces is not None:  # the caller went on talking: this line is the whole of what they said
        # t has 3 decimals on the wire; the window only absorbs a float's last bits
        call.turns.filter(speaker=speaker, t__gte=replaces - 0.0005, t__lte=replaces + 0.0005).delete()
    return Turn.objects.create(
        call=call,
        event_id=event.event_id,
        t=_float(data.get("t")) or 0.0,
        end=_float(data.get("end")),
        confidence=_float(data.get("confidence")),
        speaker=speaker,
        text=str(data.get("text") or ""),
    )


def _transcription(call: Call, event: Event, data: dict[str, Any]) -> None:
    """How the finished call's transcript is made: live (complete), or queued for the worker."""
    mode = str(data.get("mode") or "")
    if mode == "live":
        call.transcript_source = TranscriptSource.LIVE
    elif mode == "post_call" and call.transcript_source != TranscriptSource.POST_CALL:
        call.transcript_source = TranscriptSource.QUEUED


def _turn(call: Call, event: Event, data: dict[str, Any]) -> Turn:
    if str(data.get("speaker") or "ai") == "ai" and call.state != CallState.ENDED:
        call.ai_reply, call.ai_speaking = str(data.get("text") or ""), False  # what was heard, now said
    return Turn.objects.create(
        call=call,
        event_id=event.event_id,
        t=_float(data.get("t")) or 0.0,
        speaker=str(data.get("speaker") or "ai")[:16],
        text=str(data.get("text") or ""),
        interrupted=bool(data.get("interrupted")),
        unspoken=str(data.get("unspoken") or ""),
    )


def _reply_speaking(call: Call, event: Event, data: dict[str, Any]) -> None:
    """The AI's reply so far, as its newest piece starts to play (shown live; the ``turn`` keeps it)."""
    if call.state != CallState.ENDED:
        call.ai_reply, call.ai_speaking = str(data.get("text") or "")[:4000], True


def _retrieval(call: Call, event: Event, data: dict[str, Any]) -> None:
    call.ai_confidence = _float(data.get("confidence"))  # None from an ARI app that did not send it
    results = data.get("results") or []
    question = call.turns.filter(speaker="caller").order_by("-t", "-id").first()
    if question is not None:
        question.retrieved = results
        question.save(update_fields=["retrieved"])
    # the items the AI answered from ("used"; events from before the relevance gate listed only those)
    used = [
        int(r["item_id"])
        for r in results
        if isinstance(r, dict) and str(r.get("item_id", "")).isdigit() and r.get("used", True)
    ]
    if used:
        from knowledge.actions import do_record_usage

        do_record_usage(used)


def _latency(call: Call, event: Event, data: dict[str, Any]) -> None:
    question = call.turns.filter(speaker="caller").order_by("-t", "-id").first()
    if question is not None:
        question.latency_ms = {k: v for k, v in data.items() if isinstance(v, int | float)}
        question.save(update_fields=["latency_ms"])


_HANDLERS = {
    contract.CallStarted.TYPE: _started,
    contract.CallAnswered.TYPE: _answered,
    contract.CallEnded.TYPE: _ended,
    contract.CallTranscription.TYPE: _transcription,
    contract.ConversationState.TYPE: _state,
    contract.Transcript.TYPE: _transcript,
    contract.TurnPlayed.TYPE: _turn,
    contract.ReplySpeaking.TYPE: _reply_speaking,
    contract.Retrieval.TYPE: _retrieval,
    contract.Latency.TYPE: _latency,
}


def _iso(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
