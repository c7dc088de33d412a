"""Prompts the dialplan plays in the AI's voice: the recording notice callers hear before a recorded
phone-to-phone call rings (§10.2), and the busy message of a call over an AI call cap.

The dialplan plays ``<sounds dir>/recording-notice-<language>`` (and ``ai-busy-<language>``) as
early media; the ARI app writes those files at start-up with the voice of that language, so they
sound like the AI and the notice follows ``recording_notice`` in ``asterisk/extensions.yaml``. A
file is rewritten only when its text changed (the text it was made from is kept beside it).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

from aipbx.audio.resample import resample
from aipbx.directory import notice_sound

RATE = 8000  # Asterisk's .wav format: 8 kHz, 16-bit, mono


async def write_notice(
    directory: Path, language: str, text: str, synthesize: Callable[[], Awaitable[np.ndarray]], source_rate: int
) -> Path:
    """``<directory>/recording-notice-<language>.wav`` saying ``text``; returns its path."""
    return await write_prompt(directory, notice_sound(language), text, synthesize, source_rate)


async def write_prompt(
    directory: Path, name: str, text: str, synthesize: Callable[[], Awaitable[np.ndarray]], source_rate: int
) -> Path:
    """``<directory>/<name>.wav`` saying ``text`` (synthesised only if the text changed); returns its path."""
    target = directory / f"{name}.wav"
    if not await asyncio.to_thread(_up_to_date, target, text):
        pcm = resample(await synthesize(), source_rate, RATE)
        await asyncio.to_thread(_write, target, text, pcm)
    return target


def _up_to_date(target: Path, text: str) -> bool:
    said = target.with_suffix(".txt")
    return target.exists() and said.exists() and said.read_text(encoding="utf-8") == text


def _write(target: Path, text: str, pcm: np.ndarray) -> None:
    directory = target.parent
    directory.mkdir(parents=True, exist_ok=True)
    if directory.stat().st_uid == os.geteuid():
        directory.chmod(0o755)  # Asterisk's own user reads it (a shared volume has its own owner)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".wav")
    with os.fdopen(fd, "wb") as handle, wave.open(handle, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(np.asarray(pcm, dtype="<i2").tobytes())
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    target.with_suffix(".txt").write_text(text, encoding="utf-8")
