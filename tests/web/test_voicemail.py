"""Voicemail in the console and the call-back endpoint: who sees which message, what a message shows,
marking it handled resolves the call's item, and a call-back is asked for (CSRF, permissions, clear
refusals) by pushing one request onto the ARI app's Redis list with the new call linked to the old."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.test import Client

from aipbx import sealing
from tests.web.calls_factory import PASSWORD, ai_call_events, event, make_user
from webconsole.calls.ingest import apply_event
from webconsole.calls.models import Call, Callback, CallbackStatus, HitlStatus, Role
from webconsole.hitl.models import HitlRequest
from webconsole.voicemail.models import TranscriptStatus, Voicemail

pytestmark = pytest.mark.django_db(transaction=True)
KEYS = sealing.Keyring.parse(f"k1:{'A' * 43}=")


@pytest.fixture
def requests_list(settings: Any, tmp_path: Path) -> Iterator[redis.Redis]:
    """This test's own instance (so its own call-back list), recordings sealed with a test key."""
    settings.AIPBX_INSTANCE = f"testvm{uuid.uuid4().hex[:10]}"
    settings.AIPBX_RECORDINGS_DIR = tmp_path
    settings.AIPBX_RECORDINGS_KEYRING = KEYS
    client = redis.Redis.from_url(settings.AIPBX_EVENTS_REDIS_URL)
    yield client
    for key in client.scan_iter(f"aipbx:{settings.AIPBX_INSTANCE}:*"):
        client.delete(key)
    client.close()


def pushed(client: redis.Redis) -> list[dict[str, Any]]:
    from django.conf import settings

    return [json.loads(raw) for raw in client.lrange(f"aipbx:{settings.AIPBX_INSTANCE}:callbacks", 0, -1)]


def missed_call_with_voicemail(call_id: str, callee: str, tmp_path: Path, transcript: str = "") -> Call:
    """An AI call to ``callee`` whose help request timed out and whose caller left a sealed message."""
    for entry in ai_call_events(call_id, callee=callee, caller="01055551234")[:-1]:
        apply_event(entry)
    apply_event(
        event("hitl.requested", call_id, request_id=f"r-{call_id}", question="Refund?", reason="sensitive_topic")
    )
    apply_event(event("hitl.timeout", call_id, request_id=f"r-{call_id}"))
    apply_event(ai_call_events(call_id, callee=callee, caller="01055551234")[-1])
    (tmp_path / call_id).mkdir()
    sealing.write_bytes(tmp_path / call_id, "voicemail.wav", b"RIFF-message-of-" + call_id.encode(), KEYS)
    apply_event(
        event(
            "voicemail.recorded",
            call_id,
            file="voicemail.wav",
            t=20.0,
            duration=7.5,
            ended="hangup",
            reason="timeout",
            request_id=f"r-{call_id}",
            callee=callee,
            language="en-US",
            transcript=transcript,
        )
    )
    return Call.objects.get(call_id=call_id)


def login(name: str, *extensions: str, role: str = Role.OPERATOR, phone: str = "", csrf: bool = False) -> Client:
    user = make_user(name, role=role, extensions=extensions)
    if phone:
        user.operator.extension = phone
        user.operator.save()
    client = Client(enforce_csrf_checks=csrf)
    assert client.login(username=name, password=PASSWORD)
    return client


def test_a_voicemail_event_stores_the_message_once_linked_to_its_call_and_request(requests_list, tmp_path) -> None:
    call = missed_call_with_voicemail("c1", "1002", tmp_path, transcript="Please call me back about the refund.")
    voicemail = Voicemail.objects.get()
    assert (voicemail.call, voicemail.hitl_request, voicemail.caller, voicemail.callee) == (
        call,
        HitlRequest.objects.get(request_id="r-c1"),
        "01055551234",
        "1002",
    )
    assert voicemail.duration_s == 7.5 and voicemail.transcript_status == TranscriptStatus.DONE
    assert call.hitl_status == HitlStatus.UNRESOLVED  # the call's follow-up item is the message
    # a second voicemail event for the same call (another event id) stores nothing more
    apply_event(event("voicemail.recorded", "c1", file="voicemail.wav", t=1.0, duration=1.0, ended="hangup"))
    assert Voicemail.objects.count() == 1


