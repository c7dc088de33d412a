"""An extension's own hold music: a WAV uploaded in the console, at its volume, looped to length.

The console checks the upload (16-bit PCM, mono or stereo, 8-48 kHz, at most 10 minutes) and writes it
into the hold music folder both processes share; here it is read once per file and media rate, mixed
to mono, resampled and scaled. A file that is missing or unreadable falls back to the built-in tune:
a caller on hold never hears silence because of a settings mistake.
"""

from __future__ import annotations

import functools
import logging
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

from aipbx.audio.resample import resample
from ariapp.conversation.hitl import hold_music as builtin_tune

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=16)
def _read(path: Path, rate: int) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path.name}: not 16-bit PCM")
        channels, source_rate = wav.getnchannels(), wav.getframerate()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1).astype(np.int16)
    if pcm.size == 0:
        raise ValueError(f"{path.name}: no audio")
    return resample(pcm, source_rate, rate)


def scaled(pcm: np.ndarray, volume: int) -> np.ndarray:
    """``pcm`` at ``volume`` per cent (0..100)."""
    return (pcm.astype(np.float32) * (max(0, min(volume, 100)) / 100.0)).astype(np.int16)


def hold_music_for(folder: Path | None, name: str, volume: int) -> Callable[[int, float], np.ndarray] | None:
    """The music function an extension's calls play on hold (None: the built-in tune at its own level)."""
    if not name or folder is None:
        return None if volume == 100 else (lambda rate, seconds: scaled(builtin_tune(rate, seconds), volume))

    def music(rate: int, seconds: float) -> np.ndarray:
        total = max(1, int(rate * seconds))
        try:
            pcm = _read(folder / name, rate)
        except (OSError, EOFError, ValueError, wave.Error) as exc:
            log.error("hold music %s not playable, the built-in tune plays: %s", name, exc)
            pcm = builtin_tune(rate, seconds)
        return scaled(np.resize(pcm, total), volume)

    return music
