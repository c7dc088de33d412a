"""Caps on AI calls (ariapp.calls.limits) and how the app turns a call over a cap away.

The app is driven with recorded-shape StasisStart events and a fake ARI that records requests: the
refused caller is handed to the dialplan's busy message in the callee's language, the call's journal
(its future CDR line) says which cap refused it, and the event and metric count it.
"""

from __future__ import annotations

import asyncio
import json
import types
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from aipbx.directory import LANGUAGES
from ariapp import metrics
from ariapp.app import App
from ariapp.ari.client import BUSY_CONTEXT
from ariapp.ari.models import AriEvent
from ariapp.calls.limits import BUSY_MESSAGE, CallLimits, busy_exten, busy_sound, identifiable
from ariapp.errors import AriUnavailable
from ariapp.settings import Settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ari"


# --- the decision ----------------------------------------------------------------------------------
def test_a_caller_at_their_cap_is_refused_others_are_not() -> None:
    limits = CallLimits(per_caller=1, total=10)

    assert limits.refuse("1001", ["1001", "1002"]) == "per_caller"
    assert limits.refuse("1003", ["1001", "1002"]) is None
    assert CallLimits(per_caller=2, total=10).refuse("1001", ["1001", "1002"]) is None


def test_the_total_cap_refuses_everyone_once_reached() -> None:
    limits = CallLimits(per_caller=5, total=3)

    assert limits.refuse("1009", ["1001", "1002"]) is None
    assert limits.refuse("1009", ["1001", "1002", "1003"]) == "total"
    assert CallLimits(per_caller=1, total=2).refuse("1001", ["1001", "1002"]) == "per_caller"  # more specific


def test_zero_means_no_cap() -> None:
    assert CallLimits(per_caller=0, total=0).refuse("1001", ["1001"] * 500) is None


@pytest.mark.parametrize("caller", ["", "anonymous", "Anonymous", "unknown"])
def test_callers_without_a_number_only_meet_the_total_cap(caller: str) -> None:
    # one withheld number must not lock every other withheld caller out
    assert not identifiable(caller)
    assert CallLimits(per_caller=1, total=3).refuse(caller, [caller, caller]) is None
    assert CallLimits(per_caller=1, total=2).refuse(caller, [caller, caller]) == "total"


def test_every_language_has_a_busy_message_and_a_dialplan_extension() -> None:
    assert set(BUSY_MESSAGE) == set(LANGUAGES)
    assert [busy_exten(lang) for lang in LANGUAGES] == ["en", "ko"]
    assert busy_sound("ko-KR") == "ai-busy-ko-KR"


# --- the app turning a call away -------------------------------------------------------------------
class FakeAri:
    def __init__(self, fail: bool = False) -> None:
        self.requests: list[tuple] = []
        self.fail = fail

    async def turn_away(self, channel_id: str, language: str) -> bool:
        self.requests.append(("continue", channel_id, BUSY_CONTEXT, language))
        if self.fail:
            raise AriUnavailable("ARI POST /channels/x/continue: connection refused")
        return True

    async def hangup(self, channel_id: str, reason: str = "normal") -> bool:
        self.requests.append(("hangup", channel_id, reason))
        return True


def stasis_start(channel_id: str, caller: str, ext: str) -> AriEvent:
    data = json.loads((FIXTURES / "stasis_start_missed.json").read_text(encoding="utf-8"))
    data["args"] = ["missed", ext, "NOANSWER"]
    data["channel"].update(id=channel_id, caller={"name": "", "number": caller})
    data["application"] = "aipbx"
    return AriEvent.parse(data)


