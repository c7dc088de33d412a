"""What an operator does with a voicemail: mark it handled (or not yet), and keep the call's item in step.

A voicemail and its call's unresolved item are one follow-up: handling the message resolves the call
(``Call.hitl_status``), and resolving the call on its page marks its message handled
(:func:`do_sync_with_call`). Callers check visibility first (``queries.visible_voicemails``).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from webconsole.calls.models import Call, HitlStatus
from webconsole.voicemail.models import TranscriptStatus, Voicemail


def do_mark_handled(voicemail_id: int, user: Any, handled: bool = True) -> Voicemail:
    with transaction.atomic():
        voicemail = Voicemail.objects.select_for_update().get(pk=voicemail_id)
        call = Call.objects.select_for_update().get(pk=voicemail.call_id)
        voicemail.handled = handled
        voicemail.handled_by = user if handled else None
        voicemail.handled_at = timezone.now() if handled else None
        voicemail.save(update_fields=["handled", "handled_by", "handled_at"])
        call.hitl_status = HitlStatus.RESOLVED if handled else HitlStatus.UNRESOLVED
        call.save(update_fields=["hitl_status", "updated"])
    return voicemail


def do_sync_with_call(call: Call, user: Any) -> None:
    """The call's follow-up status was set on its page: its voicemail says the same."""
    handled = call.hitl_status == HitlStatus.RESOLVED
    now = timezone.now() if handled else None
    Voicemail.objects.filter(call=call).exclude(handled=handled).update(
        handled=handled, handled_by=user if handled else None, handled_at=now
    )


def do_store_transcript(voicemail_id: int, text: str) -> None:
    Voicemail.objects.filter(pk=voicemail_id).update(transcript=text, transcript_status=TranscriptStatus.DONE)


def do_mark_transcription_failed(voicemail_id: int) -> None:
    Voicemail.objects.filter(pk=voicemail_id).update(transcript_status=TranscriptStatus.FAILED)
