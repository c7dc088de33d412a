"""Phone-to-phone calls in the console: the two-speaker transcript (live, or written after the call from the
recordings), what the owner's knowledge learned from the call, and the owner's learning policy."""

from __future__ import annotations

import asyncio
import json
import uuid
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.test import Client

from aipbx import sealing
from knowledge.actions import reset_retriever
from knowledge.models import ExtractionRun, KnowledgeItem, LearningPolicy, Status
from knowledge.tasks import run_extraction
from softphone.voice import speech
from tests.web.calls_factory import event, make_user
from webconsole.calls.ingest import apply_event
from webconsole.calls.models import Call, TranscriptSource, Turn
from webconsole.calls.tasks import run_transcription

pytestmark = pytest.mark.django_db(transaction=True)

START = "2026-11-25T01:00:00.000+00:00"
CALLER_SAYS = "Hi Jiyoung, this is Alex. Are you open on weekends?"
CALLEE_SAYS = "From next week we open on Saturdays from ten to two."


@pytest.fixture(autouse=True)
def recordings(settings: Any, tmp_path: Path) -> Path:
    settings.AIPBX_RECORDINGS_DIR = tmp_path
    settings.AIPBX_KNOWLEDGE_STORE, settings.AIPBX_KNOWLEDGE_PREFIX = "memory", f"kbtr{uuid.uuid4().hex[:8]}"
    settings.AIPBX_LLM, settings.AIPBX_LLM_ENV, settings.AIPBX_KNOWLEDGE_JUDGE = "local", {}, "auto"
    settings.AIPBX_STT_ENV = {}  # offline, the default models
    reset_retriever()
    return tmp_path


def phone_call(call_id: str, callee: str = "1002") -> None:
    """A phone-to-phone call as the ARI app reports it: started, answered by the callee, ended."""
    apply_event(event("call.started", call_id, caller="1001", callee=callee, start=START))
    apply_event(event("call.answered", call_id, answered_by=callee, ai=False))
    apply_event(
        event(
            "call.ended",
            call_id,
            cdr={
                "call_id": call_id,
                "caller": "1001",
                "callee": callee,
                "start": START,
                "answer": START,
                "end": "2026-11-25T01:00:20.000+00:00",
                "ai_handled": False,
                "answered_by": callee,
                "billsec": 20.0,
                "duration": 20.0,
                "hangup_by": "caller",
                "termination_reason": "caller_hangup",
                "recording_dir": f"/recordings/{call_id}",
            },
        )
    )


def write_track(path: Path, pieces: list[tuple[float, np.ndarray]], seconds: float) -> None:
    """An 8 kHz 16-bit WAV, silent but for ``pieces`` (start second, speech) — as MixMonitor leaves it."""
    track = np.zeros(int(seconds * 8000), dtype=np.int16)
    for start, pcm in pieces:
        at = int(start * 8000)
        track[at : at + len(pcm)] = pcm[: len(track) - at]
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(track.astype("<i2").tobytes())


def recorded_call(root: Path, call_id: str, keys: sealing.Keyring | None) -> None:
    """The call's folder as the ARI app leaves it for a call it could not transcribe live (sealed)."""
    folder = root / call_id
    folder.mkdir()
    caller, callee = asyncio.run(speech(CALLER_SAYS)), asyncio.run(speech(CALLEE_SAYS))
    write_track(folder / "caller.wav", [(0.5, caller)], 12.0)
    write_track(folder / "callee.wav", [(5.0, callee)], 12.0)
    (folder / "metadata.json").write_text(json.dumps({"call": {"call_id": call_id, "callee": "1002"}, "turns": []}))
    (folder / "transcript.txt").write_text("")
    if keys is not None:
        sealing.seal_directory(folder, keys)


