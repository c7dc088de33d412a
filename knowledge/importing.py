"""Import an owner's knowledge from files: plain text, Markdown, CSV (question,answer).

Theory of operation: a file is first *parsed* completely into a list of texts
(:func:`parse_file`), so a bad file (unknown extension, binary content, CSV
without ``question``/``answer`` columns, over a size limit) is refused before anything is
written. The limits (:data:`MAX_FILE_BYTES`, :data:`MAX_LINE_CHARS`, :data:`MAX_TEXTS`) bound the
work one upload can cost the worker, and every parser's expressions run in linear time.
Then :func:`import_file` adds the texts as **approved** items (``source=import``) in one
transaction, recording progress in an :class:`~knowledge.models.ImportJob` row (kept on failure, with the error) and
reporting each step to an optional callback (the command draws a progress bar).
The console's upload creates the job first and a Celery task runs it
(:func:`run_import_job`), recording a bad file as the job's error.
Importing the same file twice stores nothing new: ``do_add_item`` merges
duplicates.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from django.db import DEFAULT_DB_ALIAS, OperationalError, connections, transaction
from django.utils import timezone

from knowledge.actions import Text, do_add_items
from knowledge.models import Category, ImportJob, Source, Status

if TYPE_CHECKING:
    from aipbx.directory import Directory

__all__ = [
    "SUPPORTED_SUFFIXES",
    "ImportFailed",
    "check_owner",
    "import_file",
    "parse_file",
    "run_import_job",
    "upload_dir",
    "discard_upload",
]

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES: Final = (".txt", ".text", ".md", ".markdown", ".csv")
MAX_FILE_BYTES: Final = 5 * 1024 * 1024
#: The longest line (a paragraph written on one line is fine; a megabyte of one line is not).
MAX_LINE_CHARS: Final = 20_000
#: The most texts one file may hold (each is embedded and indexed).
MAX_TEXTS: Final = 5_000

Progress = Callable[[int, int], None]


class ImportFailed(Exception):
    """The file cannot be imported; the message says why (nothing was written)."""


def current_directory() -> Directory:
    """The extension directory as it is now (``settings.AIPBX_DIRECTORY_SOURCE``: the console's table,
    seeded from ``asterisk/extensions.yaml``)."""
    from django.conf import settings
    from django.utils.module_loading import import_string

    return import_string(settings.AIPBX_DIRECTORY_SOURCE)()


def check_owner(owner: str) -> None:
    """Refuse an owner that is not an extension of the directory."""
    from aipbx.directory import DirectoryError

    try:
        directory = current_directory()
    except DirectoryError as exc:
        raise ImportFailed(f"extension directory unreadable: {exc}") from exc
    if not owner or directory.get(owner) is None:
        known = ", ".join(ext.ext for ext in directory)
        raise ImportFailed(f"unknown owner {owner!r}; known extensions: {known}")


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise ImportFailed(f"{path}: no such file")
    raw = path.read_bytes()
    if len(raw) > MAX_FILE_BYTES:
        raise ImportFailed(f"{path}: {len(raw)} bytes is over the {MAX_FILE_BYTES}-byte limit")
    if b"\x00" in raw:
        raise ImportFailed(f"{path}: binary file, expected UTF-8 text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFailed(f"{path}: not UTF-8 text (byte {exc.start})") from exc


# The title is trimmed in Python (:func:`_heading_title`): an expression ending in
# "(.*?)\s*#*\s*$" tried every split of a line's blanks, 2 s for "# a" + 1,000 blanks + "x".
_HEADING: Final = re.compile(r"\s{0,3}#{1,6}\s+(.*)")


def _heading_title(rest: str) -> str:
    """A heading's text without its optional closing ``#`` sequence (CommonMark: after a blank)."""
    title = rest.strip()
    unclosed = title.rstrip("#")
    if unclosed != title and (not unclosed or unclosed[-1].isspace()):
        title = unclosed.rstrip()
    return title


