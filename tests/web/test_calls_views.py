"""Console pages for calls: login required, operators see only their extensions, forms are CSRF-protected."""

from __future__ import annotations

import os
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from aipbx import sealing
from tests.web.calls_factory import PASSWORD, ai_call_events, event, make_user
from webconsole.calls.ingest import apply_event
from webconsole.calls.models import Call, Extension, Operator, Presence, Role

pytestmark = pytest.mark.django_db

PAGES = ["/", "/calls/", "/calls/mine/", "/calls/mine/audio/mixed.wav", "/operators/"]


@pytest.fixture
def calls(settings, tmp_path):
    """Two ended AI calls, to 1002 ("mine") and 1003 ("theirs"), with recordings on disk."""
    settings.AIPBX_RECORDINGS_DIR = tmp_path
    for call_id, callee in (("mine", "1002"), ("theirs", "1003")):
        for entry in ai_call_events(call_id, callee=callee):
            apply_event(entry)
        folder = tmp_path / call_id
        folder.mkdir()
        for name in ("caller", "callee", "mixed"):
            (folder / f"{name}.wav").write_bytes(b"RIFF" + name.encode() + b"\0" * 40)
        (folder / "metadata.json").write_text('{"call": {"codec": "ulaw"}, "turns": []}')
    return tmp_path


@pytest.fixture
def operator_client(calls) -> Client:
    client = Client()
    client.force_login(make_user("op1002", extensions=("1002",)))
    return client


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_users_are_sent_to_the_login_page(client, calls, url) -> None:
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")


def test_the_dashboard_lists_active_calls_of_my_extensions_only(operator_client) -> None:
    apply_event(event("call.started", "live-mine", caller="1001", callee="1002", start="2026-11-25T02:00:00+00:00"))
    apply_event(event("call.started", "live-theirs", caller="1001", callee="1003", start="2026-11-25T02:00:00+00:00"))
    page = operator_client.get("/").content.decode()
    assert 'data-call-id="live-mine"' in page and "live-theirs" not in page


def test_call_history_shows_my_calls_and_filters_them(operator_client) -> None:
    page = operator_client.get("/calls/").content.decode()
    assert 'data-call-id="mine"' in page and "theirs" not in page
    assert 'data-call-id="mine"' not in operator_client.get("/calls/?ai=no").content.decode()
    assert 'data-call-id="mine"' not in operator_client.get("/calls/?hitl=unresolved").content.decode()
    Call.objects.filter(call_id="mine").update(hitl_status="unresolved")
    assert 'data-call-id="mine"' in operator_client.get("/calls/?hitl=unresolved").content.decode()
    # 2026-11-25 01:00 UTC is 10:00 in Seoul (the console's time zone)
    same_day = operator_client.get("/calls/?date_from=2026-11-25&date_to=2026-11-25").content.decode()
    assert 'data-call-id="mine"' in same_day
    assert 'data-call-id="mine"' not in operator_client.get("/calls/?date_from=2026-11-26").content.decode()
    assert operator_client.get("/calls/?date_from=not-a-date").status_code == 200  # an error, not a crash


def test_the_call_page_shows_transcript_recordings_and_metadata(operator_client) -> None:
    page = operator_client.get("/calls/mine/").content.decode()
    assert "When is the team meeting?" in page and "The team meeting is on Tuesday at 10." in page
    assert "0.71" in page and "812 ms" in page  # retrieved knowledge with its score, the answer's latency
    for name in ("mixed", "caller", "callee"):
        assert f"/calls/mine/audio/{name}.wav" in page
    audio = operator_client.get("/calls/mine/audio/caller.wav")
    assert audio.status_code == 200 and audio["Content-Type"] == "audio/wav"
    assert b"".join(audio.streaming_content).startswith(b"RIFFcaller")


def test_sealed_recordings_stream_decrypted_to_the_operator_with_their_plain_length(
    operator_client, calls, settings
) -> None:
    # given the call's files sealed at rest, the console holding a rotated keyring (new key first)
    old = sealing.Keyring.parse(sealing.new_key_spec("k0"))
    wav = b"RIFF" + os.urandom(200_000)  # several 64 KiB chunks
    (calls / "mine" / "mixed.wav").write_bytes(wav)
    (calls / "mine" / "metadata.json").write_text('{"call": {"codec": "alaw"}, "turns": []}')
    sealing.seal_directory(calls / "mine", old)
    assert not (calls / "mine" / "mixed.wav").exists()
    new_spec = sealing.new_key_spec("k1")
    settings.AIPBX_RECORDINGS_KEYRING = sealing.Keyring((sealing.Keyring.parse(new_spec).current, old.current))
    # when the operator opens the call and its audio
    page = operator_client.get("/calls/mine/").content.decode()
    audio = operator_client.get("/calls/mine/audio/mixed.wav")
    # then the page lists the recordings and the metadata, and the audio is the exact WAV, not cached
    assert "/calls/mine/audio/mixed.wav" in page and "alaw" in page
    assert audio.status_code == 200 and audio["Content-Type"] == "audio/wav"
    assert int(audio["Content-Length"]) == len(wav)
    assert audio["Cache-Control"] == "private, no-store"
    assert b"".join(audio.streaming_content) == wav
    # and without the key the operator gets a clear error, never ciphertext
    settings.AIPBX_RECORDINGS_KEYRING = sealing.Keyring.parse(new_spec)
    refused = operator_client.get("/calls/mine/audio/mixed.wav")
    assert refused.status_code == 500 and b"cannot be decrypted" in refused.content


