"""Tests for ariapp.calls.tracker: scripted ARI event timelines in, exactly one CDR line out."""

from __future__ import annotations

import json
import wave
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ariapp.ari.models import AriEvent
from ariapp.calls import tracker as tracker_module
from ariapp.calls.tracker import CallTracker, termination_reason, turns_with_words
from ariapp.cdr import CallRecord, CdrWriter
from contract import CallEnded, Event

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ari"
CALL_ID = "1764081097.11"


def raw(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


CALLER = raw("channel_varset_call_id")["channel"]
PEER = raw("dial_answer")["peer"]
MEDIA = {"id": f"{CALL_ID}-media", "name": "UnicastRTP/127.0.0.1:40000-00000007", "state": "Up"}


def at(clock: str) -> str:
    """An ARI timestamp on the fixture day, e.g. at("14:32:10.734")."""
    return f"2026-11-25T{clock}+0000"


def event(name: str, *, channel: dict | None = None, **fields: Any) -> AriEvent:
    data = raw(name)
    if channel is not None:
        data["channel"] = channel
    data.update(fields)
    return AriEvent.parse(data)


def varset(channel: dict = CALLER, value: str = CALL_ID, variable: str = "__AIPBX_CALL_ID") -> AriEvent:
    return event("channel_varset_call_id", channel=channel, value=value, variable=variable)


def dial(status: str, clock: str) -> AriEvent:
    return event("dial_answer", dialstatus=status, timestamp=at(clock))


def hangup_request(channel: dict, clock: str) -> AriEvent:
    return event("channel_hangup_request", channel=channel, timestamp=at(clock))


def destroyed(channel: dict, clock: str, cause: int = 16) -> AriEvent:
    return event("channel_destroyed", channel=channel, timestamp=at(clock), cause=cause)


def stasis_start() -> AriEvent:
    return event("stasis_start_missed")


def write_wavs(directory: Path, seconds: float = 0.5) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tone = (3000 * np.sin(2 * np.pi * 440 * np.arange(int(8000 * seconds)) / 8000)).astype("<i2")
    for name in ("caller.wav", "callee.wav", "mixed.wav"):
        with wave.open(str(directory / name), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(tone.tobytes())


class Spawner:
    """Stands in for App._spawn: keeps the coroutines so the test runs them to completion."""

    def __init__(self) -> None:
        self.pending: list[Coroutine] = []
        self.spawned = 0

    def __call__(self, coro: Coroutine) -> None:
        self.pending.append(coro)
        self.spawned += 1

    async def drain(self) -> None:
        while self.pending:
            await self.pending.pop(0)


class Harness:
    def __init__(self, base: Path) -> None:
        self.cdr_dir, self.state_dir, self.recordings = base / "cdr", base / "state", base / "recordings"
        self.spawn = Spawner()
        self.tracker = CallTracker(CdrWriter(self.cdr_dir, self.state_dir), self.recordings, self.spawn)

    def play(self, *events: AriEvent) -> None:
        for item in events:
            self.tracker.on_event(item)

    def lines(self) -> list[dict]:
        return [
            json.loads(line)
            for path in sorted(self.cdr_dir.glob("cdr-*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines()
        ]

    def journals(self) -> list[str]:
        return sorted(p.stem for p in (self.state_dir / "calls").glob("*.json"))


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


async def test_answered_phone_call_callee_hangs_up(h: Harness) -> None:
    # given 1001 calls 1002, who answers after 5 s; MixMonitor has written its files
    h.play(varset(), dial("", "14:31:37.200"), dial("RINGING", "14:31:37.300"), dial("ANSWER", "14:31:42.380"))
    assert h.journals() == [CALL_ID]
    write_wavs(h.recordings / CALL_ID)

    # when 1002 hangs up, and Asterisk then hangs up and destroys the caller
    h.play(
        hangup_request(PEER, "14:32:10.501"),
        destroyed(PEER, "14:32:10.600"),
        hangup_request(CALLER, "14:32:10.650"),
        destroyed(CALLER, "14:32:10.734"),
    )
    await h.spawn.drain()

    # then one CDR line tells the story
    [cdr] = h.lines()
    assert cdr["call_id"] == CALL_ID
    assert (cdr["caller"], cdr["callee"]) == ("1001", "1002")
    assert cdr["termination_reason"] == "callee_hangup"
    assert (cdr["answered_by"], cdr["hangup_by"], cdr["dial_status"]) == ("1002", "callee", "ANSWER")
    assert (cdr["start"], cdr["answer"], cdr["end"]) == (
        "2026-11-25T14:31:37.123+00:00",
        "2026-11-25T14:31:42.380+00:00",
        "2026-11-25T14:32:10.734+00:00",
    )
    assert (cdr["duration"], cdr["billsec"], cdr["hangup_cause"]) == (33.611, 28.354, 16)
    assert cdr["ai_handled"] is False
    assert cdr["recording_dir"] == str(h.recordings / CALL_ID)
    # and the recording directory has its transcript (empty: no speech recognition) and metadata
    metadata = json.loads((h.recordings / CALL_ID / "metadata.json").read_text())
    assert metadata["call"]["termination_reason"] == "callee_hangup"
    assert metadata["files"] == {"caller.wav": 0.5, "callee.wav": 0.5, "mixed.wav": 0.5}
    assert (h.recordings / CALL_ID / "transcript.txt").read_text() == ""
    assert h.journals() == []
    assert (h.tracker.calls, h.tracker.finished) == ({}, 1)


def test_in_progress_call_survives_a_crash_in_the_journal(h: Harness) -> None:
    h.play(varset(), dial("RINGING", "14:31:37.300"), dial("ANSWER", "14:31:42.380"))

    [pending] = CdrWriter(h.cdr_dir, h.state_dir).pending()

    assert (pending.call_id, pending.answered_by, pending.legs) == (CALL_ID, "1002", [PEER["id"]])


async def test_caller_cancels_while_ringing(h: Harness) -> None:
    # given
    h.play(varset(), dial("", "14:31:37.200"), dial("RINGING", "14:31:37.300"))

    # when the caller gives up after 4 s
    h.play(
        hangup_request(CALLER, "14:31:41.000"),
        dial("CANCEL", "14:31:41.010"),
        destroyed(PEER, "14:31:41.020"),
        destroyed(CALLER, "14:31:41.100"),
    )
    await h.spawn.drain()

    # then
    [cdr] = h.lines()
    assert cdr["termination_reason"] == "caller_cancelled"
    assert (cdr["answer"], cdr["answered_by"], cdr["recording_dir"]) == (None, None, None)
    assert (cdr["hangup_by"], cdr["dial_status"]) == ("caller", "CANCEL")
    assert (cdr["duration"], cdr["billsec"]) == (3.977, 0.0)
    assert not h.recordings.exists()


async def test_ai_call_waits_for_the_session_before_writing_the_cdr(h: Harness) -> None:
    # given 1002 did not answer within 10 s and the AI took the call
    h.play(
        varset(),
        dial("RINGING", "14:31:37.300"),
        dial("NOANSWER", "14:31:47.380"),
        destroyed(PEER, "14:31:47.390"),
        stasis_start(),
    )
    h.tracker.session_started(CALL_ID)
    record = h.tracker.calls[CALL_ID]
    record.answer, record.answered_by, record.codec = "2026-11-25T14:31:47.900+00:00", "ai", "ulaw"

    # when the caller hangs up while the session is still tearing down
    h.play(hangup_request(CALLER, "14:32:20.000"), destroyed(CALLER, "14:32:20.100"))
    await h.spawn.drain()

    # then no CDR yet: the session still owns the call
    assert h.lines() == []
    assert h.journals() == [CALL_ID]

    # when the session finishes with its report
    write_wavs(h.recordings / CALL_ID)
    record.hangup_by, record.recording_dir = "caller", str(h.recordings / CALL_ID)
    turns = [
        {"t": 0.0, "speaker": "ai", "text": "Hello, this is the AI assistant.", "interrupted": True},
        {"t": 3.5, "speaker": "caller", "text": "Please call me back."},
    ]
    h.tracker.session_finished(CALL_ID, {"turns": turns, "extra": {"barge_ins": 1}})
    await h.spawn.drain()

    # then exactly one CDR line, and the transcript
    [cdr] = h.lines()
    assert cdr["ai_handled"] is True
    assert (cdr["answered_by"], cdr["termination_reason"], cdr["dial_status"]) == ("ai", "caller_hangup", "NOANSWER")
    assert (cdr["billsec"], cdr["codec"]) == (32.2, "ulaw")
    assert (h.recordings / CALL_ID / "transcript.txt").read_text() == (
        "[00:00.00] ai: Hello, this is the AI assistant. [interrupted]\n[00:03.50] caller: Please call me back.\n"
    )
    assert json.loads((h.recordings / CALL_ID / "metadata.json").read_text())["barge_ins"] == 1
    h.tracker.session_finished(CALL_ID, {"turns": []})
    await h.spawn.drain()
    assert len(h.lines()) == 1


async def test_ai_hangs_up_before_the_caller_channel_is_destroyed(h: Harness) -> None:
    h.play(varset(), dial("NOANSWER", "14:31:47.380"), stasis_start())
    h.tracker.session_started(CALL_ID)
    h.tracker.calls[CALL_ID].hangup_by = "ai"

    h.tracker.session_finished(CALL_ID, {"turns": []})
    await h.spawn.drain()
    assert h.lines() == []
    h.play(hangup_request(CALLER, "14:32:00.000"), destroyed(CALLER, "14:32:00.050"))
    await h.spawn.drain()

    [cdr] = h.lines()
    assert (cdr["termination_reason"], cdr["ai_handled"]) == ("ai_hangup", True)


async def test_finish_orphan_after_app_restart(h: Harness) -> None:
    # given an AI call journaled by the previous run of the app
    CdrWriter(h.cdr_dir, h.state_dir).journal(
        CallRecord(CALL_ID, "1001", "1002", "2026-11-25T14:31:37.123+00:00", ai_handled=True)
    )
    [record] = h.tracker.cdr.pending()

    # when
    await h.tracker.finish_orphan(record, "app_restart")
    await h.tracker.finish_orphan(record, "app_restart")

    # then
    [cdr] = h.lines()
    assert cdr["termination_reason"] == "app_restart"
    assert cdr["end"] is not None
    assert h.journals() == []
    assert h.tracker.finished == 1


async def test_asterisk_shutting_down_under_an_answered_call_is_the_reason(h: Harness) -> None:
    # given an answered phone-to-phone call
    h.play(varset(), dial("ANSWER", "14:31:42.380"))
    # when Asterisk shuts down: a soft hang-up request with AST_SOFTHANGUP_SHUTDOWN on every channel
    shutdown = event("channel_hangup_request", channel=PEER, timestamp=at("14:32:10.501"), cause=4, soft=True)
    assert shutdown.shutdown_hangup
    h.play(shutdown, destroyed(PEER, "14:32:10.600"), destroyed(CALLER, "14:32:10.734", cause=3))
    await h.spawn.drain()
    # then the CDR line says so, not that the callee hung up
    [cdr] = h.lines()
    assert cdr["termination_reason"] == "asterisk_restart"


def test_only_asterisks_shutdown_flag_is_a_shutdown_hangup() -> None:
    assert not hangup_request(CALLER, "14:32:10.501").shutdown_hangup  # a BYE: Q.850 cause 16
    ours = event("channel_hangup_request", channel=CALLER, timestamp=at("14:32:10.501"), cause=16, soft=True)
    assert not ours.shutdown_hangup  # our own DELETE /channels (reason normal)


async def test_a_call_gone_without_an_event_is_finished_once_with_the_reason(h: Harness) -> None:
    # given a call in progress whose ChannelDestroyed never arrived (Asterisk restarted meanwhile)
    h.play(varset(), dial("ANSWER", "14:31:42.380"))
    # when the app finds it gone after reconnecting, twice (two reconnections in a row)
    h.tracker.lost(CALL_ID, "asterisk_restart")
    h.tracker.lost(CALL_ID, "events_lost")
    await h.spawn.drain()
    # then one CDR line with the first reason and an end time, and the journal is gone
    [cdr] = h.lines()
    assert cdr["termination_reason"] == "asterisk_restart" and cdr["end"] is not None
    assert h.journals() == []


async def test_missing_mixmonitor_files_delay_the_cdr_only_boundedly(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracker_module, "MIXMONITOR_SETTLE_S", 0.05)
    h.play(
        varset(),
        dial("ANSWER", "14:31:42.380"),
        hangup_request(CALLER, "14:31:50.000"),
        destroyed(CALLER, "14:31:50.100"),
    )

    await h.spawn.drain()

    [cdr] = h.lines()
    assert cdr["termination_reason"] == "caller_hangup"
    metadata = json.loads((h.recordings / CALL_ID / "metadata.json").read_text())
    assert metadata["files"] == {"caller.wav": None, "callee.wav": None, "mixed.wav": None}


async def test_events_for_unknown_channels_are_ignored(h: Harness) -> None:
    stranger = {**CALLER, "id": "1764081200.40", "name": "PJSIP/1004-00000009"}

    h.play(
        varset(stranger, value="some-other-call"),
        varset(variable="CALLERID(name)", value=CALL_ID),
        dial("ANSWER", "14:31:42.380"),
        hangup_request(stranger, "14:31:43.000"),
        destroyed(stranger, "14:31:44.000"),
        destroyed(MEDIA, "14:31:44.000"),
        stasis_start(),
        AriEvent.parse({"type": "ChannelDtmfReceived", "digit": "1", "channel": CALLER}),
    )
    await h.spawn.drain()

    assert h.tracker.calls == {}
    assert h.journals() == []
    assert h.lines() == []
    assert h.spawn.spawned == 0


@pytest.mark.parametrize("variable", ["AIPBX_CALL_ID", "_AIPBX_CALL_ID", "__AIPBX_CALL_ID"])
def test_call_is_born_from_its_own_call_id_variable(h: Harness, variable: str) -> None:
    h.play(varset(variable=variable))

    record = h.tracker.calls[CALL_ID]
    assert (record.caller, record.callee, record.start) == ("1001", "1002", "2026-11-25T14:31:37.123+00:00")


def test_inheriting_leg_joins_the_call_and_media_hangup_is_not_the_callee(h: Harness) -> None:
    h.play(varset(), varset(MEDIA), hangup_request(MEDIA, "14:31:50.000"))
    assert h.tracker.calls[CALL_ID].legs == [MEDIA["id"]]
    assert h.tracker.calls[CALL_ID].hangup_by is None

    h.play(varset(PEER), hangup_request(PEER, "14:31:51.000"), hangup_request(CALLER, "14:31:51.100"))

    assert h.tracker.call_of(PEER["id"]) is h.tracker.calls[CALL_ID]
    assert h.tracker.calls[CALL_ID].hangup_by == "callee"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"termination_reason": "app_restart", "ai_handled": True, "hangup_by": "caller"}, "app_restart"),
        ({"ai_handled": True, "hangup_by": "caller"}, "caller_hangup"),
        ({"ai_handled": True, "hangup_by": "ai"}, "ai_hangup"),
        ({"ai_handled": True, "hangup_by": "system"}, "error"),
        ({"ai_handled": True}, "error"),
        ({"answer": "2026-11-25T14:31:42+00:00", "hangup_by": "callee"}, "callee_hangup"),
        ({"answer": "2026-11-25T14:31:42+00:00", "hangup_by": "caller"}, "caller_hangup"),
        ({"dial_status": "RINGING"}, "caller_cancelled"),
        ({"dial_status": "CANCEL"}, "caller_cancelled"),
        ({}, "caller_cancelled"),
        ({"dial_status": "BUSY"}, "not_answered"),
        ({"dial_status": "NOANSWER"}, "not_answered"),
        ({"dial_status": "CHANUNAVAIL"}, "not_answered"),
    ],
)
def test_termination_reason(fields: dict, expected: str) -> None:
    assert termination_reason(CallRecord("c", "1001", "1002", "2026-11-25T14:31:37+00:00", **fields)) == expected


