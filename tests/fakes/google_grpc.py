"""An in-process gRPC server that speaks Google's Speech v1 and Text-to-Speech v1 wire protocol.

The real ``google-cloud-speech`` / ``google-cloud-texttospeech`` clients are
pointed at it (``endpoint="127.0.0.1:PORT"``, ``insecure=True``,
``AnonymousCredentials``): requests and responses are (de)serialized with the
official message classes of the installed libraries, so the client's
serialization, streaming and error handling are exercised for real.

Implemented methods (``grpc.method_handlers_generic_handler``):

* ``google.cloud.speech.v1.Speech/StreamingRecognize``: after the config it
  answers one interim result per audio request (``SpeechScript.interim``), then
  the final results when the client half-closes.
* ``google.cloud.texttospeech.v1.TextToSpeech/SynthesizeSpeech``: a sine tone
  whose length follows the text, LINEAR16 with a WAV header like the real API.
* ``google.cloud.texttospeech.v1.TextToSpeech/StreamingSynthesize``: raw PCM
  chunks for each text input.

Behaviour is scripted per test (``server.speech``, ``server.tts``) and every
request is recorded for assertions.
"""

from __future__ import annotations

import asyncio
import io
import time
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np
from google.cloud import speech_v1, texttospeech_v1

__all__ = ["FakeGoogleCloud", "RecognizeCall", "SpeechScript", "TtsScript", "sine"]


