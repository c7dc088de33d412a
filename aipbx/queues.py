"""The Celery tasks the processes send each other by name, and the queues they go to.

The ARI app never imports Django or the task code: it sends tasks by name over the broker (Redis)
(``ariapp.followup``); the console's worker runs them (``webconsole.celery`` routes them). Tasks
that take minutes — transcription, extraction, imports — go to the *long* queue
(:func:`long_queue`), so webhook deliveries and retention on the default queue never wait behind
them.
"""

from __future__ import annotations

EXTRACT_TASK = "knowledge.tasks.extract_knowledge_task"
TRANSCRIBE_TASK = "webconsole.calls.tasks.transcribe_call_task"
IMPORT_TASK = "knowledge.tasks.import_knowledge_task"
VOICEMAIL_TASK = "webconsole.voicemail.tasks.transcribe_voicemail_task"  # sent by the console, not the ARI app
#: Tasks that take minutes: they go to :func:`long_queue`, served by a worker of their own.
LONG_TASKS = frozenset({EXTRACT_TASK, TRANSCRIBE_TASK, IMPORT_TASK, VOICEMAIL_TASK})


def long_queue(queue: str) -> str:
    """The queue of the long tasks beside the default queue ``queue`` (``aipbx`` -> ``aipbx.long``)."""
    return f"{queue}.long"


def worker_queues(queue: str) -> list[str]:
    """Every queue a worker must consume to run all tasks of the default queue ``queue``."""
    return [queue, long_queue(queue)]
