"""The call events the ARI app publishes and the console applies: one frozen dataclass per type.

On the wire (a Redis Stream entry, all values strings)::

    event_id  32 hex digits, unique: the console applies an event once
    type      the event's ``TYPE`` ("call.started", "transcript", ...)
    call_id   the call it is about
    ts        seconds since the epoch, 3 decimals, when it was published
    v         the ``VERSION`` of the type's fields (absent in entries written before it existed: 1)
    data      the fields as one JSON object

A type's ``VERSION`` goes up when a field changes meaning or goes away; adding a field with a default
does not need it (readers ignore what they do not know). A console that meets a type it does not
know keeps the entry as it came (:meth:`Envelope.event` is None) rather than failing.

:func:`decode` checks only the envelope (it raises :class:`BadEvent` for an entry that can never be
applied); the fields of ``data`` are read by the console as leniently as ever, since an event
recorded by an older ARI app may lack some.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

#: Limits of the envelope (the console's columns): longer ids are refused, not cut.
MAX_EVENT_ID, MAX_CALL_ID, MAX_TYPE = 64, 128, 32


class BadEvent(ValueError):
    """A stream entry that is not an event (missing or malformed envelope): dead-lettered, never retried."""


@dataclass(frozen=True)
class Event:
    """Base of every event type: ``TYPE`` names it on the wire, ``VERSION`` is that of its fields."""

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    def data(self) -> dict[str, Any]:
        """The fields as sent in ``data``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        """The event from its ``data``; unknown keys are ignored (a newer publisher's additions).

        Raises:
            BadEvent: a field without a default is missing.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise BadEvent(f"{cls.TYPE} data does not fit its fields: {exc}") from exc


# --- the call ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallStarted(Event):
    TYPE: ClassVar[str] = "call.started"
    caller: str
    callee: str
    start: str  # ISO 8601 UTC


@dataclass(frozen=True)
class CallAnswered(Event):
    TYPE: ClassVar[str] = "call.answered"
    answered_by: str  # "ai" or the channel of the person who answered
    ai: bool


@dataclass(frozen=True)
class CallEnded(Event):
    """The call is over: its last event but ``call.transcription``.

    ``turns``: how many turns with words the call's transcript has (its final ``transcript`` and
    ``turn`` events, less those replaced), so a reader of the stored turns can tell they are all
    there; None when the ARI app kept no transcript of the call (or predates the field).
    """

    TYPE: ClassVar[str] = "call.ended"
    cdr: dict[str, Any]  # the call's CDR line (ariapp.cdr.CallRecord.to_cdr)
    turns: int | None = None

    def data(self) -> dict[str, Any]:
        data = super().data()
        if self.turns is None:
            del data["turns"]
        return data


@dataclass(frozen=True)
class CallRejected(Event):
    """An AI call refused at a cap: the caller hears the busy message (``limit``: per_caller, total, or
    capacity: answers were slower than the node's target, ``ariapp.calls.admission``)."""

    TYPE: ClassVar[str] = "call.rejected"
    limit: str
    reason: str = ""
    active_ai_calls: int = 0


@dataclass(frozen=True)
class CallTranscription(Event):
    """How the finished call's transcript is made: ``ai``, ``live``, ``post_call`` or ``none``."""

    TYPE: ClassVar[str] = "call.transcription"
    mode: str


# --- the conversation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversationState(Event):
    TYPE: ClassVar[str] = "state"
    state: str  # ariapp.conversation.machine.State


@dataclass(frozen=True)
class Transcript(Event):
    """What a party said: interim text (shown live only) or a final line (kept as a turn).

    ``end`` and ``confidence`` come with a line transcribed with its timing (a phone-to-phone call's
    live transcript); they are sent together, and only then.

    ``replaces``: the ``t`` of the same speaker's earlier final line that this one replaces (the caller
    went on talking before the AI answered, and both parts were heard again as one question); that
    line is no longer part of the transcript. Sent only when set.
    """

    TYPE: ClassVar[str] = "transcript"
    speaker: str
    text: str
    final: bool
    t: float  # seconds since the answer
    end: float | None = None
    confidence: float | None = None
    replaces: float | None = None

    def data(self) -> dict[str, Any]:
        data = super().data()
        if self.end is None:
            del data["end"], data["confidence"]
        if self.replaces is None:
            del data["replaces"]
        return data


@dataclass(frozen=True)
class TurnPlayed(Event):
    """A reply of the AI as it was played (``unspoken``: the part cut off by the caller)."""

    TYPE: ClassVar[str] = "turn"
    t: float
    speaker: str
    text: str
    interrupted: bool = False
    unspoken: str = ""
    latency_ms: dict[str, float] = field(default_factory=dict)
    retrieved: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ReplySpeaking(Event):
    """The AI's reply as it is spoken: sent as each piece (a sentence or clause) starts to play.

    ``text`` is the reply so far, this piece included; ``t`` is the reply's time (seconds since the
    answer), the same as the :class:`TurnPlayed` that closes it, which says what was finally heard
    (a piece cut off before it played is never sent here).
    """

    TYPE: ClassVar[str] = "reply.speaking"
    t: float
    text: str


@dataclass(frozen=True)
class Retrieval(Event):
    """The knowledge found for the caller's question; ``confidence`` (0..1) is the relevance gate's
    probability that it answers the question (None when no knowledge was searched)."""

    TYPE: ClassVar[str] = "retrieval"
    question: str
    results: list[dict[str, Any]]  # text, score, item_id, used
    t: float
    confidence: float | None = None


@dataclass(frozen=True)
class Latency(Event):
    """A turn's latency marks in ms after the end of the caller's speech; ``data`` is the marks themselves."""

    TYPE: ClassVar[str] = "latency"
    marks: dict[str, float]

    def data(self) -> dict[str, Any]:
        return dict(self.marks)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        return cls(dict(data))


# --- human in the loop ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HitlRequested(Event):
    TYPE: ClassVar[str] = "hitl.requested"
    request_id: str
    question: str
    reason: str
    detail: str = ""
    confidence: float | None = None
    retrieved: list[dict[str, Any]] = field(default_factory=list)
    recent_turns: list[dict[str, Any]] = field(default_factory=list)
    callee: str = ""
    language: str = ""


@dataclass(frozen=True)
class HitlSpoken(Event):
    TYPE: ClassVar[str] = "hitl.spoken"
    request_id: str
    text: str


@dataclass(frozen=True)
class HitlTimeout(Event):
    TYPE: ClassVar[str] = "hitl.timeout"
    request_id: str


@dataclass(frozen=True)
class HitlCancelled(Event):
    TYPE: ClassVar[str] = "hitl.cancelled"
    request_id: str
    why: str = ""


# --- voicemail and call-backs --------------------------------------------------------------------


@dataclass(frozen=True)
class VoicemailRecorded(Event):
    """The caller left a message after the tone (published after the call ended, its files sealed).

    ``file`` is the message's name in the call's recordings folder (``voicemail.wav``, sealed to
    ``voicemail.wav.enc``); ``t`` its start in seconds since the answer; ``ended`` why it ended
    (``hangup``, ``max_length``, ``silence``); ``request_id`` the help request that led to it and
    ``reason`` how (``timeout``: nobody answered in time, ``away``: nobody was available);
    ``transcript`` what the recogniser heard (empty when it heard nothing or failed: the console
    then has the worker transcribe the file).
    """

    TYPE: ClassVar[str] = "voicemail.recorded"
    file: str
    t: float
    duration: float
    ended: str
    reason: str = ""
    request_id: str = ""
    callee: str = ""
    language: str = ""
    transcript: str = ""


@dataclass(frozen=True)
class CallbackStatus(Event):
    """How an operator's click-to-call goes (``call_id`` is the new call's id, chosen by the console).

    ``status``: ``ringing_operator`` -> ``ringing_caller`` (the operator answered) -> ``connected``
    -> ``ended``; or ``failed`` with ``reason`` (``operator_unregistered``, ``operator_no_answer``,
    ``operator_busy``, ``operator_declined``, ``caller_busy``, ``caller_no_answer``,
    ``caller_unreachable``, ``no_outside_line``, ``expired``, ``invalid``, ``error``).
    """

    TYPE: ClassVar[str] = "callback.status"
    callback_id: str
    status: str
    reason: str = ""


@dataclass(frozen=True)
class TransferStatus(Event):
    """How putting an AI call through to an operator's phone goes (``call_id``: the transferred call).

    ``status``: ``ringing`` (the operator's phone) -> ``briefing`` (they answered and hear who and
    what) -> ``connected`` (bridged with the caller; the AI is quiet) -> ``ended``; when listening in
    (``TransferRequest.mode`` ``listen``): ``ringing`` -> ``listening`` (they hear caller and AI, nobody
    hears them) -> ``connected`` (taken over) or ``ended`` (they hung up: the AI goes on); or ``failed`` with
    ``reason`` (``operator_unregistered``, ``operator_no_answer``, ``operator_busy``,
    ``operator_declined``, ``operator_hung_up``, ``not_ai_call``, ``busy``, ``expired``, ``error``):
    the caller is back with the AI, who says so.
    """

    TYPE: ClassVar[str] = "transfer.status"
    transfer_id: str
    status: str
    reason: str = ""
    operator_ext: str = ""


EVENT_TYPES: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        CallStarted,
        CallAnswered,
        CallEnded,
        CallRejected,
        CallTranscription,
        ConversationState,
        Transcript,
        TurnPlayed,
        ReplySpeaking,
        Retrieval,
        Latency,
        HitlRequested,
        HitlSpoken,
        HitlTimeout,
        HitlCancelled,
        VoicemailRecorded,
        CallbackStatus,
        TransferStatus,
    )
}