def test_call_ended_counts_the_turns_with_words_so_the_console_can_tell_it_has_them_all() -> None:
    turns = [{"speaker": "ai", "text": "Hello."}, {"speaker": "ai", "text": " "}, {"speaker": "caller", "text": "Hi"}]
    assert turns_with_words({"turns": turns}) == 2
    assert turns_with_words({"turns": []}) == 0 and turns_with_words(None) is None  # no report: nothing to count


async def test_with_master_keys_the_call_is_sealed_before_its_cdr_line_and_call_ended(tmp_path: Path) -> None:
    from aipbx import sealing

    # given a tracker with a master key, and a listener that looks at the directory when call.ended comes
    keys = sealing.Keyring.parse(sealing.new_key_spec("k1"))
    seen_at_end: list[list[str]] = []
    recordings = tmp_path / "recordings"

    def publish(call_id: str, event: Event) -> None:
        if isinstance(event, CallEnded):
            seen_at_end.append(sorted(p.name for p in (recordings / call_id).iterdir()))
            assert len(list((tmp_path / "cdr").glob("cdr-*.jsonl"))) == 1  # the CDR line is already written

    spawn = Spawner()
    tracker = CallTracker(CdrWriter(tmp_path / "cdr", tmp_path / "state"), recordings, spawn, publish, keys=keys)
    for item in (varset(), dial("ANSWER", "14:31:42.380")):
        tracker.on_event(item)
    write_wavs(recordings / CALL_ID)
    # when the call ends
    for item in (hangup_request(CALLER, "14:32:10.650"), destroyed(CALLER, "14:32:10.734")):
        tracker.on_event(item)
    await spawn.drain()
    # then readers only ever saw sealed files, and they open to what was recorded
    assert seen_at_end == [
        ["callee.wav.enc", "caller.wav.enc", "metadata.json.enc", "mixed.wav.enc", "transcript.txt.enc"]
    ]
    metadata = json.loads(sealing.read_text(recordings / CALL_ID, "metadata.json", keys))
    assert metadata["files"] == {"caller.wav": 0.5, "callee.wav": 0.5, "mixed.wav": 0.5}
    with sealing.open_recording(recordings / CALL_ID, "mixed.wav", keys) as handle, wave.open(handle) as wav:
        assert wav.getnframes() == 4000


