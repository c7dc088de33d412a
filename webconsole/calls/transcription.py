"""A call's transcript written after the call, from its recordings: ``caller.wav`` and ``callee.wav``.

This is the path that makes sure no recorded call ends without a transcript: calls over the live
budget, calls recorded while the ARI app was down or restarting, calls whose live transcript fell
behind. Each track is cut into utterances exactly as the live transcript cuts them
(:func:`aipbx.audio.segmenter.segments_of`), each utterance is recognised with the call language's
recogniser, and the lines of both speakers are merged in time order.

Nothing here touches the database: :func:`transcribe_call` returns the turns; storing them is
``webconsole.calls.actions.do_store_transcript``.
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aipbx import sealing
from aipbx.audio.resample import resample
from aipbx.audio.segmenter import segments_of

#: The parties' tracks of a phone-to-phone call (MixMonitor's r() and t() files), by speaker.
TRACKS = {"caller": "caller.wav", "callee": "callee.wav"}
#: A call longer than this is transcribed up to here (a stuck call must not hold the worker for hours).
MAX_TRACK_S = 2 * 3600


class TranscriptionError(Exception):
    """The recordings cannot be transcribed (missing, unreadable, undecryptable): nothing is stored."""


@dataclass(frozen=True, slots=True)
class Line:
    speaker: str
    start_s: float
    end_s: float
    text: str
    confidence: float | None

    def as_turn(self) -> dict[str, Any]:
        return {
            "t": self.start_s,
            "end": self.end_s,
            "speaker": self.speaker,
            "text": self.text,
            "confidence": self.confidence,
        }


def read_track(folder: Path, name: str, keys: sealing.Keyring | None) -> tuple[np.ndarray, int]:
    """Mono int16 samples and the rate of one recorded WAV (sealed or clear).

    Raises:
        TranscriptionError: missing, not a 16-bit WAV, or cannot be decrypted.
    """
    try:
        with sealing.open_recording(folder, name, keys) as handle, wave.open(handle) as wav:
            if wav.getsampwidth() != 2:
                raise TranscriptionError(f"{name} is not 16-bit PCM ({wav.getsampwidth() * 8}-bit)")
            rate, channels = wav.getframerate(), wav.getnchannels()
            frames = min(wav.getnframes(), MAX_TRACK_S * rate)
            pcm = np.frombuffer(wav.readframes(frames), dtype="<i2").astype(np.int16)
    except FileNotFoundError as exc:
        raise TranscriptionError(f"{name} is missing in {folder}") from exc
    except (sealing.SealError, wave.Error, EOFError) as exc:
        raise TranscriptionError(f"{name} cannot be read: {exc}") from exc
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1).astype(np.int16)
    if rate not in (8000, 16000):
        raise TranscriptionError(f"{name} has an unexpected rate of {rate} Hz")
    return pcm, rate


async def transcribe_call(folder: Path, keys: sealing.Keyring | None, stt: Any, language: str) -> list[Line]:
    """Both parties' lines, in time order (times in seconds from the answer, when MixMonitor started).

    Raises:
        TranscriptionError: a track is missing or unreadable.
        aipbx.providers.errors.ProviderError: the recogniser failed (the caller decides to retry).
    """
    lang = "ko" if language.startswith("ko") else "en"
    tracks = {speaker: await asyncio.to_thread(read_track, folder, name, keys) for speaker, name in TRACKS.items()}
    lines: list[Line] = []
    for speaker, (pcm, rate) in tracks.items():
        for segment in segments_of(speaker, pcm, rate):
            transcript = await stt.transcribe(resample(segment.pcm, rate, stt.sample_rate), lang)
            text = transcript.text.strip()
            if text:
                confidence = None if transcript.confidence is None else round(transcript.confidence, 3)
                lines.append(Line(speaker, segment.start_s, segment.end_s, text, confidence))
    return sorted(lines, key=lambda line: (line.start_s, line.speaker))


def call_language(callee: str, directory: Mapping[str, Any]) -> str:
    """The language of the called extension (its owner's calls are in it), English when unknown."""
    ext = directory.get(callee)
    return getattr(ext, "language", None) or "en-US"
