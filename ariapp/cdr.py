"""Call detail records: one JSON line per call in ``data/cdr/cdr-YYYY-MM-DD.jsonl``, exactly once.

Exactly once whatever way the call ends, including an ARI app crash: every call in progress has a
journal file (``state/calls/<call_id>.json``, written atomically on each change). The CDR line is
appended and fsync'd, then the journal is removed. After a restart, :meth:`CdrWriter.pending` lists
journals of calls that never got their line; the app finishes them. Ids already written (this and
the previous day's files) are remembered, so a crash between the append and the journal removal
does not write a second line.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

log = logging.getLogger(__name__)

# Termination reasons for calls Asterisk took away (the others are inferred in ariapp.calls.tracker):
ASTERISK_RESTART = "asterisk_restart"  # Asterisk shut down, restarted or crashed under the call
EVENTS_LOST = "events_lost"  # the call ended while the app received none of its events (websocket lost)


@dataclass
class CallRecord:
    """What we know about one call (normal or AI); the CDR is its final form."""

    call_id: str
    caller: str
    callee: str
    start: str  # ISO 8601 UTC
    answer: str | None = None
    end: str | None = None
    codec: str | None = None
    ai_handled: bool = False
    answered_by: str | None = None  # the extension that answered, or "ai"
    dial_status: str | None = None
    hangup_cause: int | None = None
    hangup_by: str | None = None  # caller | callee | ai | system
    termination_reason: str | None = None
    recording_dir: str | None = None
    recording_error: str | None = None  # why the recording stopped before the call (disk full...)
    legs: list[str] = field(default_factory=list)

    def duration(self) -> float:
        return _seconds(self.start, self.end)

    def billsec(self) -> float:
        return _seconds(self.answer, self.end) if self.answer else 0.0

    def to_cdr(self) -> dict:
        data = asdict(self)
        data.pop("legs")
        data["duration"] = round(self.duration(), 3)
        data["billsec"] = round(self.billsec(), 3)
        return data


def _seconds(start: str | None, end: str | None) -> float:
    if not start or not end:
        return 0.0
    return max(0.0, (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds())


def utcnow_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="milliseconds") if value else None


def _drop_torn_tail(path: Path) -> None:
    """Cut a partial last line left by a crash mid-append; its call is still journaled and is
    written again whole, so readers of the JSON Lines file never meet a broken line."""
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    keep = data.rfind(b"\n") + 1
    log.warning("dropping a torn last line (%d bytes) from %s", len(data) - keep, path)
    with open(path, "r+b") as handle:
        handle.truncate(keep)
        os.fsync(handle.fileno())


def _atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` atomically. No fsync: the journal runs on the media event loop and must stay
    cheap; it guards against the process dying (the page cache survives that), while the CDR line
    itself is fsync'd."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


class CdrWriter:
    def __init__(self, cdr_dir: Path, state_dir: Path) -> None:
        self.cdr_dir = cdr_dir
        self.journal_dir = state_dir / "calls"
        self.cdr_dir.mkdir(parents=True, exist_ok=True)
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        self._written: set[str] = set()
        today = datetime.now(UTC).date()
        for day in (today - timedelta(days=1), today):
            _drop_torn_tail(self._file_for(day))
            self._written |= self._ids_in(self._file_for(day))

    def _file_for(self, day) -> Path:
        return self.cdr_dir / f"cdr-{day.isoformat()}.jsonl"

    @staticmethod
    def _ids_in(path: Path) -> set[str]:
        ids: set[str] = set()
        if not path.exists():
            return ids
        # errors="replace": a line torn inside a multi-byte character must not stop start-up.
        for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
            try:
                ids.add(json.loads(line)["call_id"])
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line from a crash: the journal will rewrite it
        return ids

    def journal(self, record: CallRecord) -> None:
        """Persist the in-progress state of a call (atomic replace)."""
        _atomic_write(self.journal_dir / f"{record.call_id}.json", json.dumps(asdict(record)))

    def pending(self) -> list[CallRecord]:
        """Calls journaled by a previous run that have no CDR line yet."""
        records = []
        for path in sorted(self.journal_dir.glob("*.json")):
            try:
                record = CallRecord(**json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError) as exc:
                log.error("unreadable call journal %s: %s", path, exc)
                continue
            if record.call_id in self._written:
                path.unlink(missing_ok=True)
                continue
            records.append(record)
        return records

    def written(self, call_id: str) -> bool:
        return call_id in self._written

    def write(self, record: CallRecord) -> bool:
        """Append the CDR line once; returns False if this call already has one."""
        if record.call_id in self._written:
            (self.journal_dir / f"{record.call_id}.json").unlink(missing_ok=True)
            return False
        end = datetime.fromisoformat(record.end) if record.end else datetime.now(UTC)
        line = json.dumps(record.to_cdr(), ensure_ascii=False) + "\n"
        with open(self._file_for(end.astimezone(UTC).date()), "ab") as handle:
            handle.write(line.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        self._written.add(record.call_id)
        (self.journal_dir / f"{record.call_id}.json").unlink(missing_ok=True)
        return True
