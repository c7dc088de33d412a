"""Data-subject export and delete: everything about one caller, found by phone number.

Theory of operation: :func:`find` gathers the subject's footprint across the four stores, keyed
by the calls they made:

* PostgreSQL: :class:`~webconsole.calls.models.Call` rows whose ``caller`` (or the callback number
  they left) is the number, spelled in any way (:func:`aipbx.privacy.normalise_phone`); their
  turns, events and HITL requests cascade from the call; knowledge items whose provenance
  (``source_call_id``) points to one of those calls, and the calls' extraction runs;
* files: the recordings directories of those calls and the CDR lines of those calls (or whose
  ``caller`` is the number: a call the console never ingested is found there too);
* Redis: entries of the ARI app's stream ``aipbx:<instance>:events`` about those calls (a
  ``call.started`` entry naming the number adds its call);
* the vector store: the approved knowledge items among the above (removed through
  :func:`knowledge.actions.do_delete_item`, so the index follows the database).

:func:`export` writes one zip: ``manifest.json`` (what was found where), JSON dumps of the rows,
the CDR lines, the stream entries and the recording files as stored (``.enc`` files stay
encrypted: the manifest says so). :func:`delete` removes all of it and reports counts per store;
a second delete finds nothing and reports zeros. Without a number both refuse.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import redis
from django.conf import settings
from django.core import serializers
from django.db import transaction
from django.db.models import F, Func, Q, Value
from django.utils import timezone
from django.utils.translation import gettext

from aipbx.privacy import normalise_phone
from contract import stream_name
from knowledge.actions import do_delete_item
from knowledge.models import ExtractionRun, KnowledgeItem
from webconsole.calls.models import Call, CallEvent, Turn
from webconsole.hitl.models import HitlRequest
from webconsole.privacy import files

log = logging.getLogger(__name__)

_STREAM_BATCH: Final = 1000
_KNOWLEDGE_FIELDS: Final = (
    "owner",
    "text",
    "category",
    "keywords",
    "source",
    "source_call_id",
    "source_speaker",
    "source_span",
    "confidence",
    "status",
    "usage_count",
    "version",
    "created",
    "updated",
)


class SubjectError(ValueError):
    """The request cannot name a data subject (no usable phone number)."""


@dataclass
class Footprint:
    """What was found about one phone number."""

    phone: str
    call_ids: list[str] = field(default_factory=list)
    recording_dirs: list[Path] = field(default_factory=list)
    cdr_lines: dict[Path, list[str]] = field(default_factory=dict)
    stream: str = ""
    stream_entries: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def calls(self) -> Any:
        return Call.objects.filter(call_id__in=self.call_ids).order_by("started", "pk")

    def knowledge(self) -> Any:
        return KnowledgeItem.objects.filter(source_call_id__in=self.call_ids).order_by("pk")


def check_phone(phone: str | None) -> str:
    """The normalised number, or :class:`SubjectError` (no digits, or too few to name a person)."""
    normalised = normalise_phone(phone or "")
    if len(normalised) < 7:
        raise SubjectError(gettext("a phone number (at least 7 digits) is required to find a data subject"))
    return normalised


def find(phone: str | None, *, recordings_dir: Path | None = None, cdr_dir: Path | None = None) -> Footprint:
    """Everything about ``phone`` (see the module docstring). Raises :class:`SubjectError` without one."""
    number = check_phone(phone)
    found = Footprint(phone=number)
    ids = set(_db_call_ids(number))
    cdr_root = Path(cdr_dir or settings.AIPBX_CDR_DIR)
    for _, path in files.cdr_files(cdr_root):
        for _raw, record in files.cdr_lines(path):
            if record is not None and normalise_phone(str(record.get("caller") or "")) == number:
                ids.add(str(record.get("call_id") or ""))
    found.stream = stream_name(settings.AIPBX_INSTANCE)
    entries = list(_stream_entries(found.stream))
    for _, fields in entries:
        if fields.get("type") == "call.started" and normalise_phone(str(_data(fields).get("caller") or "")) == number:
            ids.add(fields.get("call_id", ""))
    ids.discard("")
    found.call_ids = sorted(ids)
    found.stream_entries = [(eid, f) for eid, f in entries if f.get("call_id") in ids]
    for _, path in files.cdr_files(cdr_root):
        lines = [
            raw
            for raw, record in files.cdr_lines(path)
            if record is not None and str(record.get("call_id") or "") in ids
        ]
        if lines:
            found.cdr_lines[path] = lines
    root = Path(recordings_dir or settings.AIPBX_RECORDINGS_DIR)
    found.recording_dirs = [d for d in (files.recording_dir(root, c) for c in found.call_ids) if d and d.is_dir()]
    return found


def export(phone: str | None, out: Path, **dirs: Any) -> dict[str, Any]:
    """Write the subject's data to the zip ``out``; returns its manifest."""
    found = find(phone, **dirs)
    calls = found.calls()
    dumps = {
        "postgresql/calls.json": calls,
        "postgresql/turns.json": Turn.objects.filter(call__in=calls).order_by("call", "t", "pk"),
        "postgresql/call_events.json": CallEvent.objects.filter(call__in=calls).order_by("call", "ts", "pk"),
        "postgresql/hitl_requests.json": HitlRequest.objects.filter(call__in=calls).order_by("created", "pk"),
        "postgresql/knowledge_items.json": found.knowledge(),
        "postgresql/extraction_runs.json": ExtractionRun.objects.filter(call_id__in=found.call_ids).order_by("pk"),
        "postgresql/webhook_events.json": _webhook_events(found.call_ids).order_by("pk"),
    }
    recordings: dict[str, list[str]] = {}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        counts = {}
        for name, queryset in dumps.items():
            options = {"fields": _KNOWLEDGE_FIELDS} if name.endswith("knowledge_items.json") else {}
            archive.writestr(name, serializers.serialize("json", queryset, indent=1, **options))
            counts[name.split("/")[1].removesuffix(".json")] = queryset.count()
        archive.writestr(
            "files/cdr.jsonl", "".join(f"{line}\n" for lines in found.cdr_lines.values() for line in lines)
        )
        for folder in found.recording_dirs:
            names = []
            for path in files.recording_files(folder):
                arcname = f"files/recordings/{folder.name}/{path.relative_to(folder).as_posix()}"
                plain = _decrypted(path)
                if plain is None:  # in clear already, or no key opens it: archived as stored
                    archive.write(path, arcname)
                else:
                    arcname = arcname.removesuffix(".enc")
                    archive.writestr(arcname, plain)
                names.append(arcname)
            recordings[folder.name] = names
        archive.writestr(
            "redis/events.json",
            json.dumps([{"id": eid, **fields} for eid, fields in found.stream_entries], ensure_ascii=False, indent=1),
        )
        manifest = {
            "phone": found.phone,
            "generated": timezone.now().isoformat(),
            "call_ids": found.call_ids,
            "postgresql": counts,
            "files": {
                "recordings": recordings,
                "encrypted_files": sorted(n for names in recordings.values() for n in names if n.endswith(".enc")),
                "cdr_lines": sum(len(lines) for lines in found.cdr_lines.values()),
                "cdr_files": sorted(p.name for p in found.cdr_lines),
            },
            "vector_store": {
                "items": [str(pk) for pk in found.knowledge().filter(status="approved").values_list("pk", flat=True)]
            },
            "redis": {"stream": found.stream, "entries": len(found.stream_entries)},
        }
        archive.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1))
    return manifest


