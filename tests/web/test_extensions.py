"""/extensions/: admins change an extension's settings; each change is audited and published at once."""

from __future__ import annotations

import io
import json
import wave

import numpy as np
import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from contract.directory import directory_key
from tests.web.calls_factory import make_user
from webconsole.calls.directory import build_directory, sync_extensions
from webconsole.calls.models import Extension, ExtensionChange, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def published():
    """What the ARI app would read from Redis (this test session's instance)."""
    client = redis.Redis.from_url(settings.AIPBX_EVENTS_REDIS_URL)
    key = directory_key(settings.AIPBX_INSTANCE)
    client.delete(key)

    def read() -> dict | None:
        raw = client.get(key)
        return json.loads(raw) if raw else None

    yield read
    client.delete(key)


def admin_client() -> tuple[Client, object]:
    user = make_user("boss", role=Role.ADMIN)
    client = Client()
    client.force_login(user)
    return client, user


def form_of(row: Extension, **changes) -> dict:
    data = {
        "name": row.name,
        "business": row.business,
        "ai_enabled": "on" if row.ai_enabled else "",
        "no_answer_timeout": row.no_answer_timeout,
        "language": row.language,
        "greeting": row.greeting,
        "voice": row.voice,
        "recording": row.recording,
        "hold_message": row.hold_message,
        "update_message": row.update_message,
        "hold_music_volume": row.hold_music_volume,
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v != ""}


def seeded(number: str) -> Extension:
    return Extension.objects.get(number=number, seeded=True)


def test_the_seed_fills_the_rows_once_from_the_yaml() -> None:
    row = seeded("1003")
    assert (row.name, row.no_answer_timeout, row.language, row.ai_enabled) == ("Front Desk", 15, "en-US", True)
    assert "{owner}" in row.greeting


def test_an_admin_changes_the_greeting_and_timeout_audited_and_published(
    published, django_capture_on_commit_callbacks
) -> None:
    client, user = admin_client()
    row = seeded("1002")
    # when the admin saves a new greeting and timeout
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("console:extension", args=["1002"]),
            form_of(row, greeting="Hi, {owner}'s line. This call is recorded.", no_answer_timeout=4, ai_enabled=""),
        )
    assert response.status_code == 302
    # then the row holds it, an audit row says who changed what, and the ARI app's payload has it
    row.refresh_from_db()
    assert (row.no_answer_timeout, row.ai_enabled) == (4, False)
    (change,) = ExtensionChange.objects.filter(extension=row)
    assert change.user == user
    assert change.changes["no_answer_timeout"] == [10, 4] and change.changes["ai_enabled"] == [True, False]
    assert set(change.changes) == {"greeting", "no_answer_timeout", "ai_enabled"}
    payload = published()
    assert payload is not None and payload["version"] == 1
    item = next(e for e in payload["directory"]["extensions"] if e["ext"] == "1002")
    assert item["greeting"] == "Hi, {owner}'s line. This call is recorded."
    assert (item["no_answer_timeout"], item["ai"]) == (4, False)
    # and the page shows the change in its history
    page = client.get(reverse("console:extension", args=["1002"])).content.decode()
    assert "boss" in page and "no_answer_timeout" in page


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("no_answer_timeout", 0),
        ("no_answer_timeout", 601),
        ("language", "fr-FR"),
        ("voice", "a b"),
        ("business", "x" * 129),
    ],
)
def test_a_bad_value_is_an_error_and_nothing_is_saved_or_published(
    published, django_capture_on_commit_callbacks, field: str, value: object
) -> None:
    client, _ = admin_client()
    row = seeded("1001")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("console:extension", args=["1001"]), form_of(row, **{field: value}))
    assert response.status_code == 200 and 'class="errorlist' in response.content.decode()
    fresh = seeded("1001")
    assert getattr(fresh, field) == getattr(row, field)
    assert not ExtensionChange.objects.exists()
    assert published() is None


