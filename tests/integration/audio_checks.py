"""What a phone heard, judged the way a person would: by frequency, by speech, by words.

Speech recognition here runs in the test process on the audio the test phone recorded, never on
anything the ARI app says about itself. Loudness and tone checks live in :mod:`softphone.analysis`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from aipbx import sealing
from aipbx.audio.resample import resample
from softphone.analysis import silent_tail, speech_seconds
from softphone.voice import speech  # noqa: F401 - what the test phone says


@functools.lru_cache(maxsize=2)
def _stt(model: str):
    from aipbx.providers.local import WhisperSTT

    return WhisperSTT(model=model)


async def transcribe(pcm: np.ndarray, rate: int = 8000, model: str = "tiny.en", hints: Sequence[str] = ()) -> str:
    """What an independent listener hears in ``pcm`` (English), lower case; ``hints``: names the
    listener knows (a caller of a clinic knows its name and street), told to the recogniser."""
    stt = _stt(model)
    result = await stt.transcribe(resample(pcm, rate, 16000), "en", hints)
    return result.text.lower()


class Recordings:
    """A test's view of one instance's call files, read like the console does (sealed at rest).

    Tests never open ``recordings/<call_id>/*.wav`` directly: with the instance's master key the
    files on disk are ``*.enc``, and this reader decrypts them (or reads a clear file).
    """

    def __init__(self, cfg) -> None:
        self.root: Path = cfg.recordings_dir
        self.keys = cfg.recordings_keys

    def folder(self, call_id: str) -> Path:
        return self.root / call_id

    def exists(self, call_id: str, name: str) -> bool:
        return sealing.exists(self.folder(call_id), name)

    def read_bytes(self, call_id: str, name: str) -> bytes:
        return sealing.read_bytes(self.folder(call_id), name, self.keys)

    def metadata(self, call_id: str) -> dict:
        return json.loads(sealing.read_text(self.folder(call_id), "metadata.json", self.keys))

    def pcm(self, call_id: str, name: str) -> tuple[np.ndarray, int]:
        """Mono 16-bit samples and the rate of a recorded WAV."""
        with sealing.open_recording(self.folder(call_id), name, self.keys) as handle, wave.open(handle) as wav:
            data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
            channels, rate = wav.getnchannels(), wav.getframerate()
        if channels > 1:
            data = data.reshape(-1, channels).mean(axis=1).astype(np.int16)
        return data, rate

    def seconds(self, call_id: str, name: str) -> float:
        pcm, rate = self.pcm(call_id, name)
        return len(pcm) / rate


async def until(predicate, timeout: float, what: str, interval: float = 0.1):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def until_quiet(call, since: int, timeout: float = 25.0, what: str = "the end of the answer") -> None:
    """Wait for a second of quiet after what the call heard from sample ``since`` on.

    A timeout says what was heard meanwhile (hold music, a message that never ends, a repeated
    prompt), so a failure in CI tells its cause without a rerun.
    """
    try:
        await until(lambda: silent_tail(call.received_audio(), 1.0), timeout, what)
    except AssertionError as exc:
        heard = call.received_audio()[since:]
        raise AssertionError(
            f"{exc}; heard {speech_seconds(heard):.1f} s of sound since: {await transcribe(heard)!r}"
        ) from None


async def until_greeting(call, seconds: float = 2.5, timeout: float = 20.0) -> None:
    """Wait until the call has heard ``seconds`` of speech (the greeting). A failure says whether the
    call ended first (how, with which SIP status, how long after the answer) or stayed up silent, so a
    rare failure in CI tells its cause without a rerun."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline and not call.ended.is_set():
        if speech_seconds(call.received_audio()) > seconds:
            return
        await asyncio.sleep(0.1)
    if speech_seconds(call.received_audio()) > seconds:
        return
    heard = f"{speech_seconds(call.received_audio()):.1f} s of speech in {len(call.rx_packets)} RTP packets"
    if call.ended.is_set():
        after = (call.ended_at or 0) - (call.answered_at or 0)
        raise AssertionError(
            f"no greeting: the call ended ({call.end_reason}, SIP {call.end_status}) {after:.1f} s after it "
            f"was answered, having heard {heard}"
        )
    raise AssertionError(f"timed out after {timeout} s waiting for the greeting: the call is up and heard {heard}")


async def greeted(phone, ext: str):
    """Call ``ext`` and wait until its whole greeting has been heard (speech, then a second of quiet).

    Waiting for the end of the greeting, not for "n seconds of speech", keeps what a test compares
    with the greeting independent of how fast a loaded machine delivers it.
    """
    call = await phone.call(ext, timeout=10)
    await until_greeting(call)
    await until(lambda: silent_tail(call.received_audio(), 1.0), 20, "the end of the greeting")
    return call


async def ask(phones, ext: str, question: str, caller: str = "1001") -> str:
    """Call ``ext`` (not registered: the AI answers at once), ask by voice, return what was heard."""
    async with phones(caller) as caller:
        call = await greeted(caller, ext)
        asked_at = len(call.received_audio())
        await call.play_and_wait(await speech(question))
        await until(lambda: speech_seconds(call.received_audio()[asked_at:]) > 1.5, 25, "an answer")
        await until(lambda: silent_tail(call.received_audio(), 1.0), 25, "the end of the answer")
        await call.hangup()
        return await transcribe(call.received_audio()[asked_at:])