def test_a_recording_swapped_in_from_another_call_is_refused_with_a_clear_error(
    operator_client, calls, settings, caplog
) -> None:
    # given both calls sealed, and someone with disk access who puts the other call's audio under mine
    keys = sealing.Keyring.parse(sealing.new_key_spec("k1"))
    settings.AIPBX_RECORDINGS_KEYRING = keys
    for call_id in ("mine", "theirs"):
        sealing.seal_directory(calls / call_id, keys)
    (calls / "theirs" / "mixed.wav.enc").replace(calls / "mine" / "mixed.wav.enc")
    # and, within my call, the two tracks exchanged
    (calls / "mine" / "caller.wav.enc").rename(calls / "mine" / "swap.tmp")
    (calls / "mine" / "callee.wav.enc").rename(calls / "mine" / "caller.wav.enc")
    (calls / "mine" / "swap.tmp").rename(calls / "mine" / "callee.wav.enc")
    # when the operator plays them
    for name in ("mixed", "caller", "callee"):
        refused = operator_client.get(f"/calls/mine/audio/{name}.wav")
        # then each is refused with a message saying what happened, never played as this call's audio
        assert refused.status_code == 500, name
        assert b"belongs to another call or track" in refused.content
    assert "sealed as call 'theirs', mixed.wav but lies at call 'mine', mixed.wav" in caplog.text
    # and the call page itself still opens
    assert operator_client.get("/calls/mine/").status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "/calls/theirs/",
        "/calls/theirs/audio/mixed.wav",
        "/calls/nope/",
        "/calls/mine/audio/metadata.wav",
        "/calls/../audio/mixed.wav",
    ],
)
def test_calls_of_other_extensions_and_unknown_files_are_not_found(operator_client, url) -> None:
    assert operator_client.get(url).status_code == 404


def test_an_operator_cannot_change_another_extensions_call(operator_client) -> None:
    response = operator_client.post("/calls/theirs/", {"notes": "mine now", "hitl_status": "resolved"})
    assert response.status_code == 404
    assert Call.objects.get(call_id="theirs").notes == ""


def test_notes_follow_up_and_resolution_are_saved(operator_client) -> None:
    response = operator_client.post(
        "/calls/mine/",
        {
            "notes": "Called back, all fine.",
            "follow_up": "on",
            "callback_number": "010-1234-5678",
            "hitl_status": "resolved",
        },
    )
    assert response.status_code == 302
    call = Call.objects.get(call_id="mine")
    assert (call.notes, call.follow_up, call.callback_number, call.hitl_status) == (
        "Called back, all fine.",
        True,
        "010-1234-5678",
        "resolved",
    )
    bad = operator_client.post("/calls/mine/", {"callback_number": "call me maybe", "hitl_status": ""})
    assert bad.status_code == 200 and "Enter a phone number" in bad.content.decode()
    assert Call.objects.get(call_id="mine").callback_number == "010-1234-5678"


def test_forms_without_a_csrf_token_are_refused(calls) -> None:
    client = Client(enforce_csrf_checks=True)
    client.login(username=make_user("op", extensions=("1002",)).username, password=PASSWORD)
    assert client.post("/calls/mine/", {"notes": "x"}).status_code == 403
    assert client.post("/operators/presence", {"status": "available"}).status_code == 403
    assert Call.objects.get(call_id="mine").notes == ""


def test_an_admin_sees_every_extension(calls) -> None:
    client = Client()
    client.force_login(make_user("boss", role=Role.ADMIN))
    page = client.get("/calls/").content.decode()
    assert 'data-call-id="mine"' in page and 'data-call-id="theirs"' in page
    assert client.get("/calls/theirs/").status_code == 200


def test_an_operator_sets_their_presence(operator_client) -> None:
    response = operator_client.post("/operators/presence", {"status": "available", "next": "/calls/"})
    assert response.status_code == 302 and response["Location"] == "/calls/"
    assert Operator.objects.get(user__username="op1002").status == Presence.AVAILABLE
    assert "Available" in operator_client.get("/operators/").content.decode()
    # unknown status: refused; an off-site `next` is not followed
    response = operator_client.post("/operators/presence", {"status": "asleep", "next": "//evil.example/"})
    assert response["Location"] == "/" and Operator.objects.get(user__username="op1002").status == "available"


def test_extensions_follow_the_config_file_and_the_first_admin_is_created(monkeypatch) -> None:
    # migrate synced asterisk/extensions.yaml
    assert Extension.objects.get(number="1002").name == "Jiyoung Lee"
    monkeypatch.setitem(os.environ, "AIPBX_CONSOLE_ADMIN_PASSWORD", "short")
    with pytest.raises(CommandError, match="12 characters"):
        call_command("create_console_admin", stdout=StringIO())
    monkeypatch.setitem(os.environ, "AIPBX_CONSOLE_ADMIN_PASSWORD", PASSWORD)
    call_command("create_console_admin", stdout=StringIO())
    call_command("create_console_admin", stdout=StringIO())  # idempotent
    admin = User.objects.get(username="admin")
    assert admin.check_password(PASSWORD) and admin.operator.role == Role.ADMIN
