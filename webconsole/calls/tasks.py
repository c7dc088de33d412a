"""Celery tasks of calls: the transcript of a phone-to-phone call, written after the call.

``transcribe_call_task(call_id)`` (sent by the ARI app by name, see ``ariapp.followup``) reads the
call's sealed recordings, transcribes both parties (:mod:`webconsole.calls.transcription`), stores
the transcript (:func:`webconsole.calls.actions.do_store_transcript`) and, when the called extension
learns from its calls, queues the knowledge extraction. Idempotent: a call already transcribed after
the call is not transcribed again. A recogniser that failed transiently is retried with backoff; a
call whose recordings cannot be read is marked failed, visibly, and not retried.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path
from typing import Any, Final

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from ariapp import sealing
from ariapp.directory import load_directory
from ariapp.providers.errors import ProviderError
from webconsole.calls.actions import call_folder, do_mark_transcription_failed, do_store_transcript
from webconsole.calls.models import Call, TranscriptSource
from webconsole.calls.transcription import TranscriptionError, call_language, transcribe_call

logger = logging.getLogger(__name__)

_CALL_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_RETRIES: Final = 4
_STTS: dict[str, Any] = {}  # per language, loaded once per worker process


def recogniser(language: str) -> Any:
    """The worker's recogniser for ``language`` (the ARI app's family and models, see settings)."""
    from ariapp.providers.factory import build_stt, check_stt_languages

    if language not in _STTS:
        check_stt_languages(settings.AIPBX_STT_ENV, (language,))
        _STTS[language] = build_stt(settings.AIPBX_STT_ENV, language, lane="batch")
    return _STTS[language]


def run_transcription(call_id: str) -> dict[str, Any]:
    """Transcribe one finished call from its recordings; returns ``{call_id, status, lines}``."""
    if not _CALL_ID.match(call_id):
        return {"call_id": call_id, "status": "failed", "lines": 0, "reason": "invalid call id"}
    if Call.objects.filter(call_id=call_id, transcript_source=TranscriptSource.POST_CALL).exists():
        return {"call_id": call_id, "status": "done", "lines": None, "reason": "already transcribed"}
    directory = load_directory(Path(settings.AIPBX_EXTENSIONS_FILE))
    callee = _callee(call_id)
    language = call_language(callee, directory)
    try:
        lines = asyncio.run(
            transcribe_call(call_folder(call_id), settings.AIPBX_RECORDINGS_KEYRING, recogniser(language), language)
        )
    except TranscriptionError as exc:
        do_mark_transcription_failed(call_id, str(exc))
        return {"call_id": call_id, "status": "failed", "lines": 0, "reason": str(exc)}
    do_store_transcript(call_id, [line.as_turn() for line in lines])
    ext = directory.get(callee)
    if ext is not None and ext.learns and lines:
        from knowledge.tasks import extract_knowledge_task

        extract_knowledge_task.delay(call_id)
    return {"call_id": call_id, "status": "done", "lines": len(lines), "reason": ""}


def _callee(call_id: str) -> str:
    row = Call.objects.filter(call_id=call_id).values_list("callee", flat=True).first()
    if row:
        return row
    try:  # the console has not ingested the call yet: its metadata knows
        meta = json.loads(sealing.read_text(call_folder(call_id), "metadata.json", settings.AIPBX_RECORDINGS_KEYRING))
        return str((meta.get("call") or {}).get("callee") or "")
    except (OSError, ValueError, sealing.SealError):
        return ""


# Speech recognition of a whole call on the CPU; hard limit + the longest retry countdown (300 s)
# stays under the broker's visibility timeout (3,600 s), so a live task is never delivered twice.
@shared_task(bind=True, acks_late=True, max_retries=None, soft_time_limit=2400, time_limit=2700)
def transcribe_call_task(self: Any, call_id: str) -> dict[str, Any]:
    """Write the transcript of the finished call ``call_id`` from its recordings (see :func:`run_transcription`)."""
    try:
        return run_transcription(call_id)
    except SoftTimeLimitExceeded:  # recorded, so the console shows it and can run it again
        reason = f"took longer than {self.soft_time_limit} s"
        do_mark_transcription_failed(call_id, reason)
        return {"call_id": call_id, "status": "failed", "lines": 0, "reason": reason}
    except ProviderError as exc:
        if not exc.retryable or self.request.retries >= MAX_RETRIES:
            do_mark_transcription_failed(call_id, str(exc))
            return {"call_id": call_id, "status": "failed", "lines": 0, "reason": str(exc)}
        delay = min(300.0, 5.0 * 2**self.request.retries)
        logger.info("transcript of %s: %s; retry %d in %.0f s", call_id, exc, self.request.retries + 1, delay)
        raise self.retry(exc=exc, countdown=delay) from exc