def sine(seconds: float, rate: int, freq: float = 440.0, level: float = 0.3) -> np.ndarray:
    """``seconds`` of an int16 sine tone at ``rate``."""
    t = np.arange(round(seconds * rate)) / rate
    return (level * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def wav_bytes(pcm: np.ndarray, rate: int) -> bytes:
    """A mono 16-bit WAV file, as Google returns for LINEAR16."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.astype("<i2").tobytes())
    return out.getvalue()


@dataclass
class SpeechScript:
    """What ``StreamingRecognize`` answers.

    Attributes:
        interim: One interim transcript answered after each audio request, in order.
        final: Final transcripts answered once the client half-closes (if it sent audio).
        confidence: Confidence of the final results.
        language_code: Language the results report (Google answers lower case).
        error: Abort the call with this status ...
        error_at: ... right after the config (``"start"``) or once the client half-closes
            (``"end"``). With ``"start"`` a client that is still writing sees ``INTERNAL``
            instead of the status (grpcio asyncio bug grpc/grpc#36066), so tests that
            stream audio first use ``"end"``.
        error_message: Details of that status.
        stall_s: Sleep this long after the audio ends, before the finals.
        end_of_utterance: Send ``END_OF_SINGLE_UTTERANCE`` after the interims.
    """

    interim: list[str] = field(default_factory=lambda: ["안녕", "안녕하세요 예약"])
    final: list[str] = field(default_factory=lambda: ["안녕하세요 예약하고 싶어요."])
    confidence: float = 0.92
    language_code: str = "ko-kr"
    error: grpc.StatusCode | None = None
    error_at: str = "end"
    error_message: str = "scripted error"
    stall_s: float = 0.0
    end_of_utterance: bool = False


@dataclass
class TtsScript:
    """What the Text-to-Speech methods answer.

    Attributes:
        seconds_per_char: Length of the tone per character of input text.
        error: Abort every call with this status (``StreamingSynthesize``: once the client
            half-closes, for the reason given at ``SpeechScript.error_at``).
        error_message: Details of that status.
        stall_s: Sleep this long before answering.
        hold_text: Hold back the audio of any input containing this text ...
        release: ... until this event is set (proves the client streams sentence by sentence).
        stream_chunks: ``StreamingSynthesize`` answers each input in this many pieces.
    """

    seconds_per_char: float = 0.01
    error: grpc.StatusCode | None = None
    error_message: str = "scripted error"
    stall_s: float = 0.0
    hold_text: str | None = None
    release: asyncio.Event | None = None
    stream_chunks: int = 3


@dataclass
class RecognizeCall:
    """What the server received on one ``StreamingRecognize`` call."""

    config: Any = None
    metadata: dict[str, str] = field(default_factory=dict)
    audio: bytearray = field(default_factory=bytearray)
    audio_requests: int = 0
    half_closed: bool = False


class FakeGoogleCloud:
    """The fake Speech and Text-to-Speech services on ``127.0.0.1:<random port>``."""

    def __init__(self) -> None:
        self.speech = SpeechScript()
        self.tts = TtsScript()
        self.recognize_calls: list[RecognizeCall] = []
        self.synthesize_requests: list[Any] = []
        self.streaming_synthesize_requests: list[list[Any]] = []
        self.answered_at: list[tuple[str, float]] = []  # (text, perf_counter) of each TTS answer
        self.tts_metadata: list[dict[str, str]] = []  # call metadata (API key, client headers) of TTS calls
        self._server: grpc.aio.Server | None = None
        self._closing = asyncio.Event()
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = grpc.aio.server()
        speech_types, tts_types = speech_v1, texttospeech_v1
        self._server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "google.cloud.speech.v1.Speech",
                    {
                        "StreamingRecognize": grpc.stream_stream_rpc_method_handler(
                            self._streaming_recognize,
                            request_deserializer=speech_types.StreamingRecognizeRequest.deserialize,
                            response_serializer=speech_types.StreamingRecognizeResponse.serialize,
                        )
                    },
                ),
                grpc.method_handlers_generic_handler(
                    "google.cloud.texttospeech.v1.TextToSpeech",
                    {
                        "SynthesizeSpeech": grpc.unary_unary_rpc_method_handler(
                            self._synthesize_speech,
                            request_deserializer=tts_types.SynthesizeSpeechRequest.deserialize,
                            response_serializer=tts_types.SynthesizeSpeechResponse.serialize,
                        ),
                        "StreamingSynthesize": grpc.stream_stream_rpc_method_handler(
                            self._streaming_synthesize,
                            request_deserializer=tts_types.StreamingSynthesizeRequest.deserialize,
                            response_serializer=tts_types.StreamingSynthesizeResponse.serialize,
                        ),
                    },
                ),
            )
        )
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()

    async def stop(self) -> None:
        self._closing.set()  # ends every stall at once
        if self._server is not None:
            await self._server.stop(grace=None)

    async def _stall(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._closing.wait(), seconds)
        except TimeoutError:
            pass

    # -- Speech -------------------------------------------------------------------------

    def _recognize_response(self, text: str, is_final: bool) -> Any:
        script = self.speech
        result = speech_v1.StreamingRecognitionResult(
            alternatives=[
                speech_v1.SpeechRecognitionAlternative(
                    transcript=text, confidence=script.confidence if is_final else 0.0
                )
            ],
            is_final=is_final,
            stability=0.0 if is_final else 0.8,
            language_code=script.language_code,
        )
        return speech_v1.StreamingRecognizeResponse(results=[result])

    async def _streaming_recognize(self, requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
        script = self.speech
        call = RecognizeCall(metadata={m.key: m.value for m in context.invocation_metadata()})
        self.recognize_calls.append(call)
        async for request in requests:
            kind = speech_v1.StreamingRecognizeRequest.pb(request).WhichOneof("streaming_request")
            if call.config is None:
                if kind != "streaming_config":
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "first request must carry the config")
                call.config = request.streaming_config
                if script.error is not None and script.error_at == "start":
                    await context.abort(script.error, script.error_message)
                continue
            if kind != "audio_content":
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "config sent twice")
            call.audio += request.audio_content
            call.audio_requests += 1
            if call.audio_requests <= len(script.interim):
                yield self._recognize_response(script.interim[call.audio_requests - 1], False)
                if script.end_of_utterance and call.audio_requests == len(script.interim):
                    event = speech_v1.StreamingRecognizeResponse.SpeechEventType.END_OF_SINGLE_UTTERANCE
                    yield speech_v1.StreamingRecognizeResponse(speech_event_type=event)
        call.half_closed = True
        if script.error is not None:
            await context.abort(script.error, script.error_message)
        if script.stall_s:
            await self._stall(script.stall_s)
        if call.audio:  # like the real service: no speech, no results
            for text in script.final:
                yield self._recognize_response(text, True)

    # -- Text-to-Speech ----------------------------------------------------------------

    async def _before_audio(self, text: str, context: Any) -> None:
        script = self.tts
        if script.error is not None:
            await context.abort(script.error, script.error_message)
        if script.stall_s:
            await self._stall(script.stall_s)
        if script.hold_text and script.hold_text in text and script.release is not None:
            await script.release.wait()

    def _tone(self, text: str, rate: int) -> np.ndarray:
        return sine(max(0.05, self.tts.seconds_per_char * len(text)), rate)

    async def _synthesize_speech(self, request: Any, context: Any) -> Any:
        self.synthesize_requests.append(request)
        self.tts_metadata.append({m.key: m.value for m in context.invocation_metadata()})
        text = request.input.text
        await self._before_audio(text, context)
        rate = request.audio_config.sample_rate_hertz or 24000
        pcm = self._tone(text, rate)
        encoding = request.audio_config.audio_encoding
        if encoding == texttospeech_v1.AudioEncoding.LINEAR16:
            audio = wav_bytes(pcm, rate)
        elif encoding == texttospeech_v1.AudioEncoding.PCM:
            audio = pcm.astype("<i2").tobytes()
        else:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"fake cannot encode {encoding!r}")
        self.answered_at.append((text, time.perf_counter()))
        return texttospeech_v1.SynthesizeSpeechResponse(audio_content=audio)

    async def _streaming_synthesize(self, requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
        received: list[Any] = []
        self.streaming_synthesize_requests.append(received)
        self.tts_metadata.append({m.key: m.value for m in context.invocation_metadata()})
        rate = 24000
        async for request in requests:
            received.append(request)
            kind = texttospeech_v1.StreamingSynthesizeRequest.pb(request).WhichOneof("streaming_request")
            if len(received) == 1:
                if kind != "streaming_config":
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "first request must carry the config")
                rate = request.streaming_config.streaming_audio_config.sample_rate_hertz or rate
                continue
            if self.tts.error is not None:
                continue  # read to the half-close first, see SpeechScript.error_at (grpc/grpc#36066)
            text = request.input.text
            await self._before_audio(text, context)
            data = self._tone(text, rate).astype("<i2").tobytes()
            # Deliberately cut at odd byte offsets: a sample may straddle two messages.
            step = (len(data) // self.tts.stream_chunks) | 1
            for start in range(0, len(data), step):
                yield texttospeech_v1.StreamingSynthesizeResponse(audio_content=data[start : start + step])
            self.answered_at.append((text, time.perf_counter()))
        if self.tts.error is not None:
            await context.abort(self.tts.error, self.tts.error_message)