def test_the_seed_gives_a_new_row_the_business_name_once(tmp_path) -> None:
    # given a seed file whose PBX has one business name and a line that names its own
    seed = tmp_path / "extensions.yaml"
    seed.write_text(
        'defaults:\n  business: "Smile Tree Dental Clinic"\n'
        'extensions:\n  - ext: "1091"\n    owner: "Front Desk"\n'
        '  - ext: "1092"\n    owner: "Lab"\n    business: "Smile Tree Lab"\n',
        encoding="utf-8",
    )
    # when it is synced
    assert sync_extensions(seed) == (2, 2)
    # then the rows have it, and a later seed does not overwrite what the console holds
    assert (seeded("1091").business, seeded("1092").business) == ("Smile Tree Dental Clinic", "Smile Tree Lab")
    seed.write_text(seed.read_text(encoding="utf-8").replace("Smile Tree Dental Clinic", "Other"), encoding="utf-8")
    assert sync_extensions(seed) == (0, 0)
    assert seeded("1091").business == "Smile Tree Dental Clinic"


def test_an_admin_sets_the_business_name_audited_and_published(published, django_capture_on_commit_callbacks) -> None:
    client, user = admin_client()
    row = seeded("1003")
    assert row.business == ""  # the shipped seed names no business
    # when the admin names the line's business and greets with it
    greeting = "Hello, {business}. This is the AI assistant. This call is recorded."
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("console:extension", args=["1003"]),
            form_of(row, business="  Smile Tree Dental Clinic ", greeting=greeting),
        )
    assert response.status_code == 302
    # then the row holds it, the audit says who changed it from what, and the ARI app's payload has it
    row.refresh_from_db()
    assert row.business == "Smile Tree Dental Clinic"
    (change,) = ExtensionChange.objects.filter(extension=row)
    assert change.user == user
    assert change.changes["business"] == ["", "Smile Tree Dental Clinic"]
    assert set(change.changes) == {"business", "greeting"}
    item = next(e for e in published()["directory"]["extensions"] if e["ext"] == "1003")
    assert (item["business"], item["greeting"]) == ("Smile Tree Dental Clinic", greeting)
    assert build_directory().get("1003").greeting_text.startswith("Hello, Smile Tree Dental Clinic. ")
    # and the history shows it; an operator of the line sees the name
    assert "business" in client.get(reverse("console:extension", args=["1003"])).content.decode()
    operator = Client()
    operator.force_login(make_user("desk", extensions=("1003",)))
    assert "Smile Tree Dental Clinic" in operator.get(reverse("console:extension", args=["1003"])).content.decode()


def test_an_operator_sees_their_extension_but_cannot_change_it(published) -> None:
    user = make_user("op", extensions=("1001",))
    client = Client()
    client.force_login(user)
    assert client.get(reverse("console:extension", args=["1001"])).status_code == 200
    assert client.get(reverse("console:extension", args=["1002"])).status_code == 403
    row = seeded("1001")
    response = client.post(reverse("console:extension", args=["1001"]), form_of(row, no_answer_timeout=3))
    assert response.status_code == 403
    assert seeded("1001").no_answer_timeout == row.no_answer_timeout and published() is None


def test_a_new_extension_gets_a_password_and_is_published_for_provisioning(
    published, django_capture_on_commit_callbacks
) -> None:
    client, user = admin_client()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("console:extensions"), {"number": "1077", "name": "New Desk"})
    assert response.status_code == 302
    row = Extension.objects.get(number="1077")
    assert len(row.sip_password) >= 20 and row.seeded
    assert ExtensionChange.objects.get(extension=row).user == user
    item = next(e for e in published()["directory"]["extensions"] if e["ext"] == "1077")
    assert (item["owner"], item["sip_password"]) == ("New Desk", row.sip_password)
    # a number that exists, or that is no extension, is refused
    for number in ("1077", "0123", "12a"):
        response = client.post(reverse("console:extensions"), {"number": number, "name": "X"})
        assert response.status_code == 200 and 'class="errorlist' in response.content.decode(), number
    assert Extension.objects.filter(number="1077").count() == 1


def _wav_bytes(seconds: float = 1.0, rate: int = 8000, width: int = 2) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(np.zeros(int(rate * seconds) * width, dtype=np.uint8).tobytes())
    return out.getvalue()


def _upload(name: str, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="audio/wav")


