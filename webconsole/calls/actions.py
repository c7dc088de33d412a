"""State changes of calls made outside the event stream (zulip style: ``do_*``).

:func:`do_store_transcript` stores a transcript written after the call: its lines become the call's
turns in PostgreSQL (replacing whatever a live transcript that gave up had stored), the sealed
``metadata.json`` and ``transcript.txt`` on disk say the same, and the live pages are told after the
commit.

:func:`do_heartbeat` and :func:`do_set_presence` keep an operator's presence
(:mod:`webconsole.calls.presence`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from aipbx import sealing
from aipbx.recordings import transcript_text
from webconsole.calls import live
from webconsole.calls.models import Call, Extension, ExtensionChange, Operator, TranscriptSource, Turn

log = logging.getLogger(__name__)
PARTIES = ("caller", "callee")


def call_folder(call_id: str) -> Path:
    return Path(settings.AIPBX_RECORDINGS_DIR) / call_id


def do_store_transcript(
    call_id: str, turns: Sequence[dict[str, Any]], source: str = TranscriptSource.POST_CALL
) -> Call:
    """Make ``turns`` (``t``, ``end``, ``speaker``, ``text``, ``confidence``) the call's transcript."""
    with transaction.atomic():
        call, _ = Call.objects.get_or_create(call_id=call_id)
        call = Call.objects.select_for_update().get(pk=call.pk)
        call.turns.filter(speaker__in=PARTIES).delete()
        Turn.objects.bulk_create(
            [
                Turn(
                    call=call,
                    event_id=f"{source}:{call.pk}:{index}",
                    t=float(turn["t"]),
                    end=turn.get("end"),
                    speaker=str(turn["speaker"])[:16],
                    text=str(turn["text"]),
                    confidence=turn.get("confidence"),
                )
                for index, turn in enumerate(turns)
            ]
        )
        call.transcript_source = source
        call.save(update_fields=["transcript_source", "updated"])
        _rewrite_files(call_folder(call_id), list(turns), source)
        transaction.on_commit(
            lambda: live.send(
                [live.call_group(call_id)],
                {"type": "console.update", "payload": {"type": "call.transcript", "call": live.call_summary(call)}},
            )
        )
    return call


def do_mark_transcription_failed(call_id: str, reason: str) -> None:
    """The recordings could not be transcribed: the console shows it (nothing else changes)."""
    log.warning("the transcript of %s could not be made after the call: %s", call_id, reason)
    Call.objects.filter(call_id=call_id).update(transcript_source=TranscriptSource.FAILED)


def do_heartbeat(user_id: int) -> bool:
    """One of the user's console pages (or API clients) is alive now. False: the user is no operator."""
    return Operator.objects.filter(user_id=user_id).update(last_seen=timezone.now()) > 0


def do_set_presence(operator: Operator, status: str) -> None:
    """The operator chose ``status`` (a valid ``Presence``); choosing is also a heartbeat."""
    now = timezone.now()
    fields = ["last_seen"]
    if operator.status != status:
        operator.status, operator.status_changed = status, now
        fields += ["status", "status_changed"]
    operator.last_seen = now
    operator.save(update_fields=fields)


def _rewrite_files(folder: Path, turns: list[dict[str, Any]], source: str) -> None:
    """``metadata.json`` (turns, and how they were made) and ``transcript.txt``, sealed like the rest."""
    if not folder.is_dir():
        return
    keys = settings.AIPBX_RECORDINGS_KEYRING
    try:
        metadata = json.loads(sealing.read_text(folder, "metadata.json", keys))
    except (FileNotFoundError, ValueError):
        metadata = {}
    metadata["turns"] = turns
    metadata["transcription"] = {"mode": source, "complete": True}
    sealing.write_bytes(
        folder, "metadata.json", json.dumps(metadata, ensure_ascii=False, indent=2, default=str).encode("utf-8"), keys
    )
    sealing.write_bytes(folder, "transcript.txt", transcript_text(turns).encode("utf-8"), keys)


# --- extension settings (webconsole.calls.directory publishes them to the ARI app and Asterisk) -------
#: The fields an ExtensionChange records (the SIP password is never written into the audit).
AUDITED = (
    "name",
    "business",
    "ai_enabled",
    "no_answer_timeout",
    "language",
    "greeting",
    "voice",
    "recording",
    "hold_message",
    "update_message",
    "hold_music",
    "hold_music_volume",
)


def do_save_extension(
    user: Any, row: Extension, values: dict[str, Any], *, created: bool = False
) -> ExtensionChange | None:
    """Store ``values`` on ``row`` with an audit row (who, when, what), then publish the directory after
    the commit. Returns the audit row (None: nothing changed). The values were checked by the form,
    whose check runs the ARI app's own parser (:func:`check_extension`)."""
    from aipbx.directory import DirectoryError
    from webconsole.calls.directory import PublishError, publish_directory

    with transaction.atomic():
        before = {field: getattr(row, field) for field in AUDITED}
        for field, value in values.items():
            setattr(row, field, value)
        row.seeded = True
        changes = {
            f: [None if created else before[f], getattr(row, f)]
            for f in AUDITED
            if created or before[f] != getattr(row, f)
        }
        if not changes:
            return None
        row.save()
        change = ExtensionChange.objects.create(
            extension=row, user=user if getattr(user, "pk", None) else None, changes=changes
        )

        def publish() -> None:
            try:
                publish_directory()
            except (PublishError, DirectoryError) as exc:  # the next change, or publish_directory, sends it
                log.error("extension %s saved but not yet applied: %s", row.number, exc)

        transaction.on_commit(publish)
    log.info("extension %s changed by %s: %s", row.number, user, ", ".join(changes))
    return change


def check_extension(row: Extension) -> None:
    """Raise ``aipbx.directory.DirectoryError`` if the ARI app would refuse ``row`` (same parser)."""
    from aipbx.directory import parse_directory
    from webconsole.calls.directory import row_document

    parse_directory({"extensions": [row_document(row)]}, "extension")
