"""Celery tasks of the knowledge base: per-call knowledge extraction.

``extract_knowledge_task(call_id)`` is idempotent per call id: the
:class:`~knowledge.models.ExtractionRun` row (``call_id`` unique) records the
outcome, and a run that already finished (done, skipped or failed) is not
repeated. A run killed mid-way left its row ``running`` and no items (the
item writes and the final status are one transaction), so the redelivered task
(``acks_late``) simply runs again; ``do_add_item``'s duplicate merge is a
second line of defence.

The transcript is the one the console stored in PostgreSQL
(:mod:`knowledge.transcripts`), not the ARI app's ``metadata.json``. The ARI app queues this
task at hang-up, a moment before the console has applied the call's end: until it has, the task
waits (:class:`~knowledge.transcripts.CallNotFinished`, retried after
:func:`~knowledge.transcripts.wait_delay`), and
after ``CALL_WAIT_ATTEMPTS`` waits, about ten minutes, the run is recorded ``failed`` with the
reason (is the event consumer running?); ``retry_extractions`` runs it again.

Input validation failures (empty, huge or incomplete transcript, unknown
owner) and a malformed judge answer end the run as ``failed`` with a reason and
write nothing else. Only transient errors (database connection, Redis, vector
store/embedder timeouts, a language model that timed out or answered 429/5xx)
are retried, with exponential backoff (:func:`retry_delay`); when
``AIPBX_KNOWLEDGE_MAX_RETRIES`` retries are spent the run is recorded ``failed``
with the last error. A failed run is re-run on request
(``manage.py retry_extractions``, or the admin action), see
:func:`knowledge.actions.do_retry_extractions`.

The judge is the configured generative model when there is one
(``AIPBX_LLM=gemini|openai``, see :func:`default_judge`), else the offline
:class:`~knowledge.extraction.RuleJudge`.
"""

from __future__ import annotations

import logging
import random
import re
from pathlib import Path
from typing import Any, Final

import redis.exceptions
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import OperationalError, transaction
from django.utils import timezone

from aipbx.privacy import mask_pii
from knowledge.actions import do_add_item, do_record_usage
from knowledge.extraction import (
    ExtractionError,
    Judge,
    JudgeUnavailable,
    LlmJudge,
    RuleJudge,
    Turn,
    category_of,
    masked_turns,
    owners_facts,
)
from knowledge.models import ExtractionRun, LearningPolicy, Source
from knowledge.retrieval import BackendTimeout, BackendUnavailable
from knowledge.signals import knowledge_extracted
from knowledge.transcripts import CALL_WAIT_ATTEMPTS, CallNotFinished, finished_call, wait_delay

__all__ = [
    "MAX_TRANSCRIPT_BYTES",
    "RETRY_BACKOFF_MAX_S",
    "TRANSIENT_ERRORS",
    "default_judge",
    "extract_knowledge_task",
    "load_turns",
    "record_knowledge_usage_task",
    "retry_delay",
    "run_extraction",
]

logger = logging.getLogger(__name__)

#: A call whose turns hold more text than this (UTF-8) is refused (a transcript of hours is a bug).
MAX_TRANSCRIPT_BYTES: Final = 200 * 1024
_CALL_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_FINAL: Final = frozenset(
    {
        ExtractionRun.RunStatus.DONE,
        ExtractionRun.RunStatus.SKIPPED,
        ExtractionRun.RunStatus.FAILED,
        ExtractionRun.RunStatus.EXCLUDED,
    }
)


#: Longest wait between two attempts; must stay below the broker's visibility timeout (settings).
RETRY_BACKOFF_MAX_S: Final = 600.0
#: Errors that a later attempt may not meet again; everything else ends the run as ``failed``.
TRANSIENT_ERRORS: Final = (
    OperationalError,
    redis.exceptions.ConnectionError,
    BackendUnavailable,
    BackendTimeout,
    JudgeUnavailable,
)
#: Budget of the judge's first token: the design prompt plus a long transcript is slow on small local models.
JUDGE_FIRST_TOKEN_S: Final = 30.0


