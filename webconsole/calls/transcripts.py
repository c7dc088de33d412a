"""A finished call as the workers read it: from PostgreSQL, never from the ARI app's files.

The post-call tasks (``transcribe_call_task`` here, ``extract_knowledge_task`` in the knowledge app)
are queued by the ARI app at hang-up, right after it published ``call.ended``; the event consumer
applies that a moment later. So a task first asks :func:`ended_call`, which raises
:class:`~knowledge.transcripts.CallNotFinished` until the call's end is stored, and the task retries
(bounded). Once ``call.ended`` is stored every earlier event of the call is too: the consumer
applies the stream in order and commits each batch whole (``webconsole.calls.stream``).

:func:`finished_call` is the knowledge app's ``settings.KNOWLEDGE_CALL_TRANSCRIPT``. The turns are
the ones the ARI app published, unless a transcript written after the call replaced them; for the
former, ``call.ended`` says how many have words, so a transcript with some lost on the way (the ARI
app's event buffer overflowed while Redis was away) is refused rather than learned from in part.
"""

from __future__ import annotations

import contract
from knowledge.extraction import ExtractionError
from knowledge.transcripts import CallNotFinished, CallTranscript
from webconsole.calls.models import Call, CallEvent, CallState, TranscriptSource

__all__ = ["ended_call", "finished_call"]


def ended_call(call_id: str) -> Call:
    """The call ``call_id`` once its ``call.ended`` is stored.

    Raises:
        CallNotFinished: no such call yet, or it has not ended here yet.
    """
    call = Call.objects.filter(call_id=call_id).first()
    if call is None or call.state != CallState.ENDED:
        raise CallNotFinished(
            f"the console has not stored the end of call {call_id} yet (is `manage.py consume_events` running?)"
        )
    return call


def finished_call(call_id: str) -> CallTranscript:
    """The stored transcript of the finished call ``call_id`` (turns in time order).

    Raises:
        CallNotFinished: the call's end is not stored yet.
        ExtractionError: fewer turns are stored than the call had (never retried: they were lost).
    """
    call = ended_call(call_id)
    turns = list(call.turns.order_by("t", "id").values("speaker", "text", "t", "end"))
    if call.transcript_source != TranscriptSource.POST_CALL:
        announced = _turns_announced(call)
        stored = sum(1 for turn in turns if turn["text"].strip())
        if announced is not None and stored < announced:
            raise ExtractionError(
                f"transcript incomplete: {stored} of the call's {announced} turns reached the console "
                "(events were lost on the way)"
            )
    return CallTranscript(call.call_id, call.callee, call.billsec, turns)


def _turns_announced(call: Call) -> int | None:
    data = CallEvent.objects.filter(call=call, type=contract.CallEnded.TYPE).values_list("data", flat=True).first()
    turns = (data or {}).get("turns")
    return turns if isinstance(turns, int) and not isinstance(turns, bool) else None
