"""Latency of each provider call, observed into :mod:`ariapp.metrics` histograms.

Each wrapper stands in for the provider it wraps and says exactly what it offers: the protocol's
methods (``aipbx.providers.base``), timed, and the few attributes the ARI app reads (the sample
rate, ``busy``, ``warmup``; the retriever's ``embedder`` and ``gate``), passed through by name — no
attribute forwarding, so mypy sees a wrapper that drifts from its protocol. Streams are timed to
their *first* item: that is the latency a caller hears; the rest of the stream overlaps playback.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aipbx.providers.base import Pcm, SpeechToText, TextToSpeech, Transcript
from ariapp.conversation.answerer import Answerer, Question
from ariapp.metrics import LLM_LATENCY, STT_LATENCY, TTS_LATENCY, VECTOR_SEARCH, provider_of
from knowledge.retrieval.relevance import Judgement
from knowledge.retrieval.retriever import Passage, RetrievalResult, Retriever

__all__ = ["TimedAnswerer", "TimedRetriever", "TimedSTT", "TimedTTS"]


async def _warm(inner: object) -> None:
    warmup = getattr(inner, "warmup", None)  # only local models have one (loading takes seconds)
    if warmup is not None:
        await warmup()


class TimedSTT:
    """A :class:`~aipbx.providers.base.SpeechToText`, each transcription timed."""

    def __init__(self, inner: SpeechToText) -> None:
        self.inner = inner
        self.sample_rate = inner.sample_rate
        self._histogram = STT_LATENCY.labels(provider_of(inner))

    @property
    def busy(self) -> bool:
        """Whether jobs are queued or running (the offline recogniser's lanes); a cloud one never is."""
        return bool(getattr(self.inner, "busy", False))

    async def warmup(self) -> None:
        await _warm(self.inner)

    async def transcribe(self, pcm: Pcm, language: str | None = None, hints: Sequence[str] = ()) -> Transcript:
        with self._histogram.time():
            return await self.inner.transcribe(pcm, language, hints)


async def _first_timed(stream: AsyncIterator[Any], histogram: Any) -> AsyncIterator[Any]:
    started = time.monotonic()
    first = True
    async for item in stream:
        if first:
            histogram.observe(time.monotonic() - started)
            first = False
        yield item


class TimedTTS:
    """A :class:`~aipbx.providers.base.TextToSpeech`, each stream timed to its first audio."""

    def __init__(self, inner: TextToSpeech) -> None:
        self.inner = inner
        self.sample_rate = inner.sample_rate
        self._histogram = TTS_LATENCY.labels(provider_of(inner))

    async def warmup(self) -> None:
        await _warm(self.inner)

    def synthesize(self, text: str) -> AsyncIterator[Pcm]:
        return _first_timed(self.inner.synthesize(text), self._histogram)

    async def synthesize_all(self, text: str) -> Pcm:
        """The whole utterance at once (prompts, greetings: not on a caller's wait, so not timed)."""
        return await self.inner.synthesize_all(text)


class TimedAnswerer:
    """An :class:`~ariapp.conversation.answerer.Answerer`, each answer timed to its first text."""

    def __init__(self, inner: Answerer) -> None:
        self.inner = inner
        self._histogram = LLM_LATENCY.labels(provider_of(getattr(inner, "llm", inner)))

    def answer(self, question: Question) -> AsyncIterator[str]:
        return _first_timed(self.inner.answer(question), self._histogram)


class TimedRetriever:
    """A :class:`~knowledge.retrieval.retriever.Retriever`, each vector search timed."""

    def __init__(self, inner: Retriever) -> None:
        self.inner = inner
        self.embedder = inner.embedder
        self.gate = inner.gate

    async def search(self, owner: str, query: str) -> RetrievalResult:
        with VECTOR_SEARCH.time():
            return await self.inner.search(owner, query)

    async def judge(
        self, question: str, passages: Sequence[Passage], owner: str | None = None, *, business: str = ""
    ) -> Judgement:
        return await self.inner.judge(question, passages, owner, business=business)

    async def prepare(self, owner: str) -> list[Passage]:
        return await self.inner.prepare(owner)