def parse_markdown(text: str) -> list[Text]:
    """One text per paragraph, with the heading it sits under as its (searchable, unspoken) context."""
    items: list[Text] = []
    heading = ""
    paragraph: list[str] = []

    def flush() -> None:
        body = " ".join(line.strip() for line in paragraph).strip()
        paragraph.clear()
        if body:
            items.append(Text(body, heading=heading))

    for line in text.splitlines():
        match = _HEADING.match(line)
        if match:
            flush()
            heading = _heading_title(match.group(1))
        elif not line.strip():
            flush()
        else:
            paragraph.append(re.sub(r"^\s*(?:[-*+]|\d+[.)])\s+", "", line))
    flush()
    return items


def parse_plain(text: str) -> list[Text]:
    """One text per blank-line-separated paragraph."""
    return [Text(" ".join(block.split())) for block in re.split(r"\n\s*\n", text) if block.strip()]


def parse_csv(text: str, name: str) -> list[Text]:
    """An answer with its question per row of a CSV with ``question`` and ``answer`` columns: the
    caller's question is matched against both, and only the answer is ever spoken."""
    reader = csv.DictReader(io.StringIO(text))
    columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
    if "question" not in columns or "answer" not in columns:
        raise ImportFailed(f"{name}: CSV needs 'question' and 'answer' columns, found {list(columns) or 'none'}")
    items = []
    try:
        for row in reader:
            question = (row.get(columns["question"]) or "").strip()
            answer = (row.get(columns["answer"]) or "").strip()
            if question and answer:
                items.append(Text(answer, question=question))
    except csv.Error as exc:
        raise ImportFailed(f"{name}: malformed CSV at line {reader.line_num}: {exc}") from exc
    return items


def parse_file(path: Path) -> list[Text]:
    """The texts to import from ``path`` (checked completely before anything is written)."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ImportFailed(
            f"{path}: unsupported file type {suffix or '(none)'!r}; use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    text = _read_text(path)
    _check_lines(text, path)
    if suffix == ".csv":
        items = parse_csv(text, str(path))
    elif suffix in (".md", ".markdown"):
        items = parse_markdown(text)
    else:
        items = parse_plain(text)
    if not items:
        raise ImportFailed(f"{path}: no text to import")
    if len(items) > MAX_TEXTS:
        raise ImportFailed(
            f"{path}: {len(items)} texts is over the {MAX_TEXTS}-text limit per file; "
            f"split the file (nothing was imported)"
        )
    return items


def _check_lines(text: str, path: Path) -> None:
    """Refuse a file with a line over :data:`MAX_LINE_CHARS`, naming the line (nothing is imported)."""
    for number, line in enumerate(text.splitlines(), 1):
        if len(line) > MAX_LINE_CHARS:
            raise ImportFailed(
                f"{path}: line {number} has {len(line)} characters, over the {MAX_LINE_CHARS}-"
                f"character limit; break it into paragraphs (nothing was imported)"
            )


def import_file(owner: str, path: Path, progress: Progress | None = None, batch: int = 25) -> ImportJob:
    """Import ``path`` for ``owner`` as approved items; returns the finished job.

    Raises:
        ImportFailed: Bad owner or file (nothing written), or the items were saved
            but indexing them failed after the commit (the message says to reindex).
        RetrievalError: The embedder failed; the items were rolled back, the job is ``failed``.
    """
    check_owner(owner)
    texts = parse_file(path)
    job = ImportJob.objects.create(owner=owner, filename=str(path), total=len(texts))
    return _import_texts(job, texts, str(path), progress, batch)


def run_import_job(job_id: int, progress: Progress | None = None, batch: int = 25) -> ImportJob:
    """Run the import an :class:`ImportJob` row describes (``filename`` = the stored file); never raises
    for a bad file or a failed import: the job ends ``failed`` with the reason in ``error``.

    Idempotent: a job that already ended is returned as it is; a job left ``running`` by a
    worker that died wrote no items (one transaction) and simply runs again, and
    ``do_add_items`` merges any text that is already stored.

    Raises:
        ImportJob.DoesNotExist: No such job.
    """
    job = ImportJob.objects.get(pk=job_id)
    if job.status != ImportJob.JobStatus.RUNNING:
        return job
    path = Path(job.filename)
    try:
        check_owner(job.owner)
        texts = parse_file(path)
    except ImportFailed as exc:
        # The stored path is a server detail; the person who uploaded knows the file by its name.
        error = str(exc).replace(str(path), path.name)
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.JobStatus.FAILED, error=error[:2000], done=0, finished=timezone.now()
        )
        job.refresh_from_db()
        return job
    ImportJob.objects.filter(pk=job.pk).update(total=len(texts), done=0, error="")
    job.total = len(texts)
    try:
        return _import_texts(job, texts, path.name, progress, batch)
    except Exception:  # recorded on the job by _import_texts
        logger.warning("knowledge import job %s failed", job.pk, exc_info=True)
        job.refresh_from_db()
        return job


def _import_texts(job: ImportJob, texts: list[Text], label: str, progress: Progress | None, batch: int) -> ImportJob:
    """Add ``texts`` as the job's approved items in one transaction, reporting progress on the job."""
    owner = job.owner
    reporter = _ProgressWriter(job.pk)
    committed: list[bool] = []
    try:
        with transaction.atomic():
            # Registered first, so it runs before the index updates that do_add_items schedules.
            transaction.on_commit(lambda: committed.append(True))
            for start in range(0, len(texts), batch):
                do_add_items(
                    owner,
                    texts[start : start + batch],
                    category=Category.INFO,
                    source=Source.IMPORT,
                    status=Status.APPROVED,
                    confidence=1.0,
                )
                done = min(start + batch, len(texts))
                if progress is not None:
                    progress(done, len(texts))
                reporter.report(done)
    except Exception as exc:
        if committed:
            message = f"{label}: items saved but indexing failed ({exc}); run manage.py reindex_knowledge"
            ImportJob.objects.filter(pk=job.pk).update(
                status=ImportJob.JobStatus.DONE, done=len(texts), error=message, finished=timezone.now()
            )
            raise ImportFailed(message) from exc
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.JobStatus.FAILED, error=str(exc)[:2000], finished=timezone.now(), done=0
        )
        raise
    finally:
        reporter.close()
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.JobStatus.DONE, done=len(texts), finished=timezone.now()
    )
    job.refresh_from_db()
    return job


