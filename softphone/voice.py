"""What a scripted phone says: speech synthesised with the offline voice, at the phone's rate.

Used by the integration tests, the demo and the benchmarks (one voice per process, loaded once).
"""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=1)
def _tts():
    from ariapp.providers.local import PiperTTS

    return PiperTTS()


async def speech(text: str, rate: int = 8000) -> np.ndarray:
    """``text`` spoken by the offline English voice, int16 mono at ``rate``."""
    from ariapp.media.resample import resample

    tts = _tts()
    return resample(await tts.synthesize_all(text), tts.sample_rate, rate)