def delete(phone: str | None, **dirs: Any) -> dict[str, Any]:
    """Remove everything :func:`find` finds; returns counts per store (all zero when nothing is left)."""
    found = find(phone, **dirs)
    calls = found.calls()
    items = list(found.knowledge().values_list("pk", "status"))
    report: dict[str, Any] = {
        "phone": found.phone,
        "postgresql": {
            "calls": calls.count(),
            "turns": Turn.objects.filter(call__in=calls).count(),
            "call_events": CallEvent.objects.filter(call__in=calls).count(),
            "hitl_requests": HitlRequest.objects.filter(call__in=calls).count(),
            "knowledge_items": len(items),
            "extraction_runs": ExtractionRun.objects.filter(call_id__in=found.call_ids).count(),
            "webhook_events": _webhook_events(found.call_ids).count(),
        },
        "vector_store": {"items": sum(1 for _, status in items if status == "approved")},
        "files": {"recording_dirs": 0, "recording_files": 0, "cdr_lines": 0},
        "redis": {"stream": found.stream, "entries": 0},
    }
    for pk, _ in items:  # one by one: each leaves the vector index after its commit
        do_delete_item(pk)
    with transaction.atomic():
        ExtractionRun.objects.filter(call_id__in=found.call_ids).delete()
        _webhook_events(found.call_ids).delete()  # their deliveries cascade
        calls.delete()  # turns, events and HITL requests cascade
    for folder in found.recording_dirs:
        report["files"]["recording_files"] += files.remove_recording(folder)
        report["files"]["recording_dirs"] += 1
    ids = set(found.call_ids)
    for path in found.cdr_lines:
        report["files"]["cdr_lines"] += files.drop_cdr_lines(path, lambda r: str(r.get("call_id") or "") in ids)
    if found.stream_entries:
        client = _redis()
        try:
            for start in range(0, len(found.stream_entries), _STREAM_BATCH):
                batch = [eid for eid, _ in found.stream_entries[start : start + _STREAM_BATCH]]
                report["redis"]["entries"] += int(client.xdel(found.stream, *batch))
        finally:
            client.close()
    return report