def test_an_operator_sees_only_the_messages_of_their_extensions(requests_list, tmp_path) -> None:
    mine = missed_call_with_voicemail("mine", "1002", tmp_path, transcript="About the implant price.")
    theirs = missed_call_with_voicemail("theirs", "1003", tmp_path, transcript="Secret of 1003.")
    client = login("op1002", "1002")
    page = client.get("/voicemail/").content.decode()
    # the inbox: caller, transcript, audio, call back and mark handled; nothing of 1003
    assert "01055551234" in page and "About the implant price." in page and "Secret of 1003." not in page
    vm_mine, vm_theirs = Voicemail.objects.get(call=mine), Voicemail.objects.get(call=theirs)
    assert f"/voicemail/{vm_mine.pk}/audio.wav" in page and f"/calls/{mine.call_id}/callback" in page
    audio = client.get(f"/voicemail/{vm_mine.pk}/audio.wav")
    assert audio.status_code == 200 and b"".join(audio.streaming_content) == b"RIFF-message-of-mine"
    # another extension's message: 404 everywhere, nothing changes
    assert client.get(f"/voicemail/{vm_theirs.pk}/audio.wav").status_code == 404
    assert client.post(f"/voicemail/{vm_theirs.pk}/handled", {"handled": "1"}).status_code == 404
    assert client.post(f"/calls/{theirs.call_id}/callback").status_code == 404
    assert not Voicemail.objects.get(pk=vm_theirs.pk).handled and not pushed(requests_list)
    # the call history marks the call, and the call page shows the message too
    history = client.get("/calls/").content.decode()
    assert 'class="badge voicemail"' in history and 'class="badge unresolved"' in history
    call_page = client.get(f"/calls/{mine.call_id}/").content.decode()
    assert 'id="voicemail"' in call_page and "About the implant price." in call_page
    # an admin sees both
    both = login("admin", role=Role.ADMIN).get("/voicemail/").content.decode()
    assert "About the implant price." in both and "Secret of 1003." in both


def test_anonymous_users_log_in_first(requests_list, tmp_path) -> None:
    call = missed_call_with_voicemail("c1", "1002", tmp_path)
    vm = Voicemail.objects.get()
    for response in (
        Client().get("/voicemail/"),
        Client().get(f"/voicemail/{vm.pk}/audio.wav"),
        Client().post(f"/calls/{call.call_id}/callback"),
    ):
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_marking_a_message_handled_resolves_the_calls_item_and_back(requests_list, tmp_path) -> None:
    call = missed_call_with_voicemail("c1", "1002", tmp_path)
    vm = Voicemail.objects.get()
    client = login("op1002", "1002")
    client.post(f"/voicemail/{vm.pk}/handled", {"handled": "1"})
    vm.refresh_from_db()
    call.refresh_from_db()
    assert vm.handled and vm.handled_by.username == "op1002" and call.hitl_status == HitlStatus.RESOLVED
    assert "No messages." in client.get("/voicemail/").content.decode()  # the inbox shows what is left to do
    assert "01055551234" in client.get("/voicemail/?show=all").content.decode()
    # reopening the item on the call page puts the message back in the inbox
    client.post(f"/calls/{call.call_id}/", {"notes": "", "callback_number": "", "hitl_status": "unresolved"})
    vm.refresh_from_db()
    assert not vm.handled and "01055551234" in client.get("/voicemail/").content.decode()


def test_a_message_the_ari_app_could_not_transcribe_is_shown_as_queued(requests_list, tmp_path, monkeypatch) -> None:
    sent: list[int] = []
    monkeypatch.setattr("webconsole.voicemail.tasks.transcribe_voicemail_task.delay", sent.append)
    missed_call_with_voicemail("c1", "1002", tmp_path, transcript="")
    vm = Voicemail.objects.get()
    assert vm.transcript_status == TranscriptStatus.QUEUED and sent == [vm.pk]
    assert "Being transcribed" in login("op1002", "1002").get("/voicemail/").content.decode()


# --- call back -----------------------------------------------------------------------------------------


