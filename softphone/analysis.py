"""Listening to what a phone received, the way a person would judge it: loudness over time, tones.

Used by the integration tests, the demo and the benchmarks. Pure numpy; audio is mono int16.
"""

from __future__ import annotations

import numpy as np


def frame_levels(pcm: np.ndarray, rate: int = 8000) -> np.ndarray:
    """dBFS of each 20 ms frame."""
    frame = rate // 50
    count = len(pcm) // frame
    if count == 0:
        return np.zeros(0)
    frames = pcm[: count * frame].astype(np.float64).reshape(count, frame)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    return 20 * np.log10(rms / 32768.0 + 1e-12)


def speech_seconds(pcm: np.ndarray, rate: int = 8000, threshold_dbfs: float = -40.0) -> float:
    """Seconds of 20 ms frames louder than the threshold."""
    return float(np.sum(frame_levels(pcm, rate) > threshold_dbfs) * 0.02)


def first_sound_at(
    pcm: np.ndarray, rate: int = 8000, threshold_dbfs: float = -40.0, after: float = 0.0
) -> float | None:
    """Time (s) of the first frame louder than the threshold at or after ``after``."""
    levels = frame_levels(pcm, rate)
    start = int(round(after * 50))
    loud = np.nonzero(levels[start:] > threshold_dbfs)[0]
    return None if len(loud) == 0 else (start + int(loud[0])) * 0.02


def last_sound_at(pcm: np.ndarray, rate: int = 8000, threshold_dbfs: float = -40.0) -> float | None:
    """Time (s) of the end of the last frame louder than the threshold."""
    loud = np.nonzero(frame_levels(pcm, rate) > threshold_dbfs)[0]
    return None if len(loud) == 0 else (int(loud[-1]) + 1) * 0.02


def silent_tail(pcm: np.ndarray, seconds: float, rate: int = 8000, threshold_dbfs: float = -40.0) -> bool:
    """True when the last ``seconds`` are silent (and there is that much audio at all)."""
    n = int(seconds * rate)
    return len(pcm) >= n and speech_seconds(pcm[-n:], rate, threshold_dbfs) == 0.0


def dominant_frequency(pcm: np.ndarray, rate: int = 8000) -> float:
    """Frequency (Hz) of the strongest component in the loudest half second of ``pcm``."""
    frame = rate // 2
    if len(pcm) < frame:
        return 0.0
    starts = range(0, len(pcm) - frame + 1, frame // 2)
    loudest = max(starts, key=lambda s: float(np.mean(pcm[s : s + frame].astype(np.float64) ** 2)))
    segment = pcm[loudest : loudest + frame].astype(np.float64) * np.hanning(frame)
    return float(np.argmax(np.abs(np.fft.rfft(segment))) * rate / frame)
