"""Speech-like audio the benchmark phones talk with (synthesised once with the offline voice)."""

from __future__ import annotations

import asyncio

import numpy as np

SENTENCE = "Hello, I am calling about my order. Could you tell me when it will be delivered?"


def talk_loop(rate: int = 8000) -> np.ndarray:
    """A sentence followed by a second of silence, at ``rate``."""
    from softphone.voice import speech

    return np.concatenate([asyncio.run(speech(SENTENCE, rate)), np.zeros(rate, dtype=np.int16)])
