"""Google Text-to-Speech specifics, against the gRPC fake: the request on the wire, WAV stripping, streaming."""

from __future__ import annotations

import asyncio
import struct

import grpc
import numpy as np
import pytest
from google.cloud import texttospeech_v1

from aipbx.providers.errors import ProviderBadInput, ProviderError
from aipbx.providers.google import GoogleTTS, pcm_from_wav, split_sentences
from tests.fakes.google_grpc import FakeGoogleCloud, sine, wav_bytes
from tests.providers.conftest import Closer
from tests.providers.factories import google_tts

KOREAN = "안녕하세요. 한빛치과입니다! 무엇을 도와드릴까요?"
SENTENCES = ["안녕하세요.", "한빛치과입니다!", "무엇을 도와드릴까요?"]


def expected_tone(server: FakeGoogleCloud, text: str, rate: int) -> np.ndarray:
    return sine(max(0.05, server.tts.seconds_per_char * len(text)), rate)


async def test_one_request_per_sentence_with_the_configured_voice(
    google_cloud: FakeGoogleCloud, closer: Closer
) -> None:
    # given
    tts = closer(google_tts(google_cloud, sample_rate=16000, speaking_rate=1.2, pitch=-2.0, volume_gain_db=3.0))

    # when
    chunks = [chunk async for chunk in tts.synthesize(KOREAN)]

    # then
    requests = google_cloud.synthesize_requests
    assert [r.input.text for r in requests] == SENTENCES
    first = requests[0]
    assert (first.voice.name, first.voice.language_code) == ("ko-KR-Neural2-A", "ko-KR")
    config = first.audio_config
    assert config.audio_encoding == texttospeech_v1.AudioEncoding.LINEAR16
    assert config.sample_rate_hertz == 16000
    assert config.speaking_rate == pytest.approx(1.2)
    assert config.pitch == pytest.approx(-2.0)
    assert config.volume_gain_db == pytest.approx(3.0)
    assert list(config.effects_profile_id) == ["telephony-class-application"]
    assert len(chunks) == 3


async def test_wav_header_is_stripped_sample_exact(google_cloud: FakeGoogleCloud, closer: Closer) -> None:
    tts = closer(google_tts(google_cloud, sample_rate=8000))

    chunks = [chunk async for chunk in tts.synthesize(KOREAN)]

    for chunk, sentence in zip(chunks, SENTENCES, strict=True):
        np.testing.assert_array_equal(chunk, expected_tone(google_cloud, sentence, 8000))


async def test_chirp3_hd_voices_stream_pcm(google_cloud: FakeGoogleCloud, closer: Closer) -> None:
    # given: the fake cuts the PCM at odd byte offsets, so samples straddle messages
    tts = closer(google_tts(google_cloud, voice="ko-KR-Chirp3-HD-Aoede", sample_rate=24000, speaking_rate=1.1))

    # when
    audio = await tts.synthesize_all(KOREAN)

    # then
    (requests,) = google_cloud.streaming_synthesize_requests
    config = requests[0].streaming_config
    assert config.voice.name == "ko-KR-Chirp3-HD-Aoede"
    assert config.streaming_audio_config.audio_encoding == texttospeech_v1.AudioEncoding.PCM
    assert config.streaming_audio_config.sample_rate_hertz == 24000
    assert config.streaming_audio_config.speaking_rate == pytest.approx(1.1)
    assert [r.input.text for r in requests[1:]] == SENTENCES
    expected = np.concatenate([expected_tone(google_cloud, s, 24000) for s in SENTENCES])
    np.testing.assert_array_equal(audio, expected)
    assert google_cloud.synthesize_requests == []


@pytest.mark.parametrize(("voice", "streaming"), [("ko-KR-Chirp3-HD-Aoede", False), ("ko-KR-Neural2-A", True)])
async def test_the_path_can_be_forced(
    google_cloud: FakeGoogleCloud, closer: Closer, voice: str, streaming: bool
) -> None:
    tts = closer(google_tts(google_cloud, voice=voice, streaming=streaming))

    await tts.synthesize_all("Hello.")

    assert bool(google_cloud.streaming_synthesize_requests) is streaming
    assert bool(google_cloud.synthesize_requests) is not streaming


async def test_consumer_may_stop_after_the_first_chunk(google_cloud: FakeGoogleCloud, closer: Closer) -> None:
    tts = closer(google_tts(google_cloud, voice="ko-KR-Chirp3-HD-Aoede"))
    chunks = tts.synthesize(KOREAN)

    first = await anext(chunks)
    await chunks.aclose()  # type: ignore[attr-defined]  # barge-in: the caller talks over the prompt
    again = await asyncio.wait_for(tts.synthesize_all("다시 말씀해 주세요."), 5)

    assert len(first) and len(again)


async def test_an_unknown_voice_is_bad_input(google_cloud: FakeGoogleCloud, closer: Closer) -> None:
    google_cloud.tts.error = grpc.StatusCode.INVALID_ARGUMENT
    google_cloud.tts.error_message = "Voice 'ko-KR-Nope-Z' does not exist."
    tts = closer(google_tts(google_cloud, voice="ko-KR-Nope-Z"))

    with pytest.raises(ProviderBadInput) as caught:
        await tts.synthesize_all("Hello.")

    assert "does not exist" in str(caught.value) and caught.value.retryable is False


async def test_api_key_travels_as_call_metadata(google_cloud: FakeGoogleCloud, closer: Closer) -> None:
    tts = closer(GoogleTTS(api_key="tts-key", endpoint=google_cloud.endpoint, insecure=True))

    await tts.synthesize_all("Hello.")

    assert google_cloud.tts_metadata[0]["x-goog-api-key"] == "tts-key"


def test_split_sentences() -> None:
    assert split_sentences(KOREAN) == SENTENCES
    assert split_sentences("It costs 3.5 dollars. OK") == ["It costs 3.5 dollars.", "OK"]
    assert split_sentences("first line\nsecond line") == ["first line", "second line"]
    long = "word " * 2000
    pieces = split_sentences(long, max_bytes=1000)
    assert all(len(p.encode()) <= 1000 for p in pieces) and " ".join(pieces) == long.strip()


def test_pcm_from_wav() -> None:
    tone = sine(0.1, 16000)
    np.testing.assert_array_equal(pcm_from_wav(wav_bytes(tone, 16000), 16000), tone)
    np.testing.assert_array_equal(pcm_from_wav(tone.astype("<i2").tobytes(), 16000), tone)  # headerless
    with pytest.raises(ProviderError):
        pcm_from_wav(wav_bytes(tone, 16000), 24000)  # the service ignored the requested rate
    stereo = bytearray(wav_bytes(tone, 16000))
    stereo[22:24] = struct.pack("<H", 2)
    with pytest.raises(ProviderError):
        pcm_from_wav(bytes(stereo), 16000)