async def test_a_failed_seal_is_counted_and_leaves_the_audio_in_clear_for_the_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from prometheus_client import REGISTRY

    from aipbx import sealing, sealing_sweep

    # given a tracker with a master key, and a disk that refuses the sealed copy of mixed.wav
    keys = sealing.Keyring.parse(sealing.new_key_spec("k1"))
    recordings = tmp_path / "recordings"
    real = sealing.seal_file

    def no_room_for_mixed(path: Path, keys: sealing.Keyring, chunk_size: int = sealing.CHUNK_SIZE) -> Path:
        if path.name == "mixed.wav":
            raise OSError(28, "No space left on device")
        return real(path, keys, chunk_size)

    monkeypatch.setattr(sealing, "seal_file", no_room_for_mixed)
    failures = REGISTRY.get_sample_value("aipbx_recordings_seal_failures_total") or 0.0
    ended: list[str] = []
    spawn = Spawner()
    tracker = CallTracker(
        CdrWriter(tmp_path / "cdr", tmp_path / "state"),
        recordings,
        spawn,
        lambda call_id, event: ended.append(event.TYPE),
        keys=keys,
    )
    for item in (varset(), dial("ANSWER", "14:31:42.380")):
        tracker.on_event(item)
    write_wavs(recordings / CALL_ID)
    # when the call ends
    for item in (hangup_request(CALLER, "14:32:10.650"), destroyed(CALLER, "14:32:10.734")):
        tracker.on_event(item)
    await spawn.drain()
    # then the failure is counted and logged, the call still ends (CDR line, call.ended) ...
    assert REGISTRY.get_sample_value("aipbx_recordings_seal_failures_total") == failures + 1
    assert "could not seal every recording of" in caplog.text and "mixed.wav" in caplog.text
    assert "call.ended" in ended and len(list((tmp_path / "cdr").glob("cdr-*.jsonl"))) == 1
    # ... and the audio that could not be sealed is still there, in clear, whole
    folder = recordings / CALL_ID
    assert sorted(p.name for p in folder.iterdir()) == [
        "callee.wav.enc",
        "caller.wav.enc",
        "metadata.json.enc",
        "mixed.wav",
        "transcript.txt.enc",
    ]
    with wave.open(str(folder / "mixed.wav")) as wav:
        assert wav.getnframes() == 4000
    # and the sweep seals it once the disk has room
    monkeypatch.setattr(sealing, "seal_file", real)
    assert sealing_sweep.sweep(recordings, keys, settle_s=0.0).sealed == 1
    with sealing.open_recording(folder, "mixed.wav", keys) as handle, wave.open(handle) as wav:
        assert wav.getnframes() == 4000
