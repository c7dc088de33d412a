"""Retention: what is older than ``AIPBX_RETENTION_DAYS`` goes (0 keeps everything forever).

For each call that started before the cut-off (``now - days``):

* its recordings directory is removed whole (wav, transcript, metadata, ``.enc`` files alike),
  and so is any recordings directory the console never heard of whose newest file is older;
* its transcript goes: the :class:`~webconsole.calls.models.Turn` and
  :class:`~webconsole.calls.models.CallEvent` rows, and the caller's words in its
  :class:`~webconsole.hitl.models.HitlRequest` rows (question, recent turns, answers);
* knowledge derived from it loses its provenance (``source_call_id``, ``source_span``,
  ``source_speaker`` cleared). The knowledge itself stays: an approved item is the owner's
  fact now (the owner reviewed it, the AI answers with it), and its text was PII-masked before
  it was stored; only the link back to a caller's call, which the retention period covers, is cut.

The call row itself stays as the call history (number, times, outcome: what the CDR carries),
and CDR lines older than the cut-off are removed from the day files. Day files are rewritten
only up to the cut-off's day + 1 (a call is written on the day it ends): the ARI app appends to
today's file only, so retention never races it.

Every step selects what is still there, so a second run finds nothing (idempotent); ``dry_run``
counts without changing anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from knowledge.models import KnowledgeItem
from webconsole.calls.models import Call, CallEvent, Turn
from webconsole.hitl.models import HitlRequest
from webconsole.privacy import files


@dataclass
class RetentionReport:
    """Counts of one run (for a dry run: what would go)."""

    cutoff: str = ""
    dry_run: bool = False
    calls: int = 0
    recording_dirs: int = 0
    recording_files: int = 0
    turns: int = 0
    events: int = 0
    hitl_requests: int = 0
    knowledge_provenance: int = 0
    webhook_events: int = 0
    cdr_lines: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def cutoff_for(now: datetime, days: int) -> datetime | None:
    """The instant before which data goes, or None when ``days`` is 0 (keep forever)."""
    if days < 0:
        raise ValueError(f"AIPBX_RETENTION_DAYS must be 0 or more, not {days}")
    return None if days == 0 else now - timedelta(days=days)


def apply_retention(
    now: datetime | None = None,
    *,
    days: int | None = None,
    dry_run: bool = False,
    recordings_dir: Path | None = None,
    cdr_dir: Path | None = None,
) -> RetentionReport:
    """Delete what is older than ``days`` (default ``AIPBX_RETENTION_DAYS``) before ``now``.

    Args:
        now: The present (tests pass a fixed one); default the clock.
        days: Retention in days; 0 keeps everything.
        dry_run: Count only.
        recordings_dir: Default ``AIPBX_RECORDINGS_DIR``.
        cdr_dir: Default ``AIPBX_CDR_DIR``.
    """
    now = now or timezone.now()
    days = settings.AIPBX_RETENTION_DAYS if days is None else days
    cutoff = cutoff_for(now, days)
    report = RetentionReport(dry_run=dry_run)
    if cutoff is None:
        return report
    report.cutoff = cutoff.isoformat()
    recordings = Path(recordings_dir or settings.AIPBX_RECORDINGS_DIR)
    old = Call.objects.filter(Q(started__lt=cutoff) | Q(started__isnull=True, updated__lt=cutoff))
    call_ids = list(old.values_list("call_id", flat=True))
    report.calls = len(call_ids)
    _database(report, old, call_ids, dry_run)
    _recordings(report, recordings, call_ids, cutoff, dry_run)
    _cdr(report, Path(cdr_dir or settings.AIPBX_CDR_DIR), cutoff, dry_run)
    return report


def _database(report: RetentionReport, old: Any, call_ids: list[str], dry_run: bool) -> None:
    turns = Turn.objects.filter(call__in=old)
    events = CallEvent.objects.filter(call__in=old)
    hitl = HitlRequest.objects.filter(call__in=old).exclude(
        question="", recent_turns=[], answer_raw="", answer_text="", detail=""
    )
    derived = KnowledgeItem.objects.filter(source_call_id__in=call_ids)
    from webconsole.webhooks.models import OutboxEvent

    outbox = OutboxEvent.objects.filter(payload__call_id__in=call_ids)  # full caller numbers; deliveries cascade
    with transaction.atomic():
        report.turns, report.events = turns.count(), events.count()
        report.hitl_requests, report.knowledge_provenance = hitl.count(), derived.count()
        report.webhook_events = outbox.count()
        if dry_run:
            return
        turns.delete()
        events.delete()
        outbox.delete()
        hitl.update(question="", recent_turns=[], answer_raw="", answer_text="", detail="")
        # Provenance only: the text and the index entry are unchanged, so the vector store needs no update.
        derived.update(source_call_id="", source_span=None, source_speaker="")


def _recordings(report: RetentionReport, root: Path, call_ids: list[str], cutoff: datetime, dry_run: bool) -> None:
    if not root.is_dir():
        return
    old = set(call_ids)
    known = set(Call.objects.filter(call_id__in=[p.name for p in root.iterdir()]).values_list("call_id", flat=True))
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name in old:
            expired = True
        elif folder.name in known:
            expired = False
        else:  # a call the console never ingested: its files' age decides
            expired = datetime.fromtimestamp(files.newest_mtime(folder), UTC) < cutoff
        if expired:
            report.recording_files += files.remove_recording(folder, dry_run=dry_run)
            report.recording_dirs += 1


def _cdr(report: RetentionReport, cdr_dir: Path, cutoff: datetime, dry_run: bool) -> None:
    last_day = (cutoff + timedelta(days=1)).date()

    def expired(record: dict[str, Any]) -> bool:
        when = _instant(record.get("start")) or _instant(record.get("end"))
        return when is not None and when < cutoff

    for day, path in files.cdr_files(cdr_dir):
        if day <= last_day:
            report.cdr_lines += files.drop_cdr_lines(path, expired, dry_run=dry_run)


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