def _decrypted(path: Path) -> bytes | None:
    """The plaintext of a sealed recording file (``.enc``), or None if it is not one we can open."""
    if path.suffix != ".enc":
        return None
    from aipbx.sealing import SealError, read_bytes

    try:
        return read_bytes(path.parent, path.name.removesuffix(".enc"), settings.AIPBX_RECORDINGS_KEYRING)
    except (SealError, OSError) as exc:
        log.warning("export: %s stays encrypted (%s)", path, exc)
        return None


def _webhook_events(call_ids: list[str]) -> Any:
    """Webhook outbox events about these calls (their payloads hold the caller's full number)."""
    from webconsole.webhooks.models import OutboxEvent

    return OutboxEvent.objects.filter(payload__call_id__in=list(call_ids))


def _db_call_ids(number: str) -> list[str]:
    # Narrow in SQL by the digits' tail (any spelling ends with the subscriber number), then compare exactly.
    tail = number[1:] if number.startswith("0") else number
    digits = {
        name: Func(F(name), Value(r"\D"), Value(""), Value("g"), function="regexp_replace")
        for name in ("caller", "callback_number")
    }
    rows = (
        Call.objects.annotate(caller_digits=digits["caller"], callback_digits=digits["callback_number"])
        .filter(Q(caller_digits__endswith=tail) | Q(callback_digits__endswith=tail))
        .values_list("call_id", "caller", "callback_number")
    )
    return [
        call_id for call_id, caller, callback in rows if number in (normalise_phone(caller), normalise_phone(callback))
    ]


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.AIPBX_EVENTS_REDIS_URL, decode_responses=True)


def _stream_entries(stream: str) -> Iterator[tuple[str, dict[str, str]]]:
    client = _redis()
    try:
        start = "-"
        while True:
            batch = client.xrange(stream, min=start, max="+", count=_STREAM_BATCH)
            if not batch:
                return
            yield from batch
            if len(batch) < _STREAM_BATCH:
                return
            start = "(" + batch[-1][0]
    finally:
        client.close()


def _data(fields: dict[str, str]) -> dict[str, Any]:
    try:
        data = json.loads(fields.get("data") or "{}")
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}