def upload_dir() -> Path:
    """Where the console keeps uploaded files until their import job ran.

    ``settings.AIPBX_KNOWLEDGE_UPLOAD_DIR`` when set, else ``var/uploads/knowledge``; the web
    process and the Celery worker must both reach it (one host, or a shared volume).
    """
    from django.conf import settings

    configured = getattr(settings, "AIPBX_KNOWLEDGE_UPLOAD_DIR", None)
    return Path(configured) if configured else Path(settings.BASE_DIR) / "var" / "uploads" / "knowledge"


def discard_upload(path: Path) -> None:
    """Delete an uploaded file (and its folder once empty); files outside :func:`upload_dir` are kept."""
    root = upload_dir().resolve()
    target = path.resolve()
    if root not in target.parents:
        return
    target.unlink(missing_ok=True)
    folder = target.parent
    # A redelivered task may find the folder gone already.
    if folder != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


class _ProgressWriter:
    """Writes ``ImportJob.done`` on a second connection, outside the import's transaction.

    The items are written in one transaction (all or nothing), which other
    sessions cannot see until it commits; the progress counter must be visible
    while it runs, so it goes through its own autocommit connection.

    It must never hold the import up: a session that took the jobs table and waits for a table the
    import's transaction holds (a TRUNCATE of both, a migration) makes a progress write wait for it,
    while the import waits for the progress write: a deadlock PostgreSQL cannot see (it spans two
    connections of one process). So a progress write waits :data:`LOCK_WAIT` at most and is skipped
    (the next one, or the job's end, says how far it got).
    """

    #: How long a progress write may wait for its row.
    LOCK_WAIT = "500ms"

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self._connection = connections.create_connection(DEFAULT_DB_ALIAS)
        with self._connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = '{self.LOCK_WAIT}'")

    def report(self, done: int) -> None:
        try:
            with self._connection.cursor() as cursor:
                cursor.execute(f"UPDATE {ImportJob._meta.db_table} SET done = %s WHERE id = %s", [done, self.job_id])
        except OperationalError as exc:  # lock_timeout: skipped, the import goes on
            logger.info("import job %s: progress %s not written (%s)", self.job_id, done, exc)

    def close(self) -> None:
        self._connection.close()
