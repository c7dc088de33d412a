"""Recordings at rest: a real AI call through Asterisk leaves only sealed files, which the console plays.

The test instance has a master key in its ``.env`` as ``make up`` would generate, so the ARI app
process seals the call when it ends. The console's audio view (the real Django view, on the test
database) decrypts it for an operator of the callee's extension, before and after a key rotation.
"""

from __future__ import annotations

import asyncio
import io
import os
import stat
import subprocess
import sys
import wave

import pytest
from django.test import Client

from aipbx import sealing
from softphone.analysis import speech_seconds
from stack.config import REPO
from tests.integration.audio_checks import Recordings, greeted, transcribe
from tests.integration.test_telephony import cdr_baseline, new_cdr
from tests.web.calls_factory import event, make_user
from webconsole.calls.ingest import apply_event

pytestmark = [pytest.mark.asterisk]


async def _ai_call(pbx, ariapp, phones) -> tuple[dict, float]:
    """An AI call that hangs up after the whole greeting; the CDR line and the seconds of speech heard."""
    before = await cdr_baseline(pbx, ariapp)
    async with phones("1001") as caller:
        call = await greeted(caller, "1004")  # 1004 is not registered: the AI answers at once
        heard = speech_seconds(call.received_audio())
        await call.hangup()
    (line,) = new_cdr(pbx, before)
    return line, heard


def test_an_ai_call_is_sealed_at_rest_and_plays_in_the_console_across_a_key_rotation(
    pbx, ariapp, phones, db, settings
) -> None:
    # given an instance whose .env holds a master key (as `make up` writes it)
    keys = pbx.cfg.recordings_keys
    assert keys is not None
    # when a caller talks to the AI and hangs up
    line, heard = asyncio.run(_ai_call(pbx, ariapp, phones))
    folder = pbx.cfg.recordings_dir / line["call_id"]

    # then only private sealed files are on disk, with no WAV header or transcript text in the clear
    names = sorted(path.name for path in folder.iterdir())
    assert names == ["callee.wav.enc", "caller.wav.enc", "metadata.json.enc", "mixed.wav.enc", "transcript.txt.enc"], (
        names
    )
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
        raw = path.read_bytes()
        assert raw.startswith(sealing.MAGIC) and b"RIFF" not in raw and b"WAVE" not in raw, path.name
        assert line["call_id"].encode() not in raw and b'"turns"' not in raw, path.name
    recordings = Recordings(pbx.cfg)
    metadata = recordings.metadata(line["call_id"])
    assert metadata["call"]["call_id"] == line["call_id"] and metadata["turns"][0]["speaker"] == "ai"
    mixed = recordings.read_bytes(line["call_id"], "mixed.wav")

    # when an operator of 1004 opens the call in the console (the call ingested from its events)
    apply_event(event("call.started", line["call_id"], caller="1001", callee="1004", start=line["start"]))
    apply_event(event("call.ended", line["call_id"], cdr=line))
    settings.AIPBX_RECORDINGS_DIR = pbx.cfg.recordings_dir
    settings.AIPBX_RECORDINGS_KEYRING = keys
    operator, stranger = Client(), Client()
    operator.force_login(make_user("op1004", extensions=("1004",)))
    stranger.force_login(make_user("op1003", extensions=("1003",)))
    url = f"/calls/{line['call_id']}/audio/mixed.wav"
    # then the audio is the exact WAV, private and uncached: the greeting, as long as the call
    audio = operator.get(url)
    assert audio.status_code == 200 and audio["Content-Type"] == "audio/wav"
    assert audio["Cache-Control"] == "private, no-store" and int(audio["Content-Length"]) == len(mixed)
    body = b"".join(audio.streaming_content)
    assert body == mixed and body[:4] == b"RIFF"
    with wave.open(io.BytesIO(body)) as wav:
        assert abs(wav.getnframes() / wav.getframerate() - line["billsec"]) < 1.0
    # the AI's side of the recording holds the greeting the phone heard (the same audio: a margin of a
    # few frames covers where 20 ms frames fall), and it says what the greeting says
    callee_pcm, rate = recordings.pcm(line["call_id"], "callee.wav")
    assert speech_seconds(callee_pcm, rate) > heard - 0.5, (speech_seconds(callee_pcm, rate), heard)
    assert "assistant" in asyncio.run(transcribe(callee_pcm, rate))
    # and an operator of another extension cannot fetch it
    assert stranger.get(url).status_code == 404

    # when a new master key is put first (rotation): the console gets both keys
    new_spec = sealing.new_key_spec("k2")
    rotated_env = f"{new_spec},{pbx.cfg.secrets[sealing.ENV_VAR]}"
    settings.AIPBX_RECORDINGS_KEYRING = sealing.Keyring.parse(rotated_env)
    # then the old recording still plays
    assert b"".join(operator.get(url).streaming_content) == mixed
    # and after `python -m aipbx.sealing rewrap` the files need only the new key
    rewrap = subprocess.run(
        [sys.executable, "-m", "aipbx.sealing", "rewrap", "--dir", str(folder)],
        cwd=REPO,
        env={**os.environ, sealing.ENV_VAR: rotated_env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert rewrap.returncode == 0 and "rewrapped 5 file(s) to key 'k2'" in rewrap.stdout, rewrap
    settings.AIPBX_RECORDINGS_KEYRING = sealing.Keyring.parse(new_spec)
    assert b"".join(operator.get(url).streaming_content) == mixed
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())
