"""After a call: what the Celery worker does with it, decided here and sent by task name.

* An AI call whose owner learns: ``extract_knowledge_task`` (the caller's message becomes call notes;
  only the owner's own words ever become knowledge, and the AI call has none).
* A phone-to-phone call, recorded: a complete live transcript goes straight to extraction (when the
  owner learns); anything less — over the live budget, the ARI app restarted, the recogniser fell
  behind — goes to ``transcribe_call_task``, which writes the transcript from the recordings and then
  queues the extraction itself. No recorded call ends without a transcript.

The ARI app never imports Django or the task code: it sends tasks by name over the broker (Redis),
off the event loop, to the *long* queue (:func:`aipbx.queues.long_queue`): transcription and
extraction take minutes, and webhook deliveries and retention on the default queue must never wait
behind them.
Both tasks are idempotent per call id, so a duplicate send after a crash is harmless.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aipbx.directory import Extension
from aipbx.queues import EXTRACT_TASK, TRANSCRIBE_TASK, long_queue
from ariapp.cdr import CallRecord

log = logging.getLogger(__name__)


def after_call(record: CallRecord, report: dict[str, Any] | None, ext: Extension | None) -> tuple[str, str]:
    """``(task to send or "", how the call's transcript is made)`` for a finished call.

    The second value is ``ai`` (the conversation itself), ``live``, ``post_call`` or ``none``.
    """
    turns = (report or {}).get("turns") or []
    if ext is None:
        return "", "none"
    if record.ai_handled:
        spoken = any(str(turn.get("text", "")).strip() for turn in turns)
        return (EXTRACT_TASK if spoken and ext.learns else ""), "ai"
    if not record.answer or not record.recording_dir or not ext.recorded:
        return "", "none"
    transcription = ((report or {}).get("extra") or {}).get("transcription") or {}
    if transcription.get("mode") == "live" and transcription.get("complete"):
        return (EXTRACT_TASK if ext.learns and turns else ""), "live"
    return TRANSCRIBE_TASK, "post_call"


class FollowUp:
    def __init__(self, broker_url: str, queue: str = "aipbx") -> None:
        """``queue``: the worker's default queue; the follow-ups go to its :func:`long_queue`."""
        from celery import Celery

        # set_as_current=False: a Celery app made here must not become the process's default app.
        self._celery = Celery("aipbx-ariapp", broker=broker_url, set_as_current=False)
        self._queue = long_queue(queue)
        self.sent = 0

    async def send(self, task: str, call_id: str) -> bool:
        """Queue ``task(call_id)``; False (logged) when the broker is away: the console can re-run it."""
        try:
            await asyncio.to_thread(self._celery.send_task, task, args=[call_id], queue=self._queue)
        except Exception as exc:  # the broker away must not disturb calls
            log.warning("could not queue %s for %s: %r", task.rsplit(".", 1)[-1], call_id, exc)
            return False
        self.sent += 1
        return True