def test_call_back_asks_the_ari_app_and_links_the_new_call_to_the_old(requests_list, tmp_path) -> None:
    old = missed_call_with_voicemail("c1", "1002", tmp_path)
    client = login("op1002", "1002", phone="1003")
    response = client.post(f"/calls/{old.call_id}/callback", follow=True)
    callback = Callback.objects.get()
    new = callback.call
    # the ARI app is asked: ring 1003 first, then the caller's number, for extension 1002
    [request] = pushed(requests_list)
    assert (request["operator_ext"], request["number"], request["callee"], request["callback_of"]) == (
        "1003",
        "01055551234",
        "1002",
        "c1",
    )
    assert request["call_id"] == new.call_id and request["callback_id"] == callback.callback_id
    # the operator lands on the new call's page, which says what happens and links the old call
    page = response.content.decode()
    assert response.redirect_chain[-1][0] == f"/calls/{new.call_id}/"
    assert "your phone (1003) rings first" in page and 'id="callback-of"' in page and f"/calls/{old.call_id}/" in page
    assert new.callback_of == old and (new.caller, new.callee) == ("01055551234", "1002")
    # and the old call's page lists the call-back
    assert f"/calls/{new.call_id}/" in client.get(f"/calls/{old.call_id}/").content.decode()
    # the ARI app's progress reaches the page; a failure says why in words
    apply_event(event("callback.status", new.call_id, callback_id=callback.callback_id, status="ringing_operator"))
    apply_event(
        event(
            "callback.status",
            new.call_id,
            callback_id=callback.callback_id,
            status="failed",
            reason="operator_unregistered",
        )
    )
    callback.refresh_from_db()
    assert (callback.status, callback.reason) == (CallbackStatus.FAILED, "operator_unregistered")
    assert "Your phone is not registered" in client.get(f"/calls/{new.call_id}/").content.decode()


def test_call_back_without_an_extension_of_my_own_says_so_and_sends_nothing(requests_list, tmp_path) -> None:
    old = missed_call_with_voicemail("c1", "1002", tmp_path)
    client = login("op1002", "1002")
    response = client.post(f"/calls/{old.call_id}/callback", {"next": "/voicemail/"}, follow=True)
    assert response.redirect_chain[-1][0] == "/voicemail/"
    assert "You have no phone extension to ring" in response.content.decode()
    assert not pushed(requests_list) and not Callback.objects.exists() and Call.objects.count() == 1


def test_call_back_needs_the_csrf_token_and_a_post(requests_list, tmp_path) -> None:
    old = missed_call_with_voicemail("c1", "1002", tmp_path)
    client = login("op1002", "1002", phone="1003", csrf=True)
    assert client.post(f"/calls/{old.call_id}/callback").status_code == 403
    assert client.get(f"/calls/{old.call_id}/callback").status_code == 405
    assert not pushed(requests_list) and not Callback.objects.exists()


def test_the_operators_extension_is_editable_in_admin(requests_list) -> None:
    admin = login("root", role=Role.ADMIN)
    from django.contrib.auth.models import User

    User.objects.filter(username="root").update(is_staff=True, is_superuser=True)
    operator = make_user("kim").operator
    page = admin.get(f"/admin/calls/operator/{operator.pk}/change/").content.decode()
    assert 'name="extension"' in page


def test_the_worker_transcribes_a_message_from_its_sealed_file_or_says_it_could_not(
    requests_list, tmp_path, monkeypatch
) -> None:
    import io
    import wave

    import numpy as np

    from aipbx.providers.base import Transcript
    from webconsole.voicemail import tasks

    heard: list[int] = []

    class FakeSTT:
        sample_rate = 16000

        async def transcribe(self, pcm, language=None) -> Transcript:
            heard.append(len(pcm))
            return Transcript(
                text=f" {language}: {len(pcm)} samples ",
                language=language,
                is_final=True,
                confidence=None,
                duration_s=len(pcm) / 16000,
                compute_s=0.0,
            )

    monkeypatch.setattr(tasks, "recogniser", lambda language: FakeSTT())
    monkeypatch.setattr(tasks.transcribe_voicemail_task, "delay", lambda pk: None)
    missed_call_with_voicemail("c1", "1002", tmp_path, transcript="")
    vm = Voicemail.objects.get()
    # a real two-second message, sealed like the ARI app's
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(np.zeros(16000, "<i2").tobytes())
    sealing.write_bytes(tmp_path / "c1", "voicemail.wav", buffer.getvalue(), KEYS)

    assert tasks.transcribe_voicemail_task(vm.pk)["status"] == "done"
    vm.refresh_from_db()
    assert (vm.transcript, vm.transcript_status) == ("en: 32000 samples", TranscriptStatus.DONE)
    assert tasks.transcribe_voicemail_task(vm.pk)["status"] == "done" and heard == [32000]  # not twice
    # a message whose file is gone is marked failed, visibly
    Voicemail.objects.filter(pk=vm.pk).update(transcript="", transcript_status=TranscriptStatus.QUEUED)
    (tmp_path / "c1" / "voicemail.wav.enc").unlink()
    assert tasks.transcribe_voicemail_task(vm.pk)["status"] == "failed"
    assert Voicemail.objects.get(pk=vm.pk).transcript_status == TranscriptStatus.FAILED