def default_judge() -> Judge:
    """The judge the settings ask for.

    ``AIPBX_KNOWLEDGE_JUDGE=auto`` (default) takes an :class:`LlmJudge` over the
    generative model of ``AIPBX_LLM`` (``gemini`` or ``openai``, the latter also
    covering local OpenAI-compatible servers such as Ollama), and the offline
    :class:`RuleJudge` when ``AIPBX_LLM=local``; ``rule`` and ``llm`` force one.
    The model is built afresh inside each judgement's event loop.

    Raises:
        ExtractionError: The configuration cannot give the judge asked for (unknown value,
            missing API key, SDK not installed): fixing it needs a person, not a retry.
    """
    choice, provider = settings.AIPBX_KNOWLEDGE_JUDGE, settings.AIPBX_LLM
    if choice not in ("auto", "rule", "llm"):
        raise ExtractionError(f"AIPBX_KNOWLEDGE_JUDGE must be auto, rule or llm, not {choice!r}")
    if choice == "rule" or (choice == "auto" and provider == "local"):
        return RuleJudge(settings.AIPBX_KNOWLEDGE_MIN_CONFIDENCE)
    if provider == "local":
        raise ExtractionError("AIPBX_KNOWLEDGE_JUDGE=llm needs a generative model: set AIPBX_LLM to gemini or openai")
    from aipbx.errors import ConfigError
    from aipbx.providers.errors import ProviderError
    from aipbx.providers.factory import build_llm

    env = dict(settings.AIPBX_LLM_ENV)

    def make_llm() -> Any:
        return build_llm(provider, env, first_token_timeout_s=JUDGE_FIRST_TOKEN_S)

    try:
        make_llm()  # fail now, with the variable to set, rather than inside the judgement
    except (ConfigError, ProviderError) as exc:
        raise ExtractionError(f"the configured language model (AIPBX_LLM={provider}) cannot judge: {exc}") from exc
    return LlmJudge(make_llm)


def retry_delay(retries: int, base_s: float, max_s: float = RETRY_BACKOFF_MAX_S) -> float:
    """Seconds before attempt ``retries + 1``: ``base_s * 2**retries`` capped at ``max_s``, with
    equal jitter (half fixed, half random) so the tasks of one outage do not all come back at once."""
    ceiling = min(max_s, base_s * 2.0**retries)
    return ceiling / 2 + random.uniform(0.0, ceiling / 2)


def load_turns(call_id: str) -> tuple[str, list[Turn]]:
    """The finished call's owner extension and turns, as the console stored them (PostgreSQL).

    Raises:
        CallNotFinished: the console has not stored the call's end yet (the task waits for it).
        ExtractionError: Bad call id; transcript incomplete, huge or with no spoken text;
            callee not in the extension directory.
    """
    if not _CALL_ID.match(call_id) or ".." in call_id:
        raise ExtractionError(f"invalid call id {call_id!r}")
    transcript = finished_call(call_id)
    size = sum(len(str(turn.get("text") or "").encode("utf-8")) for turn in transcript.turns)
    if size > MAX_TRANSCRIPT_BYTES:
        raise ExtractionError(f"transcript too large: {size} bytes of text (limit {MAX_TRANSCRIPT_BYTES})")
    turns = _turns(list(transcript.turns), transcript.billsec)
    if not any(turn.text.strip() for turn in turns):
        raise ExtractionError("transcript is empty: no spoken text")
    owner = transcript.owner.strip()
    _check_owner(owner)
    return owner, turns


def _turns(raw: list[Any], billsec: object) -> list[Turn]:
    parsed: list[tuple[str, str, float, float | None]] = []
    for index, turn in enumerate(raw):
        if not isinstance(turn, dict) or not isinstance(turn.get("text", ""), str):
            raise ExtractionError(f"turns[{index}] is not a {{speaker, text, t}} object")
        parsed.append(
            (
                str(turn.get("speaker", "")),
                turn.get("text", ""),
                _seconds(turn.get("t")) or 0.0,
                _seconds(turn.get("end")),
            )
        )
    call_end = _seconds(billsec)
    result: list[Turn] = []
    for index, (speaker, text, start, end) in enumerate(parsed):
        if end is None:  # AI calls' turns: until the next one (or the end of the call)
            end = parsed[index + 1][2] if index + 1 < len(parsed) else (call_end or start)
        result.append(Turn(speaker, text, round(start, 3), round(max(start, end), 3)))
    return result


