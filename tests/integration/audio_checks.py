"""What a phone heard, judged the way a person would: by frequency, by speech, by words.

Speech recognition here runs in the test process on the audio the test phone recorded, never on
anything the ARI app says about itself. Loudness and tone checks live in :mod:`softphone.analysis`.
"""

from __future__ import annotations

import asyncio
import functools

import numpy as np

from ariapp.media.resample import resample
from softphone.analysis import silent_tail, speech_seconds
from softphone.voice import speech  # noqa: F401 - what the test phone says


@functools.lru_cache(maxsize=2)
def _stt(model: str):
    from ariapp.providers.local import WhisperSTT

    return WhisperSTT(model=model)


async def transcribe(pcm: np.ndarray, rate: int = 8000, model: str = "tiny.en") -> str:
    stt = _stt(model)
    result = await stt.transcribe(resample(pcm, rate, 16000), "en")
    return result.text.lower()


async def until(predicate, timeout: float, what: str, interval: float = 0.1):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def ask(phones, ext: str, question: str) -> str:
    """Call ``ext`` (not registered: the AI answers at once), ask by voice, return what was heard."""
    async with phones("1001") as caller:
        call = await caller.call(ext, timeout=10)
        await until(lambda: speech_seconds(call.received_audio()) > 2.5, 20, "the greeting")
        await until(lambda: silent_tail(call.received_audio(), 1.0), 20, "the end of the greeting")
        asked_at = len(call.received_audio())
        await call.play_and_wait(await speech(question))
        await until(lambda: speech_seconds(call.received_audio()[asked_at:]) > 1.5, 25, "an answer")
        await until(lambda: silent_tail(call.received_audio(), 1.0), 25, "the end of the answer")
        await call.hangup()
        return await transcribe(call.received_audio()[asked_at:])
