"""The file side of privacy: a call's recordings directory and the CDR day files.

Recordings live in ``<AIPBX_RECORDINGS_DIR>/<call_id>/`` (wav, transcript, metadata; ``.enc`` when
encrypted at rest): a directory is removed whole, whatever its files. CDR lines live in
``<AIPBX_CDR_DIR>/cdr-YYYY-MM-DD.jsonl``; removing lines rewrites a day file atomically (a
temporary file in the same directory, fsync, ``os.replace``), so a reader sees the old file or the
new one, never half of one. The ARI app appends to the current day's file: a rewrite that finds
the file grew while it worked starts again instead of replacing it, so no appended line is lost.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any, Final

_CALL_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_CDR_FILE: Final = re.compile(r"^cdr-(\d{4}-\d{2}-\d{2})\.jsonl$")
_REWRITE_ATTEMPTS: Final = 5


def recording_dir(root: Path, call_id: str) -> Path | None:
    """``root/call_id`` when ``call_id`` is a safe directory name (never a path out of ``root``)."""
    if not _CALL_ID.match(call_id) or ".." in call_id:
        return None
    return root / call_id


def recording_files(folder: Path) -> list[Path]:
    """Every file under ``folder`` (sorted); empty when it does not exist."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file())


def remove_recording(folder: Path, *, dry_run: bool = False) -> int:
    """Delete ``folder`` and everything in it; returns the number of files it held."""
    count = len(recording_files(folder))
    if folder.is_dir() and not dry_run:
        shutil.rmtree(folder)
    return count


def newest_mtime(folder: Path) -> float:
    """Modification time of the newest file in ``folder`` (the folder's own when it is empty)."""
    return max((p.stat().st_mtime for p in recording_files(folder)), default=folder.stat().st_mtime)


def cdr_files(cdr_dir: Path) -> Iterator[tuple[date, Path]]:
    """``(day, path)`` of each CDR day file, oldest first."""
    if not cdr_dir.is_dir():
        return
    for path in sorted(cdr_dir.iterdir()):
        match = _CDR_FILE.match(path.name)
        if match and path.is_file():
            yield date.fromisoformat(match.group(1)), path


def cdr_lines(path: Path) -> list[tuple[str, dict[str, Any] | None]]:
    """``(raw line, parsed record or None when it is not a JSON object)`` for each line."""
    result: list[tuple[str, dict[str, Any] | None]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        result.append((line, record if isinstance(record, dict) else None))
    return result


def drop_cdr_lines(path: Path, drop: Callable[[dict[str, Any]], bool], *, dry_run: bool = False) -> int:
    """Remove the lines of ``path`` whose record ``drop`` selects; returns how many.

    Unparseable lines are kept (they are nobody's to judge). A file left empty is deleted.
    """
    for _ in range(_REWRITE_ATTEMPTS):
        before = path.stat().st_size if path.exists() else 0
        lines = cdr_lines(path) if path.exists() else []
        keep = [raw for raw, record in lines if record is None or not drop(record)]
        removed = len(lines) - len(keep)
        if removed == 0 or dry_run:
            return removed
        if _replace_if_unchanged(path, before, "".join(f"{line}\n" for line in keep)):
            return removed
    raise RuntimeError(f"{path} kept growing while its lines were being removed; try again")


def _replace_if_unchanged(path: Path, size: int, text: str) -> bool:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if path.stat().st_size != size:  # the ARI app appended meanwhile: read again
            return False
        if text:
            os.replace(tmp, path)
        else:
            path.unlink()
        return True
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
