"""The extension directory: seeded from ``asterisk/extensions.yaml``, kept in PostgreSQL, published to Redis.

The YAML is the seed (config as code for a new install): a row gets the file's settings once, when it is
created or first seeded, and the console edits it from then on. After every change (and by
``manage.py publish_directory``, which ``make up`` and compose's migrate service run) the whole
directory is published as one payload (``contract.directory``) that the ARI app follows: the next call
hears the new greeting, and the ARI app sets Asterisk's globals and PJSIP objects (``ariapp.calls.extensions``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import redis
from django.conf import settings
from django.db import transaction

from aipbx.directory import Directory, load_directory, parse_directory
from contract.directory import DirectoryPayload, directory_channel, directory_key
from webconsole.calls.models import Extension

log = logging.getLogger(__name__)


class PublishError(RuntimeError):
    """Redis did not take the directory (retryable: the next change or ``publish_directory`` sends it)."""


def sync_extensions(path: Path) -> tuple[int, int]:
    """Create missing extensions and seed rows never seeded; returns ``(created, seeded)``.

    Extensions removed from the file are kept (calls and assignments still refer to them), and a row
    already seeded is never overwritten: the console is the source of truth.
    """
    created = seeded = 0
    with transaction.atomic():
        for ext in load_directory(path):
            row, made = Extension.objects.get_or_create(number=ext.ext, defaults={"name": ext.owner})
            created += made
            if row.seeded:
                continue
            row.name = ext.owner
            row.business = ext.business
            row.ai_enabled = ext.ai
            row.no_answer_timeout = ext.no_answer_timeout
            row.language = ext.language
            row.greeting = ext.greeting
            row.voice = ext.voice
            row.recording = ext.recording
            row.hold_message = ext.hold_message
            row.update_message = ext.update_message
            row.hold_music = ext.hold_music
            row.hold_music_volume = ext.hold_music_volume
            row.seeded = True
            row.save()
            seeded += 1
    return created, seeded


def row_document(row: Extension) -> dict:
    return {
        "ext": row.number,
        "owner": row.name or row.number,
        "no_answer_timeout": row.no_answer_timeout,
        "language": row.language,
        "greeting": row.greeting,
        "recording": row.recording,
        "ai": row.ai_enabled,
        "voice": row.voice,
        "hold_message": row.hold_message,
        "update_message": row.update_message,
        "hold_music": row.hold_music,
        "hold_music_volume": row.hold_music_volume,
        **({"sip_password": row.sip_password} if row.sip_password else {}),
        "business": row.business,
    }


def current_directory() -> Directory:
    """The directory as the console holds it now: what the knowledge worker, the importer and the
    post-call tasks read (an extension added in admin is known to them at once, with its language and
    recording policy). Before the first seeding (an empty table) it is the YAML seed itself."""
    if not Extension.objects.filter(seeded=True).exists():
        return load_directory(Path(settings.AIPBX_EXTENSIONS_FILE))
    return build_directory()


def build_directory() -> Directory:
    """The directory as the database holds it (the seed's recording notices and defaults), validated."""
    seed = load_directory(Path(settings.AIPBX_EXTENSIONS_FILE))
    seed_rows = {ext.ext: ext for ext in seed}
    items = []
    for row in Extension.objects.filter(seeded=True).order_by("number"):
        item = row_document(row)
        if row.number in seed_rows:  # network ACL and SRTP stay config as code (rendered into pjsip.conf)
            item["permit"] = list(seed_rows[row.number].permit) or None
            item["srtp"] = seed_rows[row.number].srtp
        items.append(item)
    return parse_directory(
        {"recording_notice": dict(seed.notice) or False, "extensions": items}, "the console's extensions"
    )


def publish_directory(revision: int | None = None) -> int:
    """SET the directory payload and announce it; returns the revision published."""
    directory = build_directory()
    revision = revision if revision is not None else time.time_ns() // 1000
    payload = DirectoryPayload(revision, directory.as_document()).encode()
    try:
        client = redis.Redis.from_url(settings.AIPBX_EVENTS_REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
        client.set(directory_key(settings.AIPBX_INSTANCE), payload)
        client.publish(directory_channel(settings.AIPBX_INSTANCE), str(revision))
    except (redis.RedisError, OSError) as exc:
        raise PublishError(f"the directory could not be published to Redis: {exc!r}") from exc
    log.info("directory revision %d published (%d extensions)", revision, len(directory))
    return revision
