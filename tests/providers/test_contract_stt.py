"""One behavioural contract for every ``SpeechToText``: local Whisper tiny.en, Google and OpenAI.

The speech is real: Piper says a sentence, resampled to 16 kHz. Whisper has
to understand it; the cloud cases send it through the real SDKs to the
wire-level fakes, which check and record what arrived and answer a scripted
transcript.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from aipbx.audio.resample import resample
from aipbx.providers.base import SpeechToText
from aipbx.providers.errors import ProviderBadInput
from aipbx.providers.local import PiperTTS, WhisperSTT
from tests.fakes.google_grpc import FakeGoogleCloud
from tests.fakes.openai_http import FakeOpenAI
from tests.providers.conftest import Closer
from tests.providers.factories import google_stt, openai_stt

SENTENCE = "The office opens on Monday at nine."


@pytest.fixture(scope="module")
def speech_16k() -> np.ndarray:
    tts = PiperTTS(noise_scale=0.0, noise_w_scale=0.0)  # deterministic rendering
    speech = asyncio.run(tts.synthesize_all(SENTENCE))
    return resample(speech, tts.sample_rate, 16000)


@dataclass
class SttCase:
    stt: SpeechToText
    received_samples: Callable[[], int] | None  # samples the far end got in the last request
    request_count: Callable[[], int]


def _google_case(server: FakeGoogleCloud, closer: Closer) -> SttCase:
    server.speech.final = [SENTENCE]
    server.speech.language_code = "en-us"
    stt = closer(google_stt(server, language="en-US"))
    return SttCase(stt, lambda: len(server.recognize_calls[-1].audio) // 2, lambda: len(server.recognize_calls))


def _openai_case(server: FakeOpenAI, closer: Closer) -> SttCase:
    server.script.transcript = SENTENCE
    stt = closer(openai_stt(server, timeout_s=5.0))
    return SttCase(stt, lambda: server.uploads[-1].frames, lambda: len(server.requests))


@pytest.fixture(params=["whisper-tiny.en", "google", "openai"])
def case(request: pytest.FixtureRequest, closer: Closer) -> SttCase:
    if request.param == "whisper-tiny.en":
        return SttCase(WhisperSTT("tiny.en"), None, lambda: 0)
    if request.param == "google":
        return _google_case(request.getfixturevalue("google_cloud"), closer)
    return _openai_case(request.getfixturevalue("openai_server"), closer)


def test_satisfies_the_protocol(case: SttCase) -> None:
    assert isinstance(case.stt, SpeechToText)
    assert case.stt.sample_rate == 16000


async def test_transcribes_an_utterance(case: SttCase, speech_16k: np.ndarray) -> None:
    # when
    transcript = await case.stt.transcribe(speech_16k, language="en")

    # then
    words = transcript.text.lower().replace(".", " ").split()
    assert "monday" in words, transcript.text
    assert transcript.is_final
    assert transcript.language == "en"
    assert transcript.compute_s > 0
    assert transcript.duration_s == pytest.approx(len(speech_16k) / 16000, abs=0.01)
    if transcript.confidence is not None:
        assert 0 < transcript.confidence <= 1
    if case.received_samples is not None:
        assert case.received_samples() == len(speech_16k)  # the whole utterance, as 16-bit samples


async def test_empty_audio_is_an_empty_final_transcript(case: SttCase) -> None:
    transcript = await case.stt.transcribe(np.zeros(0, dtype=np.int16), language="en")

    assert transcript.is_empty and transcript.is_final
    assert case.request_count() == 0


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros(1600, dtype=np.float32),  # float audio mistaken for int16 would be silence
        np.zeros((1600, 2), dtype=np.int16),  # stereo
        [0] * 1600,  # not an array
    ],
    ids=["float32", "stereo", "list"],
)
async def test_rejects_audio_in_the_wrong_format_before_any_request(case: SttCase, bad: object) -> None:
    with pytest.raises(ProviderBadInput):
        await case.stt.transcribe(bad)  # type: ignore[arg-type]
    assert case.request_count() == 0