def sample(name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(generate_latest(metrics.REGISTRY).decode()):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


@pytest.fixture
def make_app(tmp_path: Path):
    extensions = tmp_path / "extensions.yaml"
    extensions.write_text(
        'extensions:\n  - {ext: "1002", owner: "Jiyoung Lee"}\n  - {ext: "1005", owner: "영업팀", language: ko-KR}\n',
        encoding="utf-8",
    )
    sessions = []

    def make(per_caller: int, total: int, ari: FakeAri) -> App:
        settings = Settings.from_env(
            {
                "DJANGO_SETTINGS_MODULE": "webconsole.settings.dev",  # no recordings key needed
                "AIPBX_ARI_PASSWORD": "x",
                "AIPBX_EXTENSIONS_FILE": str(extensions),
                "AIPBX_CDR_DIR": str(tmp_path / "cdr"),
                "AIPBX_STATE_DIR": str(tmp_path / "state"),
                "AIPBX_RECORDINGS_DIR": str(tmp_path / "rec"),
                "AIPBX_EXTRACT_AFTER_CALL": "0",
                "AIPBX_MAX_AI_CALLS_PER_CALLER": str(per_caller),
                "AIPBX_MAX_AI_CALLS": str(total),
            }
        )
        app = App(settings, engine=types.SimpleNamespace(end_of_turn_ms=300, pause_ms=120))
        app.ari = ari
        app._run_session = lambda session: sessions.append(session) or asyncio.sleep(0)  # stay "in progress"
        return app

    yield make
    for session in sessions:  # their recorders opened files
        session.recording.close()


def journal(app: App, call_id: str) -> dict:
    return json.loads((app.cdr.journal_dir / f"{call_id}.json").read_text(encoding="utf-8"))


def events(app: App, event_type: str) -> list[dict]:
    return [json.loads(e["data"]) | {"call_id": e["call_id"]} for e in app.events._pending if e["type"] == event_type]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_second_ai_call_from_one_caller_hears_the_busy_message_in_the_callees_language(make_app) -> None:
    ari = FakeAri()
    app = make_app(per_caller=1, total=10, ari=ari)
    before = sample("aipbx_ai_calls_rejected_total", limit="per_caller")
    # given an AI call from 1001 in progress
    app.on_event(stasis_start("c1", "1001", "1002"))
    assert set(app.sessions) == {"c1"}
    # when 1001 calls again (a Korean extension) and 1009 calls too
    app.on_event(stasis_start("c2", "1001", "1005"))
    app.on_event(stasis_start("c3", "1009", "1002"))
    await settle()
    # then only 1001's second call is turned away: to the Korean busy message, then 486
    assert set(app.sessions) == {"c1", "c3"}
    assert ari.requests == [("continue", "c2", BUSY_CONTEXT, "ko")]
    refused = journal(app, "c2")
    assert (refused["termination_reason"], refused["hangup_by"], refused["ai_handled"]) == (
        "limit_per_caller",
        "ai",
        False,
    )
    assert journal(app, "c1")["termination_reason"] is None
    [event] = events(app, "call.rejected")
    assert (event["call_id"], event["limit"], event["reason"]) == ("c2", "per_caller", "limit_per_caller")
    assert sample("aipbx_ai_calls_rejected_total", limit="per_caller") == before + 1


async def test_the_total_cap_turns_every_new_caller_away(make_app) -> None:
    ari = FakeAri()
    app = make_app(per_caller=0, total=2, ari=ari)
    before = sample("aipbx_ai_calls_rejected_total", limit="total")
    for n, caller in enumerate(("1001", "1001", "1009"), start=1):
        app.on_event(stasis_start(f"c{n}", caller, "1002"))
    await settle()
    assert set(app.sessions) == {"c1", "c2"}
    assert ari.requests == [("continue", "c3", BUSY_CONTEXT, "en")]
    assert journal(app, "c3")["termination_reason"] == "limit_total"
    assert sample("aipbx_ai_calls_rejected_total", limit="total") == before + 1


async def test_a_place_freed_by_an_ended_call_is_taken_again(make_app) -> None:
    ari = FakeAri()
    app = make_app(per_caller=1, total=10, ari=ari)
    app.on_event(stasis_start("c1", "1001", "1002"))
    app.sessions.pop("c1")  # the first call ended
    app.on_event(stasis_start("c2", "1001", "1002"))
    await settle()
    assert set(app.sessions) == {"c2"} and ari.requests == []


async def test_if_the_busy_message_cannot_be_reached_the_call_is_still_refused(make_app) -> None:
    ari = FakeAri(fail=True)
    app = make_app(per_caller=1, total=10, ari=ari)
    app.on_event(stasis_start("c1", "1001", "1002"))
    app.on_event(stasis_start("c2", "1001", "1002"))
    await settle()
    assert ari.requests == [("continue", "c2", BUSY_CONTEXT, "en"), ("hangup", "c2", "busy")]
    assert set(app.sessions) == {"c1"}


async def test_the_greeting_says_the_owners_name_as_the_voice_must(make_app) -> None:
    # the greeting is synthesised once per extension; the owner's Korean name in English letters is read
    # syllable by syllable ("Jiyoung" is heard as "G and" otherwise), the text itself stays as written
    said: list[str] = []

    class Voice:
        sample_rate = 8000

        async def synthesize_all(self, text: str) -> np.ndarray:
            said.append(text)
            return np.zeros(160, dtype=np.int16)

    app = make_app(per_caller=0, total=0, ari=FakeAri())
    app.engine = types.SimpleNamespace(voice=lambda language, name="": Voice())
    ext = app.directory.get("1002")
    await app.greeting_pcm(ext, 8000)
    assert "Jiyoung Lee" in ext.greeting_text
    assert said == [ext.greeting_text.replace("Jiyoung Lee", "Jee Young Lee")]
