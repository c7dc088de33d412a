"""After a call: ask the Celery worker to look for knowledge in its transcript.

The ARI app never imports Django or the task code: it sends the task by name over the broker
(Redis), off the event loop. The task itself (``knowledge.tasks.extract_knowledge_task``) is
idempotent per call id, so a duplicate send after a crash is harmless.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)

EXTRACT_TASK = "knowledge.tasks.extract_knowledge_task"


class FollowUp:
    def __init__(self, broker_url: str, queue: str = "aipbx") -> None:
        from celery import Celery

        # set_as_current=False: a Celery app made here must not become the process's default app.
        self._celery = Celery("aipbx-ariapp", broker=broker_url, set_as_current=False)
        self._queue = queue
        self.sent = 0

    async def call_finished(self, call_id: str, has_transcript: bool) -> None:
        if not has_transcript:
            return
        try:
            await asyncio.to_thread(self._celery.send_task, EXTRACT_TASK, args=[call_id], queue=self._queue)
            self.sent += 1
        except Exception as exc:  # the broker away must not disturb calls; the console can re-run it
            log.warning("could not queue knowledge extraction for %s: %r", call_id, exc)
