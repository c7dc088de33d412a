"""Speech-like audio the benchmark phones talk with (synthesised once with the offline voice)."""

from __future__ import annotations

import asyncio

import numpy as np

SENTENCE = "Hello, I am calling about my order. Could you tell me when it will be delivered?"


def talk_loop(rate: int = 8000) -> np.ndarray:
    """A sentence followed by a second of silence, at ``rate``."""
    from ariapp.media.resample import resample
    from ariapp.providers.local import PiperTTS

    tts = PiperTTS()
    pcm = asyncio.run(tts.synthesize_all(SENTENCE))
    speech = resample(pcm, tts.sample_rate, rate)
    return np.concatenate([speech, np.zeros(rate, dtype=np.int16)])
