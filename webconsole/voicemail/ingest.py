"""``voicemail.recorded`` applied to PostgreSQL (called by ``webconsole.calls.ingest`` in its transaction).

The message belongs to the call (one per call) and to the help request that led to it; the call stays
an unresolved item until the message is handled. A message the ARI app could not transcribe goes to
the worker after the commit (``transcribe_voicemail_task``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.db import transaction

from webconsole.calls import live
from webconsole.calls.models import Call, HitlStatus
from webconsole.hitl.models import HitlRequest
from webconsole.voicemail.models import TranscriptStatus, Voicemail

if TYPE_CHECKING:
    from webconsole.calls.ingest import Event

log = logging.getLogger(__name__)


def apply_voicemail_event(call: Call, event: Event) -> None:
    """Store the message of ``call`` (saved by the caller); a replay of another event id changes nothing."""
    data = event.data
    if Voicemail.objects.filter(call=call).exists():
        log.info("the voicemail of %s is already stored (event %s)", call.call_id, event.event_id)
        return
    request_id = _text(data.get("request_id"), 64)
    transcript = _text(data.get("transcript"), 20000).strip()
    voicemail = Voicemail.objects.create(
        call=call,
        hitl_request=HitlRequest.objects.filter(request_id=request_id, call=call).first() if request_id else None,
        callee=_text(data.get("callee"), 16) or call.callee,
        caller=call.caller,
        file=_text(data.get("file"), 64) or "voicemail.wav",
        t=_float(data.get("t")),
        duration_s=_float(data.get("duration")),
        ended_by=_text(data.get("ended"), 16),
        reason=_text(data.get("reason"), 16),
        language=_text(data.get("language"), 16),
        transcript=transcript,
        transcript_status=TranscriptStatus.DONE if transcript else TranscriptStatus.QUEUED,
        created=event.ts,
    )
    if call.hitl_status != HitlStatus.RESOLVED:
        call.hitl_status = HitlStatus.UNRESOLVED  # the message is the follow-up still due
    if not transcript:
        from webconsole.voicemail.tasks import transcribe_voicemail_task

        transaction.on_commit(lambda: transcribe_voicemail_task.delay(voicemail.pk))
    transaction.on_commit(lambda: notify(voicemail))


def notify(voicemail: Voicemail) -> None:
    """Tell the pages of the extension (after commit; never raises)."""
    try:
        payload = {"type": "voicemail", "call_id": voicemail.call.call_id, "callee": voicemail.callee}
        live.send([live.ALL_GROUP, live.ext_group(voicemail.callee)], {"type": "console.update", "payload": payload})
    except Exception as exc:
        log.warning("voicemail live update failed: %r", exc)


def _text(value: Any, limit: int) -> str:
    return "" if value is None else str(value)[:limit]


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0
