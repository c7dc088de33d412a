"""``transcribe_voicemail_task``: the words of a message the ARI app could not transcribe itself.

Reads the sealed ``voicemail.wav`` of the call and recognises it with the call language's model (the
worker's recogniser of ``webconsole.calls.tasks``). Idempotent: a transcribed message is left alone.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from celery import shared_task
from django.conf import settings

from aipbx.audio.resample import resample
from aipbx.providers.errors import ProviderError
from webconsole.calls.actions import call_folder
from webconsole.calls.tasks import recogniser
from webconsole.calls.transcription import TranscriptionError, read_track
from webconsole.voicemail.actions import do_mark_transcription_failed, do_store_transcript
from webconsole.voicemail.models import TranscriptStatus, Voicemail

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, soft_time_limit=600, time_limit=660)
def transcribe_voicemail_task(voicemail_id: int) -> dict[str, Any]:
    voicemail = Voicemail.objects.select_related("call").filter(pk=voicemail_id).first()
    if voicemail is None or voicemail.transcript_status == TranscriptStatus.DONE:
        return {"voicemail": voicemail_id, "status": "done"}
    language = voicemail.language or "en-US"
    try:
        pcm, rate = read_track(call_folder(voicemail.call.call_id), voicemail.file, settings.AIPBX_RECORDINGS_KEYRING)
        stt = recogniser(language)
        result = asyncio.run(stt.transcribe(resample(pcm, rate, stt.sample_rate), language[:2]))
    except (TranscriptionError, ProviderError) as exc:
        logger.warning("voicemail %s could not be transcribed: %s", voicemail_id, exc)
        do_mark_transcription_failed(voicemail_id)
        return {"voicemail": voicemail_id, "status": "failed", "reason": str(exc)}
    do_store_transcript(voicemail_id, result.text.strip())
    return {"voicemail": voicemail_id, "status": "done"}
