"""OpenAI-family specifics against the HTTP fake: request shapes, WAV upload, PCM streaming, limits."""

from __future__ import annotations

import asyncio
import io
import wave

import numpy as np
import pytest

from aipbx.providers.base import ChatMessage
from aipbx.providers.errors import ProviderBadInput, ProviderError, ProviderTimeout
from aipbx.providers.openai import split_for_requests, wav_from_pcm
from tests.fakes.openai_http import FakeOpenAI, speech_tone
from tests.providers.conftest import Closer
from tests.providers.factories import SHORT_TIMEOUT_S, openai_chat, openai_stt, openai_tts

CHAT = [ChatMessage("system", "Be brief."), ChatMessage("user", "Hello?")]


async def test_chat_request_shape_for_compatible_servers(openai_server: FakeOpenAI, closer: Closer) -> None:
    llm = closer(openai_chat(openai_server, model="llama3.2", max_tokens_param="max_completion_tokens"))

    _ = [d async for d in llm.stream(CHAT, max_tokens=33)]

    request = openai_server.requests[0]
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.json["model"] == "llama3.2"
    assert request.json["stream"] is True
    assert request.json["max_completion_tokens"] == 33 and "max_tokens" not in request.json


async def test_chat_stall_in_the_middle_of_an_answer(openai_server: FakeOpenAI, closer: Closer) -> None:
    # given: two deltas, then silence
    openai_server.script.stall_after_chunks, openai_server.script.stall_s = 2, 30
    llm = closer(openai_chat(openai_server))
    received: list[str] = []

    # when / then
    with pytest.raises(ProviderTimeout):
        async for delta in llm.stream(CHAT):
            received.append(delta)
    assert received == openai_server.script.deltas[:2]


@pytest.mark.parametrize(("status", "error"), [(400, ProviderBadInput), (404, ProviderBadInput), (429, ProviderError)])
async def test_chat_client_errors(
    openai_server: FakeOpenAI, closer: Closer, status: int, error: type[ProviderError]
) -> None:
    openai_server.script.status = status
    llm = closer(openai_chat(openai_server))

    with pytest.raises(error) as caught:
        _ = [d async for d in llm.stream(CHAT)]

    assert caught.value.retryable is (status == 429)


async def test_transcription_uploads_a_wav_of_the_pcm(openai_server: FakeOpenAI, closer: Closer) -> None:
    stt = closer(openai_stt(openai_server, sample_rate=8000, prompt="Hanbit Dental"))
    audio = (np.sin(np.arange(8000) / 4) * 9000).astype(np.int16)

    transcript = await stt.transcribe(audio, language="ko-KR")

    form = openai_server.requests[0].form
    assert form["model"] == "gpt-4o-mini-transcribe"
    assert form["language"] == "ko"  # ISO 639-1, as the API wants
    assert form["prompt"] == "Hanbit Dental"
    assert form["file.filename"].endswith(".wav")
    with wave.open(io.BytesIO(form["file"]), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        np.testing.assert_array_equal(np.frombuffer(wav.readframes(wav.getnframes()), "<i2"), audio)
    assert transcript.duration_s == pytest.approx(1.0)

    # names the caller may say join the configured prompt
    await stt.transcribe(audio, language="en", hints=["Dr. Minsu Park", "Chuseok"])
    assert openai_server.requests[1].form["prompt"] == "Hanbit Dental A caller asks about Dr. Minsu Park or Chuseok."


async def test_transcription_without_a_language_lets_the_model_detect_it(
    openai_server: FakeOpenAI, closer: Closer
) -> None:
    stt = closer(openai_stt(openai_server))

    transcript = await stt.transcribe(np.ones(1600, dtype=np.int16))

    assert "language" not in openai_server.requests[0].form
    assert transcript.language is None


async def test_speech_request_and_sample_exact_pcm(openai_server: FakeOpenAI, closer: Closer) -> None:
    # given: the body arrives in odd-sized pieces, so samples straddle network chunks
    openai_server.script.odd_pieces = True
    tts = closer(openai_tts(openai_server, voice="coral", instructions="Warm and calm.", speed=1.1))
    text = "Thank you for calling. Goodbye."

    # when
    chunks = [chunk async for chunk in tts.synthesize(text)]

    # then
    body = openai_server.requests[0].json
    assert body == {
        "model": "gpt-4o-mini-tts",
        "voice": "coral",
        "input": text,
        "response_format": "pcm",
        "instructions": "Warm and calm.",
        "speed": 1.1,
    }
    assert len(chunks) > 2
    expected = np.concatenate(
        [speech_tone(s, openai_server.script.seconds_per_char) for s in ("Thank you for calling.", "Goodbye.")]
    )
    np.testing.assert_array_equal(np.concatenate(chunks), expected)


async def test_speech_stall_between_sentences(openai_server: FakeOpenAI, closer: Closer) -> None:
    # given: the second sentence never comes
    openai_server.script.hold_text = "Goodbye"
    openai_server.script.release = asyncio.Event()  # never set
    tts = closer(openai_tts(openai_server))
    received = []

    # when / then
    with pytest.raises(ProviderTimeout):
        async for chunk in tts.synthesize("Hello there. Goodbye."):
            received.append(chunk)
    assert len(received) == 1
    assert tts.chunk_timeout_s == SHORT_TIMEOUT_S


async def test_long_text_is_sent_in_pieces_under_the_api_limit(openai_server: FakeOpenAI, closer: Closer) -> None:
    openai_server.script.seconds_per_char = 0.0001
    tts = closer(openai_tts(openai_server))
    text = " ".join(f"This is sentence number {i}." for i in range(300))  # ~8.5k characters

    audio = await tts.synthesize_all(text)

    inputs = [r.json["input"] for r in openai_server.requests]
    assert len(inputs) == 3 and all(len(i) <= 4096 for i in inputs)
    assert " ".join(inputs) == text
    assert len(audio) > 0


def test_split_for_requests_cuts_hard_only_inside_a_giant_sentence() -> None:
    assert split_for_requests("One. Two. Three.", limit=9) == ["One. Two.", "Three."]
    assert split_for_requests("x" * 25, limit=10) == ["x" * 10, "x" * 10, "x" * 5]


def test_wav_from_pcm_roundtrip() -> None:
    pcm = np.array([0, 1, -1, 32767, -32768], dtype=np.int16)
    with wave.open(io.BytesIO(wav_from_pcm(pcm, 16000)), "rb") as wav:
        assert wav.getframerate() == 16000
        np.testing.assert_array_equal(np.frombuffer(wav.readframes(5), "<i2"), pcm)
