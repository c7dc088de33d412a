"""Latency of each provider call, observed into :mod:`ariapp.metrics` histograms.

Each wrapper stands in for the provider it wraps (same methods; every other attribute — the
sample rate, ``warmup``, the retriever's ``threshold`` and ``embedder`` — is the wrapped object's),
so the orchestrator neither knows nor cares. Streams are timed to their *first* item: that is the
latency a caller hears; the rest of the stream overlaps playback.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from ariapp.metrics import LLM_LATENCY, STT_LATENCY, TTS_LATENCY, VECTOR_SEARCH, provider_of


class _Wrapper:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class TimedSTT(_Wrapper):
    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self._histogram = STT_LATENCY.labels(provider_of(inner))

    async def transcribe(self, pcm, language: str | None = None, hints: Sequence[str] = ()):
        with self._histogram.time():
            return await self.inner.transcribe(pcm, language, hints)


async def _first_timed(stream: AsyncIterator[Any], histogram) -> AsyncIterator[Any]:
    started = time.monotonic()
    first = True
    async for item in stream:
        if first:
            histogram.observe(time.monotonic() - started)
            first = False
        yield item


class TimedTTS(_Wrapper):
    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self._histogram = TTS_LATENCY.labels(provider_of(inner))

    def synthesize(self, text: str) -> AsyncIterator[Any]:
        return _first_timed(self.inner.synthesize(text), self._histogram)


class TimedAnswerer(_Wrapper):
    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self._histogram = LLM_LATENCY.labels(provider_of(getattr(inner, "llm", inner)))

    def answer(self, question) -> AsyncIterator[str]:
        return _first_timed(self.inner.answer(question), self._histogram)


class TimedRetriever(_Wrapper):
    async def search(self, owner: str, query: str) -> Any:
        with VECTOR_SEARCH.time():
            return await self.inner.search(owner, query)
