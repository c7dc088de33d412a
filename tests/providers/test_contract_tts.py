"""One behavioural contract for every ``TextToSpeech``: local Piper, Google (both paths) and OpenAI.

The cloud cases run the production classes on the official SDKs against the
local wire-level fakes. Where a fake is involved, "streams" is proven without
timing: the fake holds back the audio of the last sentence until the test has
received the first chunk, so a provider that buffered the whole answer would
never yield anything.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from aipbx.providers.base import TextToSpeech
from aipbx.providers.errors import ProviderBadInput
from aipbx.providers.local import PiperTTS
from tests.fakes.google_grpc import FakeGoogleCloud
from tests.fakes.openai_http import FakeOpenAI
from tests.providers.conftest import Closer
from tests.providers.factories import google_tts, openai_tts

THREE_SENTENCES = "Good morning. The office opens at nine. Please call again later."
LAST_SENTENCE_MARK = "call again"


@dataclass
class TtsCase:
    """A provider plus what the test can observe or control at its far end."""

    tts: TextToSpeech
    hold: Callable[[str], asyncio.Event] | None  # hold back audio of text containing this; returns the release
    requested_rates: Callable[[], list[int]]  # sample rates the far end was asked for
    request_count: Callable[[], int]


def _google_case(server: FakeGoogleCloud, closer: Closer, *, streaming: bool) -> TtsCase:
    voice = "en-US-Chirp3-HD-Aoede" if streaming else "ko-KR-Neural2-A"
    tts = closer(google_tts(server, voice=voice, sample_rate=16000))
    assert tts.streaming is streaming

    def hold(text: str) -> asyncio.Event:
        server.tts.hold_text, server.tts.release = text, asyncio.Event()
        return server.tts.release

    def rates() -> list[int]:
        if streaming:
            return [
                c[0].streaming_config.streaming_audio_config.sample_rate_hertz
                for c in server.streaming_synthesize_requests
            ]
        return [r.audio_config.sample_rate_hertz for r in server.synthesize_requests]

    def count() -> int:
        return len(server.synthesize_requests) + len(server.streaming_synthesize_requests)

    return TtsCase(tts, hold, rates, count)


def _openai_case(server: FakeOpenAI, closer: Closer) -> TtsCase:
    tts = closer(openai_tts(server))

    def hold(text: str) -> asyncio.Event:
        server.script.hold_text, server.script.release = text, asyncio.Event()
        return server.script.release

    # response_format="pcm" is 24 kHz by definition of the API
    def rates() -> list[int]:
        return [24000 for r in server.requests if r.json.get("response_format") == "pcm"]

    return TtsCase(tts, hold, rates, lambda: len(server.requests))


@pytest.fixture(params=["piper", "google", "google-streaming", "openai"])
def case(request: pytest.FixtureRequest, closer: Closer) -> TtsCase:
    if request.param == "piper":
        piper = PiperTTS(noise_scale=0.0, noise_w_scale=0.0)
        return TtsCase(piper, None, lambda: [piper.sample_rate], lambda: 0)
    if request.param.startswith("google"):
        server = request.getfixturevalue("google_cloud")
        return _google_case(server, closer, streaming=request.param == "google-streaming")
    return _openai_case(request.getfixturevalue("openai_server"), closer)


def test_satisfies_the_protocol(case: TtsCase) -> None:
    assert isinstance(case.tts, TextToSpeech)
    assert isinstance(case.tts.sample_rate, int) and case.tts.sample_rate > 0


async def test_yields_int16_mono_chunks_at_its_sample_rate(case: TtsCase) -> None:
    # when
    chunks = [chunk async for chunk in case.tts.synthesize(THREE_SENTENCES)]

    # then
    assert chunks
    for chunk in chunks:
        assert isinstance(chunk, np.ndarray) and chunk.dtype == np.int16 and chunk.ndim == 1
    audio = np.concatenate(chunks)
    assert 0.3 < len(audio) / case.tts.sample_rate < 15.0
    assert int(np.max(np.abs(audio.astype(np.int32)))) > 1000  # sound, not silence or a stray header
    assert set(case.requested_rates()) == {case.tts.sample_rate}


async def test_first_chunk_arrives_before_the_last_sentence_is_synthesized(case: TtsCase) -> None:
    if case.hold is None:  # local engine: no far end to hold back, so compare arrival times
        await case.tts.synthesize_all("Warm up.")
        arrivals = []
        async for _chunk in case.tts.synthesize(THREE_SENTENCES):
            arrivals.append(time.perf_counter())
        assert len(arrivals) >= 3  # a chunk per sentence
        assert arrivals[0] < arrivals[-1]
        return

    # given: the far end will not produce the last sentence until released
    release = case.hold(LAST_SENTENCE_MARK)
    chunks = aiter(case.tts.synthesize(THREE_SENTENCES))

    # when
    first = await asyncio.wait_for(anext(chunks), 5.0)

    # then: audio came out while the last sentence was still held back
    assert len(first) > 0 and not release.is_set()
    release.set()
    rest = [chunk async for chunk in chunks]
    assert rest, "the held-back sentence never arrived"


@pytest.mark.parametrize("text", ["", "   \n "])
async def test_empty_text_is_bad_input_and_sends_nothing(case: TtsCase, text: str) -> None:
    with pytest.raises(ProviderBadInput):
        async for _chunk in case.tts.synthesize(text):
            pass
    with pytest.raises(ProviderBadInput):
        await case.tts.synthesize_all(text)
    assert case.request_count() == 0


async def test_synthesize_all_is_the_concatenated_stream(case: TtsCase) -> None:
    streamed = np.concatenate([chunk async for chunk in case.tts.synthesize(THREE_SENTENCES)])

    whole = await case.tts.synthesize_all(THREE_SENTENCES)

    assert whole.dtype == np.int16 and whole.ndim == 1
    assert len(whole) == len(streamed)
