"""What extraction reads: a finished call's transcript as the console stored it in PostgreSQL.

The console owns calls: its event consumer stores each call's turns as the ARI app publishes them
(``webconsole.calls.ingest``), and a transcript written after the call replaces them
(``webconsole.calls.actions.do_store_transcript``). The knowledge app never imports the console
(pyproject's import contracts), so this module says what extraction needs — a
:class:`CallTranscript`, or :class:`CallNotFinished` while the call's end is not stored yet — and
the project names the function that reads it in ``settings.KNOWLEDGE_CALL_TRANSCRIPT`` (a dotted
path, like Django's pluggable backends): ``webconsole.calls.transcripts.finished_call``.

Why a call can be "not finished" when its task runs: the ARI app queues the extraction at hang-up,
right after publishing ``call.ended``; the console applies the stream a moment later (or later
still while it is down). The task waits for it, :func:`wait_delay` apart, at most
``CALL_WAIT_ATTEMPTS`` times (about ten minutes), then fails with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from django.conf import settings
from django.utils.module_loading import import_string

__all__ = ["CALL_WAIT_ATTEMPTS", "CallNotFinished", "CallTranscript", "finished_call", "wait_delay"]

#: How many times a worker looks again for a call's end (:func:`wait_delay` apart: ten minutes in all).
CALL_WAIT_ATTEMPTS: Final = 15


class CallNotFinished(Exception):
    """The console has not stored the call's end yet: its turns may be missing. Retryable."""

    retryable = True


@dataclass(frozen=True)
class CallTranscript:
    """A finished call as stored: its owner (the extension called), its length and its turns in order.

    ``turns``: mappings with ``speaker``, ``text``, ``t`` (seconds since the answer) and ``end``
    (None where only the start is known: the turns of an AI call).
    """

    call_id: str
    owner: str
    billsec: float | None
    turns: Sequence[Mapping[str, Any]]


def finished_call(call_id: str) -> CallTranscript:
    """The stored transcript of ``call_id``, read by the project's ``KNOWLEDGE_CALL_TRANSCRIPT``.

    Raises:
        CallNotFinished: the call's end is not stored yet (retry later).
        knowledge.extraction.ExtractionError: the stored transcript can never be complete.
    """
    reader: Callable[[str], CallTranscript] = import_string(settings.KNOWLEDGE_CALL_TRANSCRIPT)
    return reader(call_id)


def wait_delay(waits: int) -> float:
    """Seconds before looking again for a call's end after ``waits`` looks: 1, 2, 4 ... then every 60 s."""
    return min(60.0, 2.0**waits)
