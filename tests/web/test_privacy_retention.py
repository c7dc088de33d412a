"""Retention with a frozen clock: an explicit ``now`` decides what is older than the limit."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from knowledge.models import KnowledgeItem
from tests.web.privacy_seed import Stores, seed_call, stores  # noqa: F401 - fixture
from webconsole.calls.models import Call, CallEvent, Turn
from webconsole.hitl.models import HitlRequest
from webconsole.privacy.retention import apply_retention
from webconsole.privacy.tasks import apply_retention_task

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=91)
RECENT = NOW - timedelta(days=89)


def seed_old_and_recent(stores: Stores) -> None:  # noqa: F811
    seed_call(
        stores, "old-call", "010-1111-2222", OLD, knowledge="The warehouse opens at 7 a.m. on Mondays.", encrypted=True
    )
    seed_call(stores, "new-call", "010-3333-4444", RECENT, knowledge="Parcels go to the east gate on Fridays.")
    # a recordings dir the console never ingested, its files 100 days old
    orphan = stores.recordings / "orphan-call"
    orphan.mkdir()
    (orphan / "mixed.wav").write_bytes(b"x")
    old_time = (NOW - timedelta(days=100)).timestamp()
    os.utime(orphan / "mixed.wav", (old_time, old_time))


def snapshot(stores: Stores) -> dict:  # noqa: F811
    return {
        "dirs": sorted(p.name for p in stores.recordings.iterdir()),
        "cdr": {p.name: p.read_text() for p in sorted(stores.cdr.iterdir())},
        "turns": sorted(Turn.objects.values_list("event_id", flat=True)),
        "events": sorted(CallEvent.objects.values_list("event_id", flat=True)),
        "hitl": sorted(HitlRequest.objects.values_list("request_id", "question", "answer_raw")),
        "knowledge": sorted(KnowledgeItem.objects.values_list("text", "source_call_id", "source_speaker")),
        "calls": sorted(Call.objects.values_list("call_id", flat=True)),
    }


def test_only_data_older_than_the_limit_goes_and_a_second_run_finds_nothing(stores: Stores) -> None:  # noqa: F811
    # given
    seed_old_and_recent(stores)
    # when
    report = apply_retention(NOW, days=90)
    # then: the old call's recordings (encrypted files too), transcript and HITL words are gone ...
    assert report.as_dict() == {
        "cutoff": (NOW - timedelta(days=90)).isoformat(),
        "dry_run": False,
        "calls": 1,
        "recording_dirs": 2,
        "recording_files": 6,
        "turns": 2,
        "events": 2,
        "hitl_requests": 1,
        "knowledge_provenance": 1,
        "webhook_events": 1,
        "cdr_lines": 1,
    }
    assert sorted(p.name for p in stores.recordings.iterdir()) == ["new-call"]
    assert set(Turn.objects.values_list("call__call_id", flat=True)) == {"new-call"}
    assert set(CallEvent.objects.values_list("call__call_id", flat=True)) == {"new-call"}
    old_hitl = HitlRequest.objects.get(request_id="old-call-r")
    assert (old_hitl.question, old_hitl.recent_turns, old_hitl.answer_raw, old_hitl.answer_text) == ("", [], "", "")
    assert HitlRequest.objects.get(request_id="new-call-r").question == "question of new-call"
    # ... the knowledge stays, without its link to the old call
    kept = KnowledgeItem.objects.get(text__startswith="The warehouse")
    assert (kept.source_call_id, kept.source_span, kept.source_speaker) == ("", None, "")
    assert KnowledgeItem.objects.get(text__startswith="Parcels").source_call_id == "new-call"
    # ... the old CDR line is gone (its day file with it), the recent one stays
    assert [p.name for p in stores.cdr.iterdir()] == [f"cdr-{RECENT.date().isoformat()}.jsonl"]
    assert Call.objects.count() == 2  # the call history itself stays
    # idempotent
    again = apply_retention(NOW, days=90).as_dict()
    assert {k: v for k, v in again.items() if k not in ("cutoff", "dry_run")} == dict.fromkeys(
        [
            "calls",
            "recording_dirs",
            "recording_files",
            "turns",
            "events",
            "hitl_requests",
            "knowledge_provenance",
            "webhook_events",
            "cdr_lines",
        ],
        0,
    ) | {"calls": 1}


def test_a_dry_run_counts_but_changes_nothing(stores: Stores) -> None:  # noqa: F811
    seed_old_and_recent(stores)
    before = snapshot(stores)
    report = apply_retention(NOW, days=90, dry_run=True)
    assert report.dry_run and report.calls == 1 and report.recording_files == 6 and report.cdr_lines == 1
    assert snapshot(stores) == before


def test_zero_days_keeps_everything_forever(stores: Stores) -> None:  # noqa: F811
    seed_old_and_recent(stores)
    before = snapshot(stores)
    assert apply_retention(NOW + timedelta(days=3650), days=0).calls == 0
    assert snapshot(stores) == before


def test_a_cdr_day_file_with_old_and_recent_lines_is_rewritten_keeping_the_recent(stores: Stores) -> None:  # noqa: F811
    cutoff = NOW - timedelta(days=90)
    day = stores.cdr / f"cdr-{cutoff.date().isoformat()}.jsonl"
    lines = [
        {"call_id": "a", "start": (cutoff - timedelta(minutes=5)).isoformat()},
        {"call_id": "b", "start": (cutoff + timedelta(minutes=5)).isoformat()},
    ]
    day.write_text("".join(json.dumps(x) + "\n" for x in lines) + "not json\n")
    assert apply_retention(NOW, days=90).cdr_lines == 1
    assert day.read_text() == json.dumps(lines[1]) + "\nnot json\n"
    assert not list(stores.cdr.glob(".*.tmp"))


def test_the_command_and_the_beat_task_use_the_settings(stores: Stores, settings, capsys) -> None:  # noqa: F811
    from django.conf import settings as live

    assert live.CELERY_BEAT_SCHEDULE["privacy-retention"]["task"] == apply_retention_task.name
    seed_call(stores, "ancient", "010-5555-6666", datetime.now(UTC) - timedelta(days=400))
    settings.AIPBX_RETENTION_DAYS = 365
    call_command("apply_retention", "--dry-run")
    assert json.loads(capsys.readouterr().out)["recording_dirs"] == 1
    assert (stores.recordings / "ancient").is_dir()
    assert apply_retention_task.apply().get()["recording_dirs"] == 1
    assert not (stores.recordings / "ancient").exists()
