"""Helpers of the console tests: ARI-app events as they appear on the stream, users with roles."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import User

from contract import Envelope, encode
from webconsole.calls.models import Extension, Operator, Role

PASSWORD = "a-long-test-password-1"


def event(event_type: str, call_id: str, event_id: str | None = None, **data: Any) -> dict[str, str]:
    """A stream entry exactly as ``ariapp.events.EventPublisher`` writes it (``data`` as given, even if odd)."""
    return encode(Envelope(event_id or uuid.uuid4().hex, event_type, call_id, datetime.now(UTC), data))


def ai_call_events(call_id: str, callee: str = "1002", caller: str = "1001") -> list[dict[str, str]]:
    """A whole AI-answered call: started, answered by the AI, one question and answer, ended."""
    return [
        event("call.started", call_id, caller=caller, callee=callee, start="2026-11-25T01:00:00.000+00:00"),
        event("call.answered", call_id, answered_by="ai", ai=True),
        event("state", call_id, state="listening"),
        event(
            "turn",
            call_id,
            t=0.0,
            speaker="ai",
            text="안녕하세요, 이지영 님의 AI 비서입니다.",
            interrupted=False,
            unspoken="",
            latency_ms={},
            retrieved=[],
        ),
        event("transcript", call_id, speaker="caller", text="When is the team", final=False, t=3.1),
        event("transcript", call_id, speaker="caller", text="When is the team meeting?", final=True, t=3.1),
        event(
            "retrieval",
            call_id,
            question="When is the team meeting?",
            t=3.1,
            results=[{"text": "The team meeting is on Tuesday at 10.", "score": 0.71, "item_id": None}],
        ),
        event(
            "turn",
            call_id,
            t=4.0,
            speaker="ai",
            text="The team meeting is on Tuesday at 10.",
            interrupted=False,
            unspoken="",
            latency_ms={},
            retrieved=[],
        ),
        event("latency", call_id, stt_final=310.0, retrieval=330.5, first_rtp=812.0),
        event(
            "call.ended",
            call_id,
            cdr={
                "call_id": call_id,
                "caller": caller,
                "callee": callee,
                "start": "2026-11-25T01:00:00.000+00:00",
                "answer": "2026-11-25T01:00:10.000+00:00",
                "end": "2026-11-25T01:00:30.500+00:00",
                "ai_handled": True,
                "answered_by": "ai",
                "duration": 30.5,
                "billsec": 20.5,
                "dial_status": "NOANSWER",
                "hangup_by": "caller",
                "termination_reason": "caller_hangup",
                "codec": "ulaw",
            },
        ),
    ]


def make_user(username: str, *, role: str = Role.OPERATOR, extensions: tuple[str, ...] = ()) -> User:
    user = User.objects.create_user(username, password=PASSWORD)
    operator = Operator.objects.create(user=user, role=role)
    for number in extensions:
        operator.extensions.add(Extension.objects.get_or_create(number=number)[0])
    return user