def test_hold_music_upload_is_checked_stored_and_published(
    published, django_capture_on_commit_callbacks, settings, tmp_path
) -> None:
    settings.AIPBX_HOLD_MUSIC_DIR = tmp_path
    client, _ = admin_client()
    url = reverse("console:extension", args=["1004"])
    # a file that is no WAV, an 8-bit WAV, and one over 5 MB are refused; nothing is stored
    for name, data in (
        ("music.wav", b"RIFF nonsense"),
        ("music.mp3", _wav_bytes()),
        ("music.wav", _wav_bytes(width=1)),
        ("music.wav", _wav_bytes(seconds=330, rate=8000)),
    ):
        response = client.post(url, {"action": "music", "music": _upload(name, data)})
        assert response.status_code == 200 and 'class="errorlist' in response.content.decode(), name
    assert list(tmp_path.iterdir()) == [] and published() is None
    # a good one is stored and the directory names it
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"action": "music", "music": _upload("tune.wav", _wav_bytes())})
    assert response.status_code == 302
    row = seeded("1004")
    assert row.hold_music.startswith("1004-") and (tmp_path / row.hold_music).read_bytes() == _wav_bytes()
    item = next(e for e in published()["directory"]["extensions"] if e["ext"] == "1004")
    assert item["hold_music"] == row.hold_music


def test_publish_directory_command_publishes_the_seed(published) -> None:
    call_command("publish_directory", stdout=io.StringIO())
    payload = published()
    assert [e["ext"] for e in payload["directory"]["extensions"]] == ["1001", "1002", "1003", "1004"]


def test_the_admin_saves_through_the_audited_action(published, django_capture_on_commit_callbacks) -> None:
    from django.contrib.auth.models import User

    boss = User.objects.create_superuser("root", password="x-very-long-password-1")
    client = Client()
    client.force_login(boss)
    row = seeded("1001")
    data = form_of(row, no_answer_timeout=12)
    data.update({"hold_music": "", "changes-TOTAL_FORMS": 0, "changes-INITIAL_FORMS": 0})
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:calls_extension_change", args=[row.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert seeded("1001").no_answer_timeout == 12
    assert ExtensionChange.objects.get(extension=row).changes == {"no_answer_timeout": [10, 12]}
    assert next(e for e in published()["directory"]["extensions"] if e["ext"] == "1001")["no_answer_timeout"] == 12


def test_the_admin_sets_the_business_name_through_the_audited_action(
    published, django_capture_on_commit_callbacks
) -> None:
    from django.contrib.auth.models import User

    boss = User.objects.create_superuser("root", password="x-very-long-password-1")
    client = Client()
    client.force_login(boss)
    row = seeded("1002")
    data = form_of(row, business="Smile Tree Dental Clinic")
    data.update({"hold_music": "", "changes-TOTAL_FORMS": 0, "changes-INITIAL_FORMS": 0})
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:calls_extension_change", args=[row.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert seeded("1002").business == "Smile Tree Dental Clinic"
    assert ExtensionChange.objects.get(extension=row).changes == {"business": ["", "Smile Tree Dental Clinic"]}
    item = next(e for e in published()["directory"]["extensions"] if e["ext"] == "1002")
    assert item["business"] == "Smile Tree Dental Clinic"


def test_the_admin_refuses_what_the_ari_app_would_refuse(published) -> None:
    from django.contrib.auth.models import User

    boss = User.objects.create_superuser("root", password="x-very-long-password-1")
    client = Client()
    client.force_login(boss)
    row = seeded("1001")
    data = form_of(row, hold_music="../../etc/passwd.wav")
    data.update({"changes-TOTAL_FORMS": 0, "changes-INITIAL_FORMS": 0})
    response = client.post(reverse("admin:calls_extension_change", args=[row.pk]), data)
    assert response.status_code == 200 and "hold_music" in response.content.decode()
    assert seeded("1001").hold_music == "" and not ExtensionChange.objects.exists() and published() is None


def test_an_extension_added_in_the_admin_gets_a_password_and_is_published(
    published, django_capture_on_commit_callbacks
) -> None:
    from django.contrib.auth.models import User

    boss = User.objects.create_superuser("root", password="x-very-long-password-1")
    client = Client()
    client.force_login(boss)
    data = form_of(seeded("1001"), name="Lab", no_answer_timeout=8)
    data.update({"number": "1088", "changes-TOTAL_FORMS": 0, "changes-INITIAL_FORMS": 0})
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:calls_extension_add"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    row = Extension.objects.get(number="1088")
    assert row.seeded and len(row.sip_password) >= 20
    assert ExtensionChange.objects.get(extension=row).user == boss
    item = next(e for e in published()["directory"]["extensions"] if e["ext"] == "1088")
    assert (item["owner"], item["no_answer_timeout"], item["sip_password"]) == ("Lab", 8, row.sip_password)