def test_a_live_transcript_of_both_parties_is_stored_with_times_and_confidence() -> None:
    phone_call("live-1")
    apply_event(event("transcript", "live-1", speaker="callee", text="Jiyoung speaking", final=False, t=1.0))
    apply_event(
        event(
            "transcript",
            "live-1",
            speaker="callee",
            text="Jiyoung speaking.",
            final=True,
            t=1.0,
            end=2.2,
            confidence=0.91,
        )
    )
    apply_event(
        event(
            "transcript", "live-1", speaker="caller", text="Hi, it's Alex.", final=True, t=2.6, end=3.5, confidence=0.8
        )
    )
    apply_event(event("call.transcription", "live-1", mode="live"))
    call = Call.objects.get(call_id="live-1")
    assert call.transcript_source == TranscriptSource.LIVE
    turns = list(call.turns.order_by("t").values_list("speaker", "t", "end", "text", "confidence"))
    assert turns == [("callee", 1.0, 2.2, "Jiyoung speaking.", 0.91), ("caller", 2.6, 3.5, "Hi, it's Alex.", 0.8)]


@pytest.mark.slow
def test_a_call_over_the_live_budget_is_transcribed_from_its_sealed_recordings_and_learned_from(
    recordings: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from knowledge.tasks import extract_knowledge_task

    queued: list[str] = []  # the extraction the task queues is run here, not by a worker of another test
    monkeypatch.setattr(extract_knowledge_task, "delay", queued.append)
    # given a recorded phone call the ARI app queued for transcription after the call
    keys = sealing.Keyring.parse(sealing.new_key_spec("k1"))
    settings.AIPBX_RECORDINGS_KEYRING = keys
    phone_call("post-1")
    apply_event(event("call.transcription", "post-1", mode="post_call"))
    assert Call.objects.get(call_id="post-1").transcript_source == TranscriptSource.QUEUED
    recorded_call(recordings, "post-1", keys)
    # when the worker's task runs (the extraction it queues is run here directly)
    summary = run_transcription("post-1")
    # then both parties' words are the call's transcript, in time order, labelled by speaker
    assert summary["status"] == "done" and summary["lines"] == 2
    call = Call.objects.get(call_id="post-1")
    assert call.transcript_source == TranscriptSource.POST_CALL
    caller, callee = call.turns.order_by("t")
    assert (caller.speaker, callee.speaker) == ("caller", "callee")
    assert "open on weekends" in caller.text.lower() and "saturday" in callee.text.lower()
    assert 0.0 <= caller.t < 1.0 and 4.4 <= callee.t < 5.5 and callee.end > callee.t + 2
    assert callee.confidence is not None and 0 < callee.confidence <= 1
    # and the sealed files on disk say the same (nothing left in clear)
    folder = recordings / "post-1"
    assert not (folder / "metadata.json").exists() and (folder / "metadata.json.enc").exists()
    metadata = json.loads(sealing.read_text(folder, "metadata.json", keys))
    assert metadata["transcription"]["mode"] == "post_call" and len(metadata["turns"]) == 2
    transcript = sealing.read_text(folder, "transcript.txt", keys).lower()
    assert "callee:" in transcript and "next week we open on saturdays" in transcript, transcript  # "from"/"for"
    # a second delivery of the task does nothing
    assert run_transcription("post-1")["reason"] == "already transcribed"
    assert Turn.objects.filter(call=call).count() == 2
    # when the extraction it queued runs: only the owner's words became 1002's knowledge, published at once
    assert queued == ["post-1"]
    extracted = run_extraction("post-1")
    assert extracted["status"] == "done", extracted
    item = KnowledgeItem.objects.get(source_call_id="post-1")  # (other tests' imports may also land for 1002)
    assert item.owner == "1002" and item.source_speaker == "callee" and item.status == Status.APPROVED
    assert "saturday" in item.text.lower() and item.source_span["start_s"] == callee.t


def test_the_transcript_task_waits_for_the_calls_end_and_says_so_when_it_never_comes(recordings: Path) -> None:
    from knowledge.transcripts import CallNotFinished
    from webconsole.calls.tasks import transcribe_call_task

    # given a call whose end the console has not stored (the ARI app queues the task as it publishes it)
    apply_event(event("call.started", "no-end", caller="1001", callee="1002", start=START))
    # then the task waits for it rather than guessing the callee (and the language) from the files
    with pytest.raises(CallNotFinished):
        run_transcription("no-end")
    # and when it never comes, the waits end (eagerly: at once) and the console shows the failure
    summary = transcribe_call_task.apply(args=["no-end"]).get()
    assert summary["status"] == "failed" and "has not stored the end of call no-end" in summary["reason"]
    assert Call.objects.get(call_id="no-end").transcript_source == TranscriptSource.FAILED


def test_unreadable_recordings_mark_the_transcript_failed_and_store_nothing(recordings: Path) -> None:
    phone_call("post-bad")
    (recordings / "post-bad").mkdir()
    (recordings / "post-bad" / "caller.wav").write_bytes(b"not a wav")
    summary = run_transcription("post-bad")
    assert summary["status"] == "failed" and "caller.wav cannot be read" in summary["reason"]
    call = Call.objects.get(call_id="post-bad")
    assert call.transcript_source == TranscriptSource.FAILED and not call.turns.exists()


def test_the_call_page_shows_both_speakers_playable_from_each_line_and_what_was_learned(recordings: Path) -> None:
    # given a live-transcribed call and the fact learned from it
    phone_call("page-1")
    apply_event(
        event(
            "transcript",
            "page-1",
            speaker="caller",
            text="Are you open on weekends?",
            final=True,
            t=0.6,
            end=2.0,
            confidence=0.8,
        )
    )
    apply_event(
        event("transcript", "page-1", speaker="callee", text=CALLEE_SAYS, final=True, t=4.4, end=7.1, confidence=0.9)
    )
    apply_event(event("call.transcription", "page-1", mode="live"))
    run_extraction("page-1")  # from the turns stored above: the worker reads no file of the call
    item = KnowledgeItem.objects.get(source_call_id="page-1")
    client = Client()
    client.force_login(make_user("op1002", extensions=("1002",)))
    # when
    page = client.get("/calls/page-1/").content.decode()
    # then
    assert "Live, during the call" in page
    assert '<a class="at" href="#t=0.6"' in page and '<a class="at" href="#t=4.4"' in page
    assert '<b class="who">callee</b>' in page and '<b class="who">caller</b>' in page
    assert f'data-item="{item.pk}"' in page and "Retract" in page and "Exclude this call from learning" in page
    # when the owner takes the call back out of learning
    response = client.post("/knowledge/calls/page-1/exclude/", follow=True)
    # then its fact is gone (from the index too) and the call is never learned from again
    assert "1 item removed" in response.content.decode()
    assert not KnowledgeItem.objects.filter(source_call_id="page-1").exists()
    assert ExtractionRun.objects.get(call_id="page-1").status == ExtractionRun.RunStatus.EXCLUDED
    assert run_extraction("page-1")["status"] == "excluded"
    assert not KnowledgeItem.objects.filter(source_call_id="page-1").exists()


def test_an_operator_of_another_extension_cannot_exclude_the_call() -> None:
    phone_call("other-1", callee="1003")
    client = Client()
    client.force_login(make_user("op1002", extensions=("1002",)))
    assert client.post("/knowledge/calls/other-1/exclude/").status_code == 404
    assert not ExtractionRun.objects.exists()


def test_owners_set_their_learning_policy_in_the_console_and_only_their_own() -> None:
    client = Client()
    client.force_login(make_user("op1002", extensions=("1002",)))
    page = client.get("/knowledge/learning/").content.decode()
    assert 'data-owner="1002"' in page and 'data-owner="1003"' not in page
    assert "recorded, transcribed, learned" in page  # the PBX's recording mode from extensions.yaml
    response = client.post(
        "/knowledge/learning/",
        {"owner": "1002", "1002-auto_publish": "on", "1002-publish_threshold": "0.9"},
        follow=True,
    )
    assert "saved" in response.content.decode()
    policy = LearningPolicy.objects.get(owner="1002")
    assert (policy.learning, policy.auto_publish, policy.publish_threshold) == (False, True, 0.9)
    assert (
        client.post(
            "/knowledge/learning/", {"owner": "1003", "1003-learning": "on", "1003-publish_threshold": "0.5"}
        ).status_code
        == 404
    )
    bad = client.post("/knowledge/learning/", {"owner": "1002", "1002-publish_threshold": "7"}, follow=True)
    assert "not saved" in bad.content.decode() and LearningPolicy.objects.get(owner="1002").publish_threshold == 0.9
