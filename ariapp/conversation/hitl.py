"""Human in the loop, the ARI app's half: when to ask a person, and the desk that carries the answer.

The orchestrator asks a human when the caller asks for a person, names a sensitive topic, or the
knowledge base has nothing good enough (:func:`hitl_trigger`). It publishes ``hitl.requested`` on
the event stream; the console stores the request, decides (``queued`` when an operator of the
callee is available or busy, ``away`` otherwise) and later sends the operator's polished answer.
Those replies arrive on the Redis list ``aipbx:<instance>:hitl:<request_id>`` (:class:`RedisDesk`).
PostgreSQL holds the request, so a console restart during a hold loses nothing: the caller keeps
hearing hold music until the answer is pushed or the hold limit passes.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from contract import hitl_reply_key

if TYPE_CHECKING:
    import redis.asyncio

log = logging.getLogger(__name__)

LOW_CONFIDENCE = "low_confidence"
ASKED_FOR_PERSON = "asked_for_person"
SENSITIVE_TOPIC = "sensitive_topic"

DEFAULT_SENSITIVE = (
    "contract",
    "payment",
    "refund",
    "complaint",
    "lawsuit",
    "cancel my",
    "계약",
    "결제",
    "환불",
    "불만",
    "소송",
    "해지",
)

_PERSON = re.compile(
    r"\b(?:talk|speak|connect me|put me through)\s+(?:to|with)\s+(?:a|an|the|some|your)?\s*"
    r"(?:real\s+)?(?:person|human|someone|somebody|operator|agent|representative|staff|manager)\b"
    r"|\breal (?:person|human)\b|\bhuman being\b"
    r"|담당자|상담원|상담사|사람(?:이랑|하고|과|와)\s*(?:통화|얘기|이야기|연결)|직원(?:이랑|하고|과|와|분)|연결해\s*주",
    re.IGNORECASE,
)

MESSAGES = {
    "en": {
        "checking": "One moment please, I'm checking that with a colleague.",
        "updates": ("Thank you for waiting, I'm still checking.", "Sorry for the wait, I'm still on it."),
        "timeout": "I'm sorry, nobody could answer that right now. {owner} will call you back.",
        "away": "I'm not sure about that, and nobody is available right now. {owner} will get back to you.",
        "voicemail": "Please leave a message after the tone.",
        "voicemail_end": "Thank you, your message has been recorded. Goodbye.",
    },
    "ko": {
        "checking": "잠시만 기다려 주세요. 담당자에게 확인하고 있습니다.",
        "updates": (
            "기다려 주셔서 감사합니다. 아직 확인하고 있습니다.",
            "기다리게 해서 죄송합니다. 곧 답변드리겠습니다.",
        ),
        "timeout": "죄송합니다. 지금은 답변을 드리기 어렵습니다. {owner} 님이 다시 연락드리겠습니다.",
        "away": "그 부분은 확실하지 않고, 지금 응대 가능한 담당자가 없습니다. {owner} 님이 다시 연락드리겠습니다.",
        "voicemail": "삐 소리가 나면 메시지를 남겨 주세요.",
        "voicemail_end": "메시지가 녹음되었습니다. 감사합니다. 안녕히 계세요.",
    },
}


@dataclass(frozen=True)
class HitlConfig:
    """``min_score`` None means the level the knowledge's verdict had to reach (the relevance gate's
    probability, or a retriever's calibrated cosine threshold when it has no gate)."""

    min_score: float | None = None
    sensitive: tuple[str, ...] = DEFAULT_SENSITIVE
    decision_s: float = 2.0  # how long to wait for the console to say queued or away
    updates_s: tuple[float, ...] = (15.0, 30.0)  # spoken "still checking" updates during the hold
    hold_s: float = 60.0  # then a polite timeout and an unresolved item
    # Voicemail after the timeout or away message: "leave a message after the tone", a tone, then the
    # caller's message until they hang up, ``voicemail_max_s`` pass, or ``voicemail_silence_s`` of
    # silence follow their words (twice that if they say nothing at all). False: the call goes on.
    voicemail: bool = True
    voicemail_max_s: float = 120.0
    voicemail_silence_s: float = 4.0
    messages: dict[str, dict[str, Any]] = field(default_factory=lambda: MESSAGES)


