"""Google Cloud Text-to-Speech (v1) behind the ``TextToSpeech`` protocol.

Theory of operation: the text is split into sentences first, so the first
sentence can be played while the rest is still being synthesized. Two paths:

* **Streaming** (``StreamingSynthesize``, Chirp 3 HD voices): one bidirectional
  call; the config goes first, then one text input per sentence, and raw PCM
  arrives in pieces that are yielded as they come (a sample can straddle two
  pieces, so an odd trailing byte is carried over).
* **Per sentence** (``SynthesizeSpeech``, every other voice, e.g. Neural2 or
  WaveNet, which cannot stream): one unary call per sentence, first sentence
  first. LINEAR16 answers are WAV files, so the RIFF header is parsed and
  stripped (and its format checked) before the samples are yielded.

Every call has an explicit deadline and no hidden retries; errors are
translated by :func:`aipbx.providers.google._common.translate_google_error`.
"""

from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import Any, Final

import numpy as np

from aipbx.providers.base import Pcm, collect_audio
from aipbx.providers.errors import ProviderBadInput, ProviderError, ProviderTimeout
from aipbx.providers.google._common import (
    GoogleConnection,
    google_error_types,
    import_sdk,
    translate_google_error,
)

__all__ = ["GoogleTTS", "pcm_from_wav", "split_sentences"]

_PROVIDER: Final = "google-tts"
_SDK: Final = "google.cloud.texttospeech_v1"
_MAX_INPUT_BYTES: Final = 4500  # the API refuses inputs over 5000 bytes
_STREAMING_VOICE_MARKERS: Final = ("Chirp3-HD", "Chirp-HD")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？…])\s+|\s*\n+\s*")


def split_sentences(text: str, max_bytes: int = _MAX_INPUT_BYTES) -> list[str]:
    """Split ``text`` after sentence punctuation (and at line breaks), keeping each piece under ``max_bytes``.

    A decimal point ("3.5") is not a sentence end because no space follows it.
    A sentence longer than ``max_bytes`` of UTF-8 is cut between words.
    """
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text.strip()):
        sentence = sentence.strip()
        if not sentence:
            continue
        current = ""
        for word in sentence.split(" "):
            candidate = f"{current} {word}" if current else word
            if current and len(candidate.encode("utf-8")) > max_bytes:
                pieces.append(current)
                candidate = word
            current = candidate
        pieces.append(current)
    return pieces


def pcm_from_wav(data: bytes, expected_rate: int, provider: str = _PROVIDER) -> Pcm:
    """Return the int16 samples of a mono 16-bit WAV file (or of headerless PCM) as a numpy array.

    Raises:
        ProviderError: The WAV is not mono 16-bit at ``expected_rate``, or is truncated.
    """
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        pos = 12
        while pos + 8 <= len(data):
            chunk_id, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
            body = pos + 8
            if chunk_id == b"fmt ":
                fmt, channels, rate, _byte_rate, _align, bits = struct.unpack("<HHIIHH", data[body : body + 16])
                if (fmt, channels, rate, bits) != (1, 1, expected_rate, 16):
                    raise ProviderError(
                        f"unexpected audio format: format {fmt}, {channels} ch, {rate} Hz, {bits} bit "
                        f"(asked for mono 16-bit PCM at {expected_rate} Hz)",
                        provider=provider,
                        retryable=False,
                    )
            elif chunk_id == b"data":
                data = data[body : body + size]
                break
            pos = body + size + (size & 1)  # chunks are word-aligned
        else:
            raise ProviderError("WAV answer has no data chunk", provider=provider)
    usable = len(data) - len(data) % 2
    return np.frombuffer(data[:usable], dtype="<i2").astype(np.int16)