def _seconds(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _extension(owner: str) -> Any:
    """The owner's extension in the directory.

    Raises:
        ExtractionError: no owner, an unreadable directory, or an owner that is not an extension.
    """
    from aipbx.directory import DirectoryError
    from knowledge.importing import current_directory

    if not owner:
        raise ExtractionError("transcript names no callee (owner)")
    try:
        directory = current_directory()
    except DirectoryError as exc:
        raise ExtractionError(f"extension directory unreadable: {exc}") from exc
    ext = directory.get(owner)
    if ext is None:
        raise ExtractionError(f"unknown owner {owner!r}: not an extension of the directory")
    return ext


def _check_owner(owner: str) -> None:
    _extension(owner)


def run_extraction(call_id: str, judge: Judge | None = None) -> dict[str, Any]:
    """Learn from one call what its callee (the owner) said; idempotent per ``call_id``.

    The owner's :class:`~knowledge.models.LearningPolicy` decides: learning off (or the extension's
    recording mode not ``learn``) skips the call; a fact at or above the publishing threshold is
    published at once (approved, in the index), the rest wait for review. What a caller left on an
    AI call is stored as the run's notes.

    Returns:
        ``{"call_id", "status", "items_created", "reason"}``.
    """
    run, _ = ExtractionRun.objects.get_or_create(call_id=call_id)
    if run.status in _FINAL:
        return _summary(run)
    try:
        owner, turns = load_turns(call_id)
        turns = masked_turns(turns)  # no personal numbers reach the judge (an LLM) or the knowledge base
        run.owner = owner
        policy = LearningPolicy.for_owner(owner)
        if not policy.learning or not _extension(owner).learns:
            return _finish(run, ExtractionRun.RunStatus.SKIPPED, reason=f"learning is off for extension {owner}")
        verdict = (judge or default_judge()).judge(turns)
    except ExtractionError as exc:
        return _finish(run, ExtractionRun.RunStatus.FAILED, reason=str(exc), error=type(exc).__name__)
    run.notes = [mask_pii(note) for note in verdict.get("call_notes", [])]
    minimum = settings.AIPBX_KNOWLEDGE_MIN_CONFIDENCE
    entries = [e for e in owners_facts(verdict, turns) if float(e.get("confidence", verdict["confidence"])) >= minimum]
    if not verdict["is_useful"] or not entries:
        reason = verdict.get("reason") or "nothing useful"
        if verdict["extracted_info"] and not entries:
            reason = "nothing the owner said: " + reason
        return _finish(run, ExtractionRun.RunStatus.SKIPPED, reason=reason)
    fallback_span = {"start_s": turns[0].start_s, "end_s": turns[-1].end_s}
    with transaction.atomic():
        # Two deliveries of one call at once: the second waits here, then sees the run finished.
        locked = ExtractionRun.objects.select_for_update().get(pk=run.pk)
        if locked.status in _FINAL:
            return _summary(locked)
        created = 0
        for entry in entries:
            confidence = float(entry.get("confidence", verdict["confidence"]))
            results = do_add_item(
                owner,
                mask_pii(entry["text"]),
                category=category_of(entry.get("category", "기타")),
                keywords=[mask_pii(k) for k in entry.get("keywords", [])],
                source=Source.CALL,
                source_call_id=call_id,
                source_speaker=entry["speaker"],
                source_span=entry.get("span") or _span_of(entry["text"], turns) or fallback_span,
                confidence=confidence,
                status=policy.status_for(confidence),
            )
            created += sum(1 for r in results if r.created)
        # the console's webhooks write their outbox here: in this transaction, with the facts
        knowledge_extracted.send(sender=ExtractionRun, call_id=call_id, owner=owner, items_created=created)
        return _finish(run, ExtractionRun.RunStatus.DONE, reason=verdict.get("reason", ""), created=created)


def _span_of(text: str, turns: list[Turn]) -> dict[str, float] | None:
    """Where in the call the owner said ``text`` (the callee turn sharing the most words with it)."""
    words = set(text.lower().split())
    owners = [turn for turn in turns if turn.speaker == "callee"]
    best = max(owners, key=lambda turn: len(words & set(turn.text.lower().split())), default=None)
    return {"start_s": best.start_s, "end_s": best.end_s} if best is not None else None


def _finish(run: ExtractionRun, status: str, *, reason: str = "", error: str = "", created: int = 0) -> dict[str, Any]:
    run.status, run.reason, run.error, run.items_created = status, reason[:2000], error, created
    run.finished = timezone.now()
    run.save()  # notes included
    if status == ExtractionRun.RunStatus.FAILED:
        logger.warning("knowledge extraction of %s failed: %s", run.call_id, reason)
    return _summary(run)


def _summary(run: ExtractionRun) -> dict[str, Any]:
    return {"call_id": run.call_id, "status": run.status, "items_created": run.items_created, "reason": run.reason}


def give_up(call_id: str, exc: BaseException, attempts: int) -> dict[str, Any]:
    """Record that ``call_id``'s run failed for good after ``attempts`` transient failures."""
    run, _ = ExtractionRun.objects.get_or_create(call_id=call_id)
    if run.status in _FINAL:
        return _summary(run)
    return _finish(
        run,
        ExtractionRun.RunStatus.FAILED,
        reason=f"gave up after {attempts} attempts: {exc}",
        error=type(exc).__name__,
    )


# max_retries=None: the task counts its retries itself, so that running out records the failure.
# A judge (LLM) call per transcript and a few embeddings: seconds, minutes with a slow provider.
@shared_task(bind=True, acks_late=True, max_retries=None, soft_time_limit=600, time_limit=660)
def extract_knowledge_task(self: Any, call_id: str, waits: int = 0) -> dict[str, Any]:
    """Extract knowledge from the finished call ``call_id`` (see :func:`run_extraction`).

    ``waits``: how many times this delivery already waited for the console to store the call's end
    (counted apart from the transient errors' retries, which have their own budget).
    """
    try:
        return run_extraction(call_id)
    except SoftTimeLimitExceeded as exc:  # recorded as failed: `manage.py retry_extractions` runs it again
        return give_up(call_id, exc, self.request.retries + 1)
    except CallNotFinished as exc:
        if waits >= CALL_WAIT_ATTEMPTS:
            return give_up(call_id, exc, waits + 1)
        delay = wait_delay(waits)
        logger.info("knowledge extraction of %s waits %.0f s: %s", call_id, delay, exc)
        raise self.retry(exc=exc, countdown=delay, kwargs={"waits": waits + 1}) from exc
    except TRANSIENT_ERRORS as exc:
        retries = self.request.retries - waits
        if retries >= settings.AIPBX_KNOWLEDGE_MAX_RETRIES:
            return give_up(call_id, exc, retries + 1)
        delay = retry_delay(retries, settings.AIPBX_KNOWLEDGE_RETRY_BACKOFF_S)
        logger.info("knowledge extraction of %s: %s; retry %d in %.1f s", call_id, exc, retries + 1, delay)
        raise self.retry(exc=exc, countdown=delay) from exc


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
    soft_time_limit=30,
    time_limit=60,
)
def record_knowledge_usage_task(item_ids: list[int]) -> int:
    """Count a use of each item the AI quoted (sent by name by the call pipeline, which has no ORM).

    Not idempotent by nature (a counter): a redelivery after a crash may count a use twice.
    """
    return do_record_usage(item_ids)


# Up to MAX_TEXTS embeddings on the CPU.
@shared_task(acks_late=True, soft_time_limit=1800, time_limit=1900)
def import_knowledge_task(job_id: int) -> dict[str, Any]:
    """Run the console upload's :class:`~knowledge.models.ImportJob` ``job_id``, then delete the uploaded file.

    Idempotent: a job that already ended is not run again, and a job left running by a
    dead worker wrote nothing (see :func:`knowledge.importing.run_import_job`).
    """
    from knowledge.importing import discard_upload, run_import_job
    from knowledge.models import ImportJob

    try:
        job = run_import_job(job_id)
    except ImportJob.DoesNotExist:
        return {"job_id": job_id, "status": "missing", "done": 0, "total": 0, "error": "no such import job"}
    if job.status != ImportJob.JobStatus.RUNNING:
        discard_upload(Path(job.filename))
    return {"job_id": job.pk, "status": job.status, "done": job.done, "total": job.total, "error": job.error}
