"""Data-subject export and delete by phone number, across PostgreSQL, files, the vector store and Redis."""

from __future__ import annotations

import asyncio
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from knowledge.actions import get_retriever
from knowledge.models import KnowledgeItem
from tests.web.calls_factory import make_user
from tests.web.privacy_seed import Stores, seed_call, stores  # noqa: F401 - fixture
from webconsole.calls.models import Call, CallEvent, Role, Turn
from webconsole.hitl.models import HitlRequest
from webconsole.privacy.subject import SubjectError, delete
from webconsole.webhooks.models import OutboxEvent

pytestmark = pytest.mark.django_db(transaction=True)

WHEN = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)


def seed_two_callers(stores: Stores) -> None:  # noqa: F811
    # the subject, spelled three ways across two calls
    seed_call(stores, "a-1", "01012345678", WHEN, knowledge="The visitor badge is at the front desk.")
    seed_call(stores, "a-2", "+82 10-1234-5678", WHEN, encrypted=True)
    # someone else
    seed_call(stores, "b-1", "010-9999-0000", WHEN, knowledge="Invoices are paid on the 25th of each month.")


def test_export_contains_exactly_the_first_callers_data(stores: Stores, tmp_path: Path) -> None:  # noqa: F811
    seed_two_callers(stores)
    out = tmp_path / "subject.zip"
    call_command("subject_export", "--phone", "010-1234-5678", "--out", str(out))
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        calls = json.loads(archive.read("postgresql/calls.json"))
        turns = json.loads(archive.read("postgresql/turns.json"))
        items = json.loads(archive.read("postgresql/knowledge_items.json"))
        cdr = archive.read("files/cdr.jsonl").decode().splitlines()
        events = json.loads(archive.read("redis/events.json"))
        recording = archive.read("files/recordings/a-1/mixed.wav")
    assert manifest["call_ids"] == ["a-1", "a-2"] and manifest["phone"] == "01012345678"
    assert manifest["postgresql"] == {
        "calls": 2,
        "turns": 4,
        "call_events": 4,
        "hitl_requests": 2,
        "knowledge_items": 1,
        "extraction_runs": 0,
        "webhook_events": 2,
    }
    assert sorted(c["fields"]["caller"] for c in calls) == ["+82 10-1234-5678", "01012345678"]
    assert {t["fields"]["text"] for t in turns} >= {"Hi, a-1 here.", "Hi, a-2 here."}
    assert [i["fields"]["text"] for i in items] == ["The visitor badge is at the front desk."]
    assert sorted(json.loads(line)["call_id"] for line in cdr) == ["a-1", "a-2"]
    assert sorted(e["call_id"] for e in events) == ["a-1", "a-1", "a-2", "a-2"]
    assert manifest["redis"]["entries"] == 4 and len(manifest["vector_store"]["items"]) == 1
    assert recording == b"a-1/mixed.wav"
    assert len(manifest["files"]["encrypted_files"]) == 5 and "files/recordings/a-2/mixed.wav.enc" in names
    assert not any("b-1" in name for name in names)
    assert b"9999" not in b"".join(archive_bytes(out))


def archive_bytes(path: Path) -> list[bytes]:
    with zipfile.ZipFile(path) as archive:
        return [archive.read(name) for name in archive.namelist()]


def test_delete_removes_exactly_the_first_callers_data_everywhere(stores: Stores) -> None:  # noqa: F811
    # given
    seed_two_callers(stores)
    other = KnowledgeItem.objects.get(source_call_id="b-1")
    # when
    report = delete("+82 10 1234 5678")
    # then
    assert report["postgresql"] == {
        "calls": 2,
        "turns": 4,
        "call_events": 4,
        "hitl_requests": 2,
        "knowledge_items": 1,
        "extraction_runs": 0,
        "webhook_events": 2,
    }
    assert [e.payload["call_id"] for e in OutboxEvent.objects.all()] == ["b-1"]  # full numbers in payloads
    assert report["files"] == {"recording_dirs": 2, "recording_files": 10, "cdr_lines": 2}
    assert report["vector_store"] == {"items": 1} and report["redis"]["entries"] == 4
    assert list(Call.objects.values_list("call_id", flat=True)) == ["b-1"]
    assert set(Turn.objects.values_list("call__call_id", flat=True)) == {"b-1"}
    assert set(CallEvent.objects.values_list("call__call_id", flat=True)) == {"b-1"}
    assert list(HitlRequest.objects.values_list("request_id", flat=True)) == ["b-1-r"]
    assert list(KnowledgeItem.objects.all()) == [other]
    assert get_retriever().store.count("1002") == 1  # the index followed: only the other caller's item
    hits = asyncio.run(get_retriever().search("1002", "Where is the visitor badge?")).passages
    assert [p.id for p in hits] in ([], [str(other.pk)])
    assert sorted(p.name for p in stores.recordings.iterdir()) == ["b-1"]
    cdr_calls = [json.loads(line)["call_id"] for p in stores.cdr.iterdir() for line in p.read_text().splitlines()]
    assert cdr_calls == ["b-1"]
    assert [f["call_id"] for _, f in stores.redis.xrange(stores.stream)] == ["b-1", "b-1"]
    # idempotent: a second delete finds nothing
    again = delete("01012345678")
    assert set(again["postgresql"].values()) == {0} and set(again["files"].values()) == {0}
    assert again["vector_store"] == {"items": 0} and again["redis"]["entries"] == 0