@dataclass(frozen=True)
class Trigger:
    reason: str
    detail: str = ""


def asks_for_person(question: str) -> bool:
    """Whether the caller asks to talk to a person ("Can I speak to someone?", "사람이랑 통화하고 싶어요")."""
    return _PERSON.search(question.strip()) is not None


def hitl_trigger(question: str, best_score: float | None, threshold: float, config: HitlConfig) -> Trigger | None:
    """Why a person should answer ``question`` (or None: the AI answers).

    ``best_score`` is the confidence that the knowledge answers it (None: no knowledge at all).
    """
    text = question.strip()
    if not text:
        return None
    match = _PERSON.search(text)
    if match:
        return Trigger(ASKED_FOR_PERSON, match.group(0))
    lowered = text.lower()
    for word in config.sensitive:
        if word and word.lower() in lowered:
            return Trigger(SENSITIVE_TOPIC, word)
    floor = threshold if config.min_score is None else config.min_score
    if best_score is None or best_score < floor:
        score = "no knowledge" if best_score is None else f"best score {best_score:.2f} < {floor:.2f}"
        return Trigger(LOW_CONFIDENCE, score)
    return None


class MessageTaker(Protocol):
    """Records the caller's voicemail (the call session, which holds the caller's audio)."""

    async def take_message(self, request_id: str, reason: str) -> str:
        """Record from now until the message is over; returns why it ended (``max_length``, ``silence``).

        A hang-up cancels the wait; the session keeps what was recorded.
        """
        ...


class Desk(Protocol):
    """Where the console's replies for one request arrive."""

    async def reply(self, request_id: str, wait_s: float) -> dict[str, Any] | None: ...


class RedisDesk:
    """Replies pushed by the console onto ``aipbx:<instance>:hitl:<request_id>`` (BLPOP)."""

    def __init__(self, redis_url: str, instance: str) -> None:
        self.redis_url = redis_url
        self.instance = instance
        self._client: redis.asyncio.Redis | None = None

    def key(self, request_id: str) -> str:
        return hitl_reply_key(self.instance, request_id)

    async def reply(self, request_id: str, wait_s: float) -> dict[str, Any] | None:
        import redis.asyncio as redis

        if self._client is None:
            self._client = redis.from_url(self.redis_url, socket_connect_timeout=2.0)
        try:
            # redis-py types its commands once for the sync and asyncio clients, so the result is a union.
            item = await self._client.blpop([self.key(request_id)], timeout=max(wait_s, 0.01))  # type: ignore[misc]
        except (redis.RedisError, OSError) as exc:
            log.warning("HITL desk unavailable: %r", exc)
            return None
        if item is None:
            return None
        try:
            reply = json.loads(item[1])
        except (ValueError, TypeError):
            log.error("HITL reply for %s is not JSON: %r", request_id, item[1][:200])
            return None
        return reply if isinstance(reply, dict) else None


def beep(rate: int, seconds: float = 0.5, freq: float = 1000.0) -> np.ndarray:
    """The voicemail tone: a plain 1 kHz beep at about -12 dBFS with 10 ms ramps (no click)."""
    t = np.arange(int(rate * seconds)) / rate
    ramp = np.minimum(1.0, np.minimum(t, seconds - t) / 0.01)
    return (np.sin(2 * np.pi * freq * t) * ramp * 8000).astype(np.int16)


def hold_music(rate: int, seconds: float) -> np.ndarray:
    """Our own gentle hold music: a slow major arpeggio with soft attacks, about -24 dBFS."""
    notes = (261.63, 329.63, 392.0, 523.25, 392.0, 329.63)  # C E G C G E
    note_s = 0.5
    per_note = int(rate * note_s)
    t = np.arange(per_note) / rate
    envelope = np.minimum(1.0, t / 0.05) * np.exp(-2.5 * t)
    phrase = np.concatenate([np.sin(2 * np.pi * f * t) * envelope for f in notes])
    total = max(1, int(rate * seconds))
    music = np.resize(phrase, total)
    return (music * 2000).astype(np.int16)
