"""Celery tasks of calls: the transcript of a phone-to-phone call, written after the call.

``transcribe_call_task(call_id)`` (sent by the ARI app by name, see ``ariapp.followup``) reads the
call's sealed recordings, transcribes both parties (:mod:`webconsole.calls.transcription`), stores
the transcript (:func:`webconsole.calls.actions.do_store_transcript`) and, when the called extension
learns from its calls, queues the knowledge extraction. Idempotent: a call already transcribed after
the call is not transcribed again. A recogniser that failed transiently is retried with backoff; a
call whose recordings cannot be read is marked failed, visibly, and not retried.

The call (its callee, hence the language) is read from PostgreSQL, the recordings from disk. The
ARI app queues the task as it publishes the call's end, so the task first waits for the console to
store that end (:func:`webconsole.calls.transcripts.ended_call`), as the knowledge extraction does.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Final

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from aipbx.providers.errors import ProviderError
from knowledge.transcripts import CALL_WAIT_ATTEMPTS, CallNotFinished, wait_delay
from webconsole.calls.actions import call_folder, do_mark_transcription_failed, do_store_transcript
from webconsole.calls.directory import current_directory
from webconsole.calls.models import Call, TranscriptSource
from webconsole.calls.transcription import TranscriptionError, call_language, transcribe_call
from webconsole.calls.transcripts import ended_call

logger = logging.getLogger(__name__)

_CALL_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_RETRIES: Final = 4
_STTS: dict[str, Any] = {}  # per language, loaded once per worker process


def recogniser(language: str) -> Any:
    """The worker's recogniser for ``language`` (the ARI app's family and models, see settings)."""
    from aipbx.providers.factory import build_stt, check_stt_languages

    if language not in _STTS:
        check_stt_languages(settings.AIPBX_STT_ENV, (language,))
        _STTS[language] = build_stt(settings.AIPBX_STT_ENV, language, lane="batch")
    return _STTS[language]


def run_transcription(call_id: str) -> dict[str, Any]:
    """Transcribe one finished call from its recordings; returns ``{call_id, status, lines}``.

    Raises:
        CallNotFinished: the console has not stored the call's end yet (the task waits for it).
    """
    if not _CALL_ID.match(call_id):
        return {"call_id": call_id, "status": "failed", "lines": 0, "reason": "invalid call id"}
    if Call.objects.filter(call_id=call_id, transcript_source=TranscriptSource.POST_CALL).exists():
        return {"call_id": call_id, "status": "done", "lines": None, "reason": "already transcribed"}
    callee = ended_call(call_id).callee
    directory = current_directory()
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


# Speech recognition of a whole call on the CPU; hard limit + the longest retry countdown (300 s)
# stays under the broker's visibility timeout (3,600 s), so a live task is never delivered twice.
@shared_task(bind=True, acks_late=True, max_retries=None, soft_time_limit=2400, time_limit=2700)
def transcribe_call_task(self: Any, call_id: str, waits: int = 0) -> dict[str, Any]:
    """Write the transcript of the finished call ``call_id`` from its recordings (see :func:`run_transcription`).

    ``waits``: how many times this delivery already waited for the console to store the call's end.
    """
    try:
        return run_transcription(call_id)
    except CallNotFinished as exc:
        if waits >= CALL_WAIT_ATTEMPTS:
            do_mark_transcription_failed(call_id, str(exc))
            return {"call_id": call_id, "status": "failed", "lines": 0, "reason": str(exc)}
        delay = wait_delay(waits)
        logger.info("transcript of %s waits %.0f s: %s", call_id, delay, exc)
        raise self.retry(exc=exc, countdown=delay, kwargs={"waits": waits + 1}) from exc
    except SoftTimeLimitExceeded:  # recorded, so the console shows it and can run it again
        reason = f"took longer than {self.soft_time_limit} s"
        do_mark_transcription_failed(call_id, reason)
        return {"call_id": call_id, "status": "failed", "lines": 0, "reason": reason}
    except ProviderError as exc:
        if not exc.retryable or self.request.retries - waits >= MAX_RETRIES:
            do_mark_transcription_failed(call_id, str(exc))
            return {"call_id": call_id, "status": "failed", "lines": 0, "reason": str(exc)}
        delay = min(300.0, 5.0 * 2 ** (self.request.retries - waits))
        logger.info("transcript of %s: %s; retry %d in %.0f s", call_id, exc, self.request.retries + 1, delay)
        raise self.retry(exc=exc, countdown=delay) from exc
