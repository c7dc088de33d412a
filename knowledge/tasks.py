"""Celery tasks of the knowledge base: per-call knowledge extraction.

``extract_knowledge_task(call_id)`` is idempotent per call id: the
:class:`~knowledge.models.ExtractionRun` row (``call_id`` unique) records the
outcome, and a run that already finished (done, skipped or failed) is not
repeated. A run killed mid-way left its row ``running`` and no items (the
item writes and the final status are one transaction), so the redelivered task
(``acks_late``) simply runs again; ``do_add_item``'s duplicate merge is a
second line of defence.

Input validation failures (missing, empty, huge or binary transcript, unknown
owner) and a malformed judge answer end the run as ``failed`` with a reason and
write nothing else. Only transient errors (database connection, Redis, vector
store/embedder timeouts, a language model that timed out) are retried, with
exponential backoff; a run whose retries are exhausted stays ``running``.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Final

import redis.exceptions
from celery import shared_task
from django.conf import settings
from django.db import OperationalError, transaction
from django.utils import timezone

from knowledge.actions import do_add_item, do_record_usage
from knowledge.extraction import ExtractionError, Judge, JudgeUnavailable, RuleJudge, Turn, category_of
from knowledge.models import ExtractionRun, Source, Status
from knowledge.retrieval import BackendTimeout, BackendUnavailable

__all__ = [
    "MAX_TRANSCRIPT_BYTES",
    "default_judge",
    "extract_knowledge_task",
    "load_turns",
    "record_knowledge_usage_task",
    "run_extraction",
]

logger = logging.getLogger(__name__)

#: A call's metadata.json larger than this is refused (a transcript of hours is a bug).
MAX_TRANSCRIPT_BYTES: Final = 200 * 1024
_CALL_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_FINAL: Final = frozenset({ExtractionRun.RunStatus.DONE, ExtractionRun.RunStatus.SKIPPED,
                           ExtractionRun.RunStatus.FAILED})


def default_judge() -> Judge:
    """The offline :class:`RuleJudge` with the configured minimum confidence."""
    return RuleJudge(settings.AIPBX_KNOWLEDGE_MIN_CONFIDENCE)


def load_turns(call_id: str) -> tuple[str, list[Turn]]:
    """Read ``<recordings>/<call_id>/metadata.json``; return ``(owner extension, turns)``.

    Raises:
        ExtractionError: Bad call id; file missing, huge, binary or not the expected JSON;
            no spoken text; callee not in the extension directory.
    """
    if not _CALL_ID.match(call_id) or ".." in call_id:
        raise ExtractionError(f"invalid call id {call_id!r}")
    path = Path(settings.AIPBX_RECORDINGS_DIR) / call_id / "metadata.json"
    if not path.is_file():
        raise ExtractionError(f"transcript missing: {path} does not exist")
    size = path.stat().st_size
    if size > MAX_TRANSCRIPT_BYTES:
        raise ExtractionError(f"transcript too large: {size} bytes (limit {MAX_TRANSCRIPT_BYTES})")
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise ExtractionError("transcript is binary, not JSON text")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ExtractionError("transcript is binary (not UTF-8 text)") from exc
    except json.JSONDecodeError as exc:
        raise ExtractionError(f"transcript is not valid JSON: {exc.msg} at char {exc.pos}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("call"), dict):
        raise ExtractionError("transcript has no 'call' object")
    turns = _turns(data.get("turns"), data["call"].get("billsec"))
    if not any(turn.text.strip() for turn in turns):
        raise ExtractionError("transcript is empty: no spoken text")
    owner = str(data["call"].get("callee") or "").strip()
    _check_owner(owner)
    return owner, turns


def _turns(raw: object, billsec: object) -> list[Turn]:
    if not isinstance(raw, list):
        raise ExtractionError("transcript has no 'turns' list")
    parsed: list[tuple[str, str, float]] = []
    for index, turn in enumerate(raw):
        if not isinstance(turn, dict) or not isinstance(turn.get("text", ""), str):
            raise ExtractionError(f"turns[{index}] is not a {{speaker, text, t}} object")
        start = turn.get("t", 0.0)
        start = float(start) if isinstance(start, int | float) and not isinstance(start, bool) else 0.0
        parsed.append((str(turn.get("speaker", "")), turn.get("text", ""), start))
    call_end = float(billsec) if isinstance(billsec, int | float) and not isinstance(billsec, bool) else None
    result: list[Turn] = []
    for index, (speaker, text, start) in enumerate(parsed):
        end = parsed[index + 1][2] if index + 1 < len(parsed) else (call_end or start)
        result.append(Turn(speaker, text, round(start, 3), round(max(start, end), 3)))
    return result


def _check_owner(owner: str) -> None:
    from ariapp.directory import DirectoryError, load_directory

    if not owner:
        raise ExtractionError("transcript names no callee (owner)")
    try:
        directory = load_directory(Path(settings.AIPBX_EXTENSIONS_FILE))
    except DirectoryError as exc:
        raise ExtractionError(f"extension directory unreadable: {exc}") from exc
    if directory.get(owner) is None:
        raise ExtractionError(f"unknown owner {owner!r}: not an extension in {settings.AIPBX_EXTENSIONS_FILE}")


def run_extraction(call_id: str, judge: Judge | None = None) -> dict[str, Any]:
    """Extract pending-review knowledge from one call; idempotent per ``call_id``.

    Returns:
        ``{"call_id", "status", "items_created", "reason"}``.
    """
    run, _ = ExtractionRun.objects.get_or_create(call_id=call_id)
    if run.status in _FINAL:
        return _summary(run)
    try:
        owner, turns = load_turns(call_id)
        run.owner = owner
        verdict = (judge or default_judge()).judge(turns)
    except ExtractionError as exc:
        return _finish(run, ExtractionRun.RunStatus.FAILED, reason=str(exc), error=type(exc).__name__)
    minimum = settings.AIPBX_KNOWLEDGE_MIN_CONFIDENCE
    entries = [e for e in verdict["extracted_info"] if float(e.get("confidence", verdict["confidence"])) >= minimum]
    if not verdict["is_useful"] or not entries:
        return _finish(run, ExtractionRun.RunStatus.SKIPPED, reason=verdict.get("reason") or "nothing useful")
    fallback_span = {"start_s": turns[0].start_s, "end_s": turns[-1].end_s}
    with transaction.atomic():
        # Two deliveries of one call at once: the second waits here, then sees the run finished.
        locked = ExtractionRun.objects.select_for_update().get(pk=run.pk)
        if locked.status in _FINAL:
            return _summary(locked)
        created = 0
        for entry in entries:
            results = do_add_item(
                owner, entry["text"], category=category_of(entry.get("category", "기타")),
                keywords=entry.get("keywords", []), source=Source.CALL, source_call_id=call_id,
                source_speaker=entry.get("speaker") or _speaker_of(entry["text"], turns),
                source_span=entry.get("span") or fallback_span,
                confidence=float(entry.get("confidence", verdict["confidence"])), status=Status.PENDING,
            )
            created += sum(1 for r in results if r.created)
        return _finish(run, ExtractionRun.RunStatus.DONE, reason=verdict.get("reason", ""), created=created)


def _speaker_of(text: str, turns: list[Turn]) -> str:
    """The speaker whose turn shares the most words with ``text`` (LLM answers do not say)."""
    words = set(text.lower().split())
    best = max(turns, key=lambda turn: len(words & set(turn.text.lower().split())), default=None)
    return best.speaker if best is not None else ""


def _finish(run: ExtractionRun, status: str, *, reason: str = "", error: str = "", created: int = 0) -> dict[str, Any]:
    run.status, run.reason, run.error, run.items_created = status, reason[:2000], error, created
    run.finished = timezone.now()
    run.save()
    if status == ExtractionRun.RunStatus.FAILED:
        logger.warning("knowledge extraction of %s failed: %s", run.call_id, reason)
    return _summary(run)


def _summary(run: ExtractionRun) -> dict[str, Any]:
    return {"call_id": run.call_id, "status": run.status, "items_created": run.items_created, "reason": run.reason}


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError, redis.exceptions.ConnectionError, BackendUnavailable, BackendTimeout,
                   JudgeUnavailable),
    retry_backoff=True,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
)
def extract_knowledge_task(call_id: str) -> dict[str, Any]:
    """Extract knowledge from the finished call ``call_id`` (see :func:`run_extraction`)."""
    return run_extraction(call_id)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def record_knowledge_usage_task(item_ids: list[int]) -> int:
    """Count a use of each item the AI quoted (sent by name by the call pipeline, which has no ORM).

    Not idempotent by nature (a counter): a redelivery after a crash may count a use twice.
    """
    return do_record_usage(item_ids)