class GoogleTTS:
    """Speech synthesis with Google Cloud Text-to-Speech (implements ``TextToSpeech``).

    Args:
        credentials: ``google.auth`` credentials object (exactly one of the three is required).
        credentials_file: Service-account JSON key file.
        api_key: Google Cloud API key.
        endpoint: ``host:port`` override (a regional endpoint, or a local test server).
        insecure: No TLS to ``endpoint``; loopback only (local test servers, emulators).
        voice: Voice name; its first two parts are the language (``"ko-KR-Neural2-A"``).
        sample_rate: Output rate in Hz (the service resamples; 8000 suits the phone leg).
        speaking_rate: 0.25..2.0, 1.0 is the voice's normal speed.
        pitch: Semitones, -20..20 (ignored by streaming voices).
        volume_gain_db: -96..16 dB (ignored by streaming voices).
        effects_profile_id: Audio profile, e.g. ``"telephony-class-application"``; None for none.
        streaming: Force (True) or forbid (False) ``StreamingSynthesize``; None picks it for
            Chirp 3 HD voices, the ones the service can stream.
        request_timeout_s: Deadline of each ``SynthesizeSpeech`` call (one sentence).
        chunk_timeout_s: Budget for each piece of a streaming answer.
        stream_timeout_s: Deadline of a whole ``StreamingSynthesize`` call.
    """

    provider_name: Final = _PROVIDER

    def __init__(
        self,
        *,
        credentials: Any = None,
        credentials_file: str | Path | None = None,
        api_key: str | None = None,
        endpoint: str | None = None,
        insecure: bool = False,
        voice: str = "ko-KR-Neural2-A",
        sample_rate: int = 24000,
        speaking_rate: float = 1.0,
        pitch: float = 0.0,
        volume_gain_db: float = 0.0,
        effects_profile_id: str | None = "telephony-class-application",
        streaming: bool | None = None,
        request_timeout_s: float = 10.0,
        chunk_timeout_s: float = 10.0,
        stream_timeout_s: float = 60.0,
    ) -> None:
        self._tts = import_sdk(_SDK, _PROVIDER)
        self._connection = GoogleConnection(credentials, credentials_file, api_key, endpoint, insecure)
        self._connection.check(_PROVIDER)
        parts = voice.split("-")
        if len(parts) < 3:
            raise ProviderBadInput(f"voice name {voice!r} should look like 'ko-KR-Neural2-A'", provider=_PROVIDER)
        self.voice = voice
        self.language_code = "-".join(parts[:2])
        self.sample_rate = sample_rate
        self.speaking_rate = speaking_rate
        self.pitch = pitch
        self.volume_gain_db = volume_gain_db
        self.effects_profile_id = effects_profile_id
        can_stream = hasattr(self._tts.TextToSpeechAsyncClient, "streaming_synthesize")
        if streaming and not can_stream:
            raise ProviderBadInput("this google-cloud-texttospeech cannot stream; upgrade it", provider=_PROVIDER)
        self.streaming = (
            can_stream and any(m in voice for m in _STREAMING_VOICE_MARKERS) if streaming is None else streaming
        )
        self.request_timeout_s = request_timeout_s
        self.chunk_timeout_s = chunk_timeout_s
        self.stream_timeout_s = stream_timeout_s
        self._client: Any = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"GoogleTTS(voice={self.voice!r}, sample_rate={self.sample_rate}, streaming={self.streaming})"

    def _get_client(self) -> Any:
        # gRPC asyncio channels belong to the loop that created them.
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            transport = self._tts.services.text_to_speech.transports.TextToSpeechGrpcAsyncIOTransport
            try:
                self._client = self._tts.TextToSpeechAsyncClient(**self._connection.client_kwargs(transport, _PROVIDER))
            except google_error_types() as exc:
                raise translate_google_error(exc, _PROVIDER, "creating the text-to-speech client") from exc
            self._client_loop = loop
        return self._client

    def _voice_params(self) -> Any:
        return self._tts.VoiceSelectionParams(language_code=self.language_code, name=self.voice)

    def synthesize_request(self, sentence: str) -> Any:
        """The ``SynthesizeSpeechRequest`` for one sentence (per-sentence path)."""
        tts = self._tts
        audio_config = tts.AudioConfig(
            audio_encoding=tts.AudioEncoding.LINEAR16,
            sample_rate_hertz=self.sample_rate,
            speaking_rate=self.speaking_rate,
            pitch=self.pitch,
            volume_gain_db=self.volume_gain_db,
            effects_profile_id=[self.effects_profile_id] if self.effects_profile_id else [],
        )
        return tts.SynthesizeSpeechRequest(
            input=tts.SynthesisInput(text=sentence), voice=self._voice_params(), audio_config=audio_config
        )

    async def synthesize(self, text: str) -> AsyncIterator[Pcm]:
        """Yield int16 chunks at ``sample_rate``: the first sentence's audio as soon as it exists."""
        if not isinstance(text, str) or not text.strip():
            raise ProviderBadInput("nothing to say: text is empty", provider=_PROVIDER)
        sentences = split_sentences(text)
        source = self._stream(sentences) if self.streaming else self._per_sentence(sentences)
        async with aclosing(source) as chunks:  # closes the gRPC call if the consumer stops early
            async for chunk in chunks:
                yield chunk

    async def _per_sentence(self, sentences: list[str]) -> AsyncGenerator[Pcm, None]:
        client = self._get_client()
        for sentence in sentences:
            try:
                response = await client.synthesize_speech(
                    request=self.synthesize_request(sentence), timeout=self.request_timeout_s, retry=None
                )
            except google_error_types() as exc:
                raise translate_google_error(exc, _PROVIDER, "speech synthesis") from exc
            pcm = pcm_from_wav(response.audio_content, self.sample_rate)
            if len(pcm):
                yield pcm

    async def _requests(self, sentences: list[str]) -> AsyncIterator[Any]:
        tts = self._tts
        config = tts.StreamingSynthesizeConfig(
            voice=self._voice_params(),
            streaming_audio_config=tts.StreamingAudioConfig(
                audio_encoding=tts.AudioEncoding.PCM,  # headerless: the pieces can be played as they come
                sample_rate_hertz=self.sample_rate,
                speaking_rate=self.speaking_rate,
            ),
        )
        yield tts.StreamingSynthesizeRequest(streaming_config=config)
        for sentence in sentences:
            yield tts.StreamingSynthesizeRequest(input=tts.StreamingSynthesisInput(text=sentence))

    async def _stream(self, sentences: list[str]) -> AsyncGenerator[Pcm, None]:
        client = self._get_client()
        call: Any = None
        carry = b""
        try:
            call = await client.streaming_synthesize(
                requests=self._requests(sentences), timeout=self.stream_timeout_s, retry=None
            )
            responses = call.__aiter__()
            while True:
                try:
                    async with asyncio.timeout(self.chunk_timeout_s):
                        response = await anext(responses)
                except StopAsyncIteration:
                    break
                data = carry + response.audio_content
                usable = len(data) - len(data) % 2
                carry = data[usable:]
                if usable:
                    yield np.frombuffer(data[:usable], dtype="<i2").astype(np.int16)
        except TimeoutError as exc:
            raise ProviderTimeout(f"no audio within {self.chunk_timeout_s:.1f} s", provider=_PROVIDER) from exc
        except google_error_types() as exc:
            raise translate_google_error(exc, _PROVIDER, "streaming speech synthesis") from exc
        finally:
            if call is not None:
                call.cancel()  # no-op when the call ended; frees it when the consumer left early

    async def synthesize_all(self, text: str) -> Pcm:
        """Synthesize ``text`` completely into one int16 array."""
        return await collect_audio(self.synthesize(text))

    async def aclose(self) -> None:
        """Close the gRPC channel (call from the loop that used the provider)."""
        client, self._client = self._client, None
        if client is not None and self._client_loop is asyncio.get_running_loop():
            await client.transport.close()