# --- the envelope --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    """One stream entry: an event of ``type`` about ``call_id``, with its fields as ``data``."""

    event_id: str
    type: str
    call_id: str
    ts: datetime
    data: dict[str, Any]
    version: int = 1

    @classmethod
    def of(cls, event: Event, call_id: str, *, event_id: str | None = None, ts: float | None = None) -> Envelope:
        """Wrap ``event`` for publishing (a fresh id, now, unless given)."""
        return cls(
            event_id or uuid.uuid4().hex,
            event.TYPE,
            call_id,
            datetime.fromtimestamp(time.time() if ts is None else ts, tz=UTC),
            event.data(),
            event.VERSION,
        )

    def event(self) -> Event | None:
        """The typed event, or None for a type this side does not know.

        Raises:
            BadEvent: the type is known but ``data`` lacks one of its required fields.
        """
        cls = EVENT_TYPES.get(self.type)
        return None if cls is None else cls.from_data(self.data)


def encode(envelope: Envelope) -> dict[str, str]:
    """The stream entry's fields."""
    return {
        "event_id": envelope.event_id,
        "type": envelope.type,
        "call_id": envelope.call_id,
        "ts": f"{envelope.ts.timestamp():.3f}",
        "v": str(envelope.version),
        "data": json.dumps(envelope.data, ensure_ascii=False, default=str),
    }