def test_a_number_with_no_data_reports_zeros_and_no_number_is_refused(stores: Stores) -> None:  # noqa: F811
    seed_two_callers(stores)
    report = delete("010-7777-8888")
    assert set(report["postgresql"].values()) == {0} and set(report["files"].values()) == {0}
    assert Call.objects.count() == 3
    for bad in ("", None, "abc", "1002"):
        with pytest.raises(SubjectError):
            delete(bad)
    with pytest.raises(CommandError):
        call_command("subject_delete", "--phone", "", "--yes")
    assert Call.objects.count() == 3


def test_the_delete_command_with_yes_prints_the_report(stores: Stores, capsys) -> None:  # noqa: F811
    seed_two_callers(stores)
    call_command("subject_delete", "--phone", "010-1234-5678", "--yes")
    assert json.loads(capsys.readouterr().out)["postgresql"]["calls"] == 2
    assert list(Call.objects.values_list("call_id", flat=True)) == ["b-1"]


# --- pages ---------------------------------------------------------------------------------------


def admin_client(**kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(make_user("boss", role=Role.ADMIN))
    return client


def test_the_pages_are_for_admins_only(stores: Stores) -> None:  # noqa: F811
    seed_two_callers(stores)
    anonymous = Client()
    for url in ("/privacy/", "/privacy/export", "/privacy/delete"):
        response = (
            anonymous.post(url, {"phone": "01012345678", "confirm": "on"}) if url != "/privacy/" else anonymous.get(url)
        )
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    operator = Client()
    operator.force_login(make_user("kim", extensions=("1002",)))
    assert operator.get("/privacy/").status_code == 404
    assert operator.post("/privacy/delete", {"phone": "01012345678", "confirm": "on"}).status_code == 404
    assert operator.post("/privacy/export", {"phone": "01012345678"}).status_code == 404
    assert Call.objects.count() == 3
    boss = admin_client()
    page = boss.get("/privacy/")
    assert page.status_code == 200 and b"csrfmiddlewaretoken" in page.content


def test_an_admin_exports_and_deletes_from_the_console_with_csrf(stores: Stores) -> None:  # noqa: F811
    seed_two_callers(stores)
    # CSRF enforced: a POST without the token is refused and changes nothing
    strict = admin_client(enforce_csrf_checks=True)
    assert strict.post("/privacy/delete", {"phone": "01012345678", "confirm": "on"}).status_code == 403
    assert Call.objects.count() == 3
    token = strict.get("/privacy/").cookies["csrftoken"].value
    exported = strict.post("/privacy/export", {"phone": "010-1234-5678", "csrfmiddlewaretoken": token})
    assert exported.status_code == 200 and exported["Content-Type"] == "application/zip"
    body = b"".join(exported.streaming_content)
    assert body.startswith(b"PK")
    # deleting needs the confirmation box
    assert strict.post("/privacy/delete", {"phone": "01012345678", "csrfmiddlewaretoken": token}).status_code == 400
    done = strict.post("/privacy/delete", {"phone": "01012345678", "confirm": "on", "csrfmiddlewaretoken": token})
    assert done.status_code == 200 and b"privacy-report" in done.content
    assert list(Call.objects.values_list("call_id", flat=True)) == ["b-1"]
    assert not User.objects.filter(username="kim").exists()


def test_the_export_decrypts_recordings_sealed_with_the_configured_keys(stores: Stores, settings) -> None:  # noqa: F811
    from aipbx.sealing import Keyring, new_key_spec, seal_directory

    settings.AIPBX_RECORDINGS_KEYRING = Keyring.parse(new_key_spec("k1"))
    seed_two_callers(stores)
    seal_directory(stores.recordings / "a-1", settings.AIPBX_RECORDINGS_KEYRING)
    out = stores.recordings.parent / "export.zip"
    call_command("subject_export", "--phone", "010-1234-5678", "--out", str(out))
    with zipfile.ZipFile(out) as archive:
        assert archive.read("files/recordings/a-1/mixed.wav") == b"a-1/mixed.wav"
        manifest = json.loads(archive.read("manifest.json"))
    assert "files/recordings/a-1/mixed.wav" in manifest["files"]["recordings"]["a-1"]
    assert not any("a-1" in name for name in manifest["files"]["encrypted_files"])
