"""A voice that remembers what it has said (aipbx.providers.cache)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from aipbx.providers.cache import CachedTTS
from aipbx.providers.errors import ProviderBadInput
from aipbx.providers.local import PiperTTS
from ariapp import metrics
from ariapp.engine import build_engine
from ariapp.settings import Settings


class CountingVoice:
    """Two chunks per text, 1 s each at 8 kHz, each filled with a value of its own."""

    sample_rate = 8000

    def __init__(self) -> None:
        self.synthesized: list[str] = []

    async def synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        if not text.strip():
            raise ProviderBadInput("empty text", provider="fake")
        self.synthesized.append(text)
        for part in range(2):
            await asyncio.sleep(0)
            yield np.full(8000, len(self.synthesized) * 10 + part, dtype=np.int16)


async def test_a_text_said_before_is_not_synthesized_again_and_sounds_the_same() -> None:
    voice = CountingVoice()
    tts = CachedTTS(voice, max_bytes=1 << 20)

    first = await tts.synthesize_all("We open at nine.")
    again = await tts.synthesize_all("We open at nine.")
    other = await tts.synthesize_all("We close at six.")

    assert voice.synthesized == ["We open at nine.", "We close at six."]
    assert np.array_equal(first, again)
    assert [chunk[0] async for chunk in tts.synthesize("We open at nine.")] == [10, 11]  # chunk for chunk
    assert not np.array_equal(first, other)
    assert (tts.hits, tts.misses) == (2, 2)


async def test_a_reply_cut_off_half_way_is_not_kept() -> None:
    voice = CountingVoice()
    tts = CachedTTS(voice, max_bytes=1 << 20)

    stream = tts.synthesize("A long answer.")
    async for _ in stream:
        break  # the caller barged in after the first chunk
    await stream.aclose()
    whole = await tts.synthesize_all("A long answer.")

    assert voice.synthesized == ["A long answer.", "A long answer."]
    assert len(whole) == 16000


async def test_the_least_recently_used_text_leaves_when_the_budget_is_full() -> None:
    voice = CountingVoice()
    tts = CachedTTS(voice, max_bytes=2 * 32000)  # two texts of 2 s of int16 at 8 kHz

    for text in ("one", "two", "one", "three"):  # "one" was used after "two": "two" goes
        await tts.synthesize_all(text)
    await tts.synthesize_all("one")
    await tts.synthesize_all("two")

    assert voice.synthesized == ["one", "two", "three", "two"]
    assert tts.kept_bytes <= 2 * 32000


async def test_kept_audio_cannot_be_changed_by_a_listener() -> None:
    tts = CachedTTS(CountingVoice(), max_bytes=1 << 20)
    await tts.synthesize_all("hello")

    chunk = [c async for c in tts.synthesize("hello")][0]

    with pytest.raises(ValueError, match="read-only"):
        chunk[0] = 0


async def test_bad_input_is_the_voices_error_and_nothing_is_kept() -> None:
    tts = CachedTTS(CountingVoice(), max_bytes=1 << 20)

    with pytest.raises(ProviderBadInput, match="empty"):
        await tts.synthesize_all("  ")

    assert tts.kept_bytes == 0


async def test_a_zero_budget_keeps_nothing() -> None:
    voice = CountingVoice()
    tts = CachedTTS(voice, max_bytes=0)

    await tts.synthesize_all("hi")
    await tts.synthesize_all("hi")

    assert voice.synthesized == ["hi", "hi"]


def test_the_engines_voices_remember_and_report_their_own_family() -> None:
    env = {
        "AIPBX_ARI_PASSWORD": "x",
        "AIPBX_KNOWLEDGE_STORE": "none",
        "AIPBX_TTS_CACHE_MB": "8",
        "DJANGO_SETTINGS_MODULE": "webconsole.settings.dev",
    }
    engine = build_engine(Settings.from_env(env), env)
    voice = engine.voice("en-US")

    assert isinstance(voice.inner, CachedTTS) and isinstance(voice.inner.inner, PiperTTS)
    assert voice.inner.max_bytes == 8 * 1024 * 1024
    assert metrics.provider_of(voice.inner) == "local"
