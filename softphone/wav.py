"""WAV helpers (stdlib ``wave``): mono 16-bit PCM in, mono 16-bit PCM out."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from softphone.audio import Pcm, as_int16


def save_wav(path: str | Path, pcm: np.ndarray, rate: int = 8000) -> None:
    """Write mono int16 samples (float input in [-1, 1] is converted)."""
    samples = as_int16(pcm)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes(samples.astype("<i2").tobytes())


def load_wav(path: str | Path) -> tuple[Pcm, int]:
    """Read a 16-bit PCM WAV; multi-channel files are averaged to mono.

    Raises:
        ValueError: the file is not 16-bit PCM.
    """
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported, got {8 * w.getsampwidth()}-bit")
        channels = w.getnchannels()
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return data, rate
