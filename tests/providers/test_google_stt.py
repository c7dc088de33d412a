"""Google streaming recognition specifics, against the gRPC fake: config on the wire, interim results, stream life."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import speech_v1
from google.oauth2 import service_account

from aipbx.providers.base import StreamingSpeechToText, SttStream
from aipbx.providers.errors import ProviderBadInput, ProviderError, ProviderTimeout, ProviderUnavailable
from aipbx.providers.google import GoogleStreamingSTT
from aipbx.providers.google._common import GoogleConnection, translate_google_error
from tests.fakes.google_grpc import FakeGoogleCloud
from tests.providers.conftest import Closer
from tests.providers.factories import SHORT_TIMEOUT_S, google_streaming_stt, google_stt

FRAME = (np.sin(np.arange(1600) / 3) * 6000).astype(np.int16)  # 100 ms at 16 kHz


async def test_satisfies_the_streaming_protocols(google_cloud: FakeGoogleCloud, closer: Closer) -> None:
    stt = closer(google_streaming_stt(google_cloud))
    assert isinstance(stt, StreamingSpeechToText)

    stream = await stt.open_stream()
    try:
        assert isinstance(stream, SttStream)
    finally:
        await stream.aclose()


async def test_interim_results_surface_before_the_final_one(google_cloud: FakeGoogleCloud, closer: Closer) -> None:
    # given
    google_cloud.speech.interim = ["안녕", "안녕하세요 예약"]
    google_cloud.speech.final = ["안녕하세요 예약하고 싶어요."]
    stt = closer(google_streaming_stt(google_cloud))
    stream = await stt.open_stream()
    results = aiter(stream.results())

    # when / then: each interim arrives while the caller is still talking
    await stream.send(FRAME)
    first = await asyncio.wait_for(anext(results), 5)
    await stream.send(FRAME)
    second = await asyncio.wait_for(anext(results), 5)
    assert (first.text, first.is_final) == ("안녕", False)
    assert (second.text, second.is_final) == ("안녕하세요 예약", False)
    assert not google_cloud.recognize_calls[0].half_closed

    # when / then: the final one comes after the end of audio
    await stream.finish()
    rest = [t async for t in results]
    assert [(t.text, t.is_final) for t in rest] == [("안녕하세요 예약하고 싶어요.", True)]
    final = rest[0]
    assert final.language == "ko"
    assert final.confidence == pytest.approx(0.92)
    assert final.duration_s == pytest.approx(0.2)
    assert final.compute_s > 0


async def test_the_config_on_the_wire_is_what_was_configured(google_cloud: FakeGoogleCloud, closer: Closer) -> None:
    # given
    stt = closer(google_streaming_stt(google_cloud))

    # when
    stream = await stt.open_stream()
    await stream.send(FRAME)
    await stream.finish()
    _ = [t async for t in stream.results()]

    # then
    received = google_cloud.recognize_calls[0].config
    config = received.config
    assert config.language_code == "ko-KR"
    assert config.model == "telephony"
    assert config.encoding == speech_v1.RecognitionConfig.AudioEncoding.LINEAR16
    assert config.sample_rate_hertz == 16000
    assert config.audio_channel_count == 1
    assert config.use_enhanced is True
    assert config.enable_automatic_punctuation is True
    assert received.interim_results is True
    assert received.single_utterance is False
    assert not config.speech_contexts  # no names to expect: no context


async def test_names_to_expect_travel_as_speech_context_phrases(google_cloud: FakeGoogleCloud, closer: Closer) -> None:
    stt = closer(google_stt(google_cloud))

    await stt.transcribe(np.tile(FRAME, 5), "ko", ["Dr. Minsu Park", "Chuseok"])

    config = google_cloud.recognize_calls[0].config.config
    assert [list(context.phrases) for context in config.speech_contexts] == [["Dr. Minsu Park", "Chuseok"]]


@pytest.mark.parametrize(("hint", "expected"), [("ko", "ko-KR"), ("en", "en-US"), ("en-GB", "en-GB")])
async def test_language_hints_become_bcp47_tags(
    google_cloud: FakeGoogleCloud, closer: Closer, hint: str, expected: str
) -> None:
    stt = closer(google_streaming_stt(google_cloud, sample_rate=8000))

    stream = await stt.open_stream(hint)
    await stream.send(FRAME)
    await stream.finish()
    _ = [t async for t in stream.results()]

    config = google_cloud.recognize_calls[0].config.config
    assert (config.language_code, config.sample_rate_hertz) == (expected, 8000)


async def test_audio_goes_out_as_little_endian_100ms_requests(google_cloud: FakeGoogleCloud, closer: Closer) -> None:
    stt = closer(google_streaming_stt(google_cloud))
    audio = (np.arange(16000 * 2 // 5) % 2000 - 1000).astype(np.int16)  # 400 ms ramp

    stream = await stt.open_stream()
    await stream.send(audio)
    await stream.finish()
    _ = [t async for t in stream.results()]

    call = google_cloud.recognize_calls[0]
    assert call.audio_requests == 4
    assert bytes(call.audio) == audio.astype("<i2").tobytes()


async def test_api_key_travels_as_call_metadata(google_cloud: FakeGoogleCloud, closer: Closer) -> None:
    stt = closer(GoogleStreamingSTT(api_key="test-api-key", endpoint=google_cloud.endpoint, insecure=True))

    stream = await stt.open_stream()
    await stream.send(FRAME)
    await stream.finish()
    _ = [t async for t in stream.results()]

    metadata = google_cloud.recognize_calls[0].metadata
    assert metadata["x-goog-api-key"] == "test-api-key"
    assert "gl-python" in metadata["x-goog-api-client"]


async def test_single_utterance_stops_the_audio_when_google_hears_the_end(
    google_cloud: FakeGoogleCloud, closer: Closer
) -> None:
    # given
    google_cloud.speech.interim = ["예약"]
    google_cloud.speech.end_of_utterance = True
    stt = closer(google_streaming_stt(google_cloud, single_utterance=True))
    stream = await stt.open_stream()
    results = aiter(stream.results())

    # when
    await stream.send(FRAME)
    interim = await anext(results)
    rest = [t async for t in results]  # no finish(): the event alone ends the audio

    # then
    assert google_cloud.recognize_calls[0].config.single_utterance is True
    assert not interim.is_final and rest and rest[-1].is_final
    with pytest.raises(ProviderBadInput):
        await stream.send(FRAME)


async def test_permission_denied_at_the_start_of_the_stream(google_cloud: FakeGoogleCloud, closer: Closer) -> None:
    google_cloud.speech.error = grpc.StatusCode.PERMISSION_DENIED
    google_cloud.speech.error_at = "start"
    stt = closer(google_streaming_stt(google_cloud))

    stream = await stt.open_stream()
    with pytest.raises(ProviderError) as caught:
        _ = [t async for t in stream.results()]

    assert caught.value.retryable is False
    assert "credentials" in str(caught.value)


async def test_final_budget_also_shortens_a_wait_already_in_progress(
    google_cloud: FakeGoogleCloud, closer: Closer
) -> None:
    # given: a reader already waiting for results, and a server that never answers the end of audio
    google_cloud.speech.interim = []
    google_cloud.speech.stall_s = 30
    stt = closer(google_streaming_stt(google_cloud))
    stream = await stt.open_stream()

    async def read_all() -> list[object]:
        return [t async for t in stream.results()]

    reader = asyncio.create_task(read_all())
    await stream.send(FRAME)
    await asyncio.sleep(0.2)

    # when
    started = time.perf_counter()
    await stream.finish()

    # then
    with pytest.raises(ProviderTimeout):
        await reader
    assert time.perf_counter() - started < SHORT_TIMEOUT_S + 1.0


async def test_aclose_ends_a_waiting_reader_quietly(google_cloud: FakeGoogleCloud, closer: Closer) -> None:
    google_cloud.speech.interim = []
    stt = closer(google_streaming_stt(google_cloud))
    stream = await stt.open_stream()

    async def read_all() -> list[object]:
        return [t async for t in stream.results()]

    async with asyncio.TaskGroup() as tg:
        reader = tg.create_task(read_all())
        await stream.send(FRAME)
        await asyncio.sleep(0.1)
        await stream.aclose()  # the caller hung up

        assert await asyncio.wait_for(reader, 2) == []
    with pytest.raises(ProviderBadInput):
        await stream.send(FRAME)


@pytest.mark.parametrize(
    "options",
    [
        {},  # no credentials at all: never fall back to the environment
        {"credentials": AnonymousCredentials(), "api_key": "k"},
        {"api_key": "k", "insecure": True},  # insecure needs an explicit endpoint
    ],
    ids=["none", "two", "insecure-without-endpoint"],
)
def test_credentials_must_be_explicit_and_unambiguous(options: dict[str, object]) -> None:
    with pytest.raises(ProviderUnavailable):
        GoogleStreamingSTT(**options)  # type: ignore[arg-type]


def test_only_telephone_sample_rates() -> None:
    with pytest.raises(ProviderBadInput):
        GoogleStreamingSTT(api_key="k", sample_rate=44100)


def test_a_status_lost_by_grpcio_is_retryable_and_explained() -> None:
    # grpcio asyncio replaces the server's status with this one when the server ends a stream
    # while the client is still writing (grpc/grpc#36066), e.g. PERMISSION_DENIED mid-upload.
    lost = gexc.InternalServerError("Internal error from Core")

    error = translate_google_error(lost, "google-stt", "streaming recognition")

    assert error.retryable is True
    assert "lost its status" in str(error) and "credentials" in str(error)


def test_a_service_account_key_file_is_loaded_explicitly(tmp_path: Path) -> None:
    # given: a service-account key file (a fresh RSA key; nothing is sent anywhere)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key_file = tmp_path / "sa.json"
    key_file.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "aipbx-test",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "stt@aipbx-test.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    connection = GoogleConnection(credentials_file=key_file)

    # when
    kwargs = connection.client_kwargs(object, "google-stt")

    # then
    assert isinstance(kwargs["credentials"], service_account.Credentials)
    assert kwargs["credentials"].service_account_email == "stt@aipbx-test.iam.gserviceaccount.com"
    with pytest.raises(ProviderUnavailable, match="cannot read service-account key"):
        GoogleConnection(credentials_file=tmp_path / "missing.json").client_kwargs(object, "google-stt")