def decode(fields: Mapping[str | bytes, str | bytes]) -> Envelope:
    """The envelope of one stream entry (as redis-py returns it: bytes or str).

    Raises:
        BadEvent: a field of the envelope is missing, malformed or too long.
    """
    text = {_str(k): _str(v) for k, v in fields.items()}
    missing = [name for name in ("event_id", "type", "call_id", "ts") if not text.get(name)]
    if missing:
        raise BadEvent(f"event lacks {', '.join(missing)}: {text!r:.200}")
    try:
        ts = datetime.fromtimestamp(float(text["ts"]), tz=UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise BadEvent(f"event {text['event_id']} has a bad ts {text['ts']!r}") from exc
    try:
        data = json.loads(text.get("data") or "{}")
    except json.JSONDecodeError as exc:
        raise BadEvent(f"event {text['event_id']} has malformed data: {exc}") from exc
    if not isinstance(data, dict):
        raise BadEvent(f"event {text['event_id']} data is not an object")
    if len(text["event_id"]) > MAX_EVENT_ID or len(text["call_id"]) > MAX_CALL_ID or len(text["type"]) > MAX_TYPE:
        raise BadEvent(f"event {text['event_id'][:64]!r} has an over-long id or type")
    version = text.get("v") or "1"
    if not version.isdigit():
        raise BadEvent(f"event {text['event_id']} has a bad version {version!r}")
    return Envelope(text["event_id"], text["type"], text["call_id"], ts, data, int(version))


def _str(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
