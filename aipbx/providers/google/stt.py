"""Google Cloud Speech-to-Text (v1 ``StreamingRecognize``) behind the provider protocols.

Theory of operation: :meth:`GoogleStreamingSTT.open_stream` starts one
bidirectional gRPC call. The first request carries the recognition config
(LINEAR16 at 8 or 16 kHz, the ``telephony`` model, punctuation, interim
results); every later request carries up to 100 ms of audio that the caller
``send()``s from a queue, and ``finish()`` half-closes the request side.
``results()`` turns each ``StreamingRecognizeResponse`` into
:class:`~aipbx.providers.base.Transcript` objects: one interim transcript
(the concatenation of the unstable results) or one final per final result.

Time budgets are explicit: the whole call has a gRPC deadline
(``stream_timeout_s``; Google itself stops a stream after about 5 minutes),
and after ``finish()`` the final result must arrive within
``final_timeout_s``. :class:`GoogleSTT` wraps one stream per utterance to
implement the whole-utterance ``SpeechToText`` protocol.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Final

from aipbx.providers.base import Pcm, Transcript, ensure_pcm16_mono
from aipbx.providers.errors import ProviderBadInput, ProviderError, ProviderTimeout
from aipbx.providers.google._common import (
    GoogleConnection,
    bcp47,
    google_error_types,
    import_sdk,
    iso_language,
    translate_google_error,
)

__all__ = ["GoogleSTT", "GoogleStreamingSTT", "GoogleSttStream"]

_PROVIDER: Final = "google-stt"
_SDK: Final = "google.cloud.speech_v1"
_CHUNK_MS: Final = 100  # Google recommends ~100 ms frames; a request may carry at most 25 KB
_END_AUDIO: Final = None


class GoogleSttStream:
    """One ``StreamingRecognize`` call (implements ``SttStream``); made by :meth:`GoogleStreamingSTT.open_stream`."""

    def __init__(self, owner: GoogleStreamingSTT, config: Any, language_tag: str) -> None:
        self._owner = owner
        self._config = config
        self._language = iso_language(language_tag)
        self._audio: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._chunk_bytes = owner.sample_rate * 2 * _CHUNK_MS // 1000
        self._samples_sent = 0
        self._opened = time.perf_counter()
        self._call: Any = None
        self._audio_ended = False
        self._closed = False
        self._final_deadline: float | None = None
        self._read_scope: asyncio.Timeout | None = None

    async def _requests(self) -> AsyncIterator[Any]:
        """The request side of the call: the config first, then audio until ``finish()``."""
        speech = self._owner._speech
        yield speech.StreamingRecognizeRequest(streaming_config=self._config)
        while (chunk := await self._audio.get()) is not _END_AUDIO:
            yield speech.StreamingRecognizeRequest(audio_content=chunk)

    async def _start(self, client: Any) -> None:
        try:
            self._call = await client.streaming_recognize(
                requests=self._requests(), timeout=self._owner.stream_timeout_s, retry=None
            )
        except google_error_types() as exc:
            raise translate_google_error(exc, _PROVIDER, "opening the recognition stream") from exc

    def _end_audio(self) -> None:
        if not self._audio_ended:
            self._audio_ended = True
            self._audio.put_nowait(_END_AUDIO)

    async def send(self, pcm: Pcm) -> None:
        """Queue int16 mono audio at the provider's ``sample_rate`` (split into 100 ms requests)."""
        pcm = ensure_pcm16_mono(pcm, provider=_PROVIDER)
        if self._closed or self._audio_ended:
            raise ProviderBadInput("the stream no longer accepts audio (finished or closed)", provider=_PROVIDER)
        data = pcm.astype("<i2", copy=False).tobytes()  # LINEAR16 is little-endian
        for start in range(0, len(data), self._chunk_bytes):
            self._audio.put_nowait(data[start : start + self._chunk_bytes])
        self._samples_sent += len(pcm)

    async def finish(self) -> None:
        """End the audio; the final result must then arrive within ``final_timeout_s``."""
        self._end_audio()
        if self._final_deadline is None:
            self._final_deadline = asyncio.get_running_loop().time() + self._owner.final_timeout_s
            if self._read_scope is not None:  # a reader is already waiting: shorten its wait
                self._read_scope.reschedule(self._final_deadline)

    async def aclose(self) -> None:
        """Abandon the call at once (the caller hung up or the utterance is done)."""
        self._closed = True
        self._end_audio()
        if self._call is not None:
            self._call.cancel()

    def _transcript(self, text: str, is_final: bool, confidence: float | None, language: str | None) -> Transcript:
        return Transcript(
            text=text.strip(),
            language=iso_language(language) or self._language,
            is_final=is_final,
            confidence=confidence if confidence else None,
            duration_s=self._samples_sent / self._owner.sample_rate,
            compute_s=time.perf_counter() - self._opened,
        )

    async def results(self) -> AsyncIterator[Transcript]:
        """Yield interim and final transcripts until the server ends the call.

        ``duration_s`` is the audio sent so far and ``compute_s`` the time since
        the stream was opened (a streaming recogniser has no separate compute phase).
        """
        if self._call is None:
            raise ProviderError("stream was not started", provider=_PROVIDER, retryable=False)
        responses = self._call.__aiter__()
        speech = self._owner._speech
        end_of_utterance = speech.StreamingRecognizeResponse.SpeechEventType.END_OF_SINGLE_UTTERANCE
        while True:
            try:
                async with asyncio.timeout_at(self._final_deadline) as scope:
                    self._read_scope = scope
                    response = await anext(responses)
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                # grpc.aio raises CancelledError to readers of a call that aclose() cancelled;
                # for a reader that is not itself being cancelled, the stream simply ended.
                task = asyncio.current_task()
                if self._closed and task is not None and task.cancelling() == 0:
                    return
                raise
            except TimeoutError as exc:
                raise ProviderTimeout(
                    f"no final result within {self._owner.final_timeout_s:.1f} s of the end of audio",
                    provider=_PROVIDER,
                ) from exc
            except google_error_types() as exc:
                raise translate_google_error(exc, _PROVIDER, "streaming recognition") from exc
            finally:
                self._read_scope = None
            if response.error.code:
                raise ProviderError(
                    f"streaming recognition failed: code {response.error.code}: {response.error.message}",
                    provider=_PROVIDER,
                )
            if response.speech_event_type == end_of_utterance:
                self._end_audio()  # single_utterance: Google stops listening, so stop sending
            interim: list[str] = []
            for result in response.results:
                if not result.alternatives:
                    continue
                best = result.alternatives[0]
                if result.is_final:
                    yield self._transcript(best.transcript, True, best.confidence, result.language_code)
                else:
                    interim.append(best.transcript)
            if interim:
                yield self._transcript("".join(interim), False, None, None)


class GoogleStreamingSTT:
    """Streaming recognition with Google Cloud Speech v1 (implements ``StreamingSpeechToText``).

    Args:
        credentials: ``google.auth`` credentials object (exactly one of the three is required).
        credentials_file: Service-account JSON key file.
        api_key: Google Cloud API key.
        endpoint: ``host:port`` override (a regional endpoint, or a local test server).
        insecure: No TLS to ``endpoint``; loopback only (local test servers, emulators).
        sample_rate: 16000 (wideband) or 8000 (the telephone leg as is).
        language: BCP-47 tag used when ``open_stream`` gets no hint, e.g. ``"ko-KR"``.
        model: Recognition model; ``"telephony"`` is tuned for phone audio.
        use_enhanced: Ask for the enhanced variant of the model.
        automatic_punctuation: Let Google add punctuation.
        interim_results: Stream interim hypotheses (``Transcript.is_final`` False).
        single_utterance: Google ends the stream by itself when the speaker pauses.
        stream_timeout_s: gRPC deadline of the whole stream.
        final_timeout_s: Budget for the last results after ``finish()``.
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
        sample_rate: int = 16000,
        language: str = "ko-KR",
        model: str = "telephony",
        use_enhanced: bool = True,
        automatic_punctuation: bool = True,
        interim_results: bool = True,
        single_utterance: bool = False,
        stream_timeout_s: float = 120.0,
        final_timeout_s: float = 5.0,
    ) -> None:
        if sample_rate not in (8000, 16000):
            raise ProviderBadInput(f"sample_rate must be 8000 or 16000, not {sample_rate}", provider=_PROVIDER)
        self._speech = import_sdk(_SDK, _PROVIDER)
        self._connection = GoogleConnection(credentials, credentials_file, api_key, endpoint, insecure)
        self._connection.check(_PROVIDER)
        self.sample_rate = sample_rate
        self.language = language
        self.model = model
        self.use_enhanced = use_enhanced
        self.automatic_punctuation = automatic_punctuation
        self.interim_results = interim_results
        self.single_utterance = single_utterance
        self.stream_timeout_s = stream_timeout_s
        self.final_timeout_s = final_timeout_s
        self._client: Any = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"GoogleStreamingSTT(language={self.language!r}, model={self.model!r}, sample_rate={self.sample_rate})"

    def streaming_config(self, language: str | None = None, hints: Sequence[str] = ()) -> Any:
        """The ``StreamingRecognitionConfig`` sent as the first request of each stream; ``hints``
        become a speech context's phrases (names the speaker may say)."""
        speech = self._speech
        config = speech.RecognitionConfig(
            encoding=speech.RecognitionConfig.AudioEncoding.LINEAR16,
            sample_rate_hertz=self.sample_rate,
            audio_channel_count=1,
            language_code=bcp47(language or self.language),
            model=self.model,
            use_enhanced=self.use_enhanced,
            enable_automatic_punctuation=self.automatic_punctuation,
            max_alternatives=1,
            speech_contexts=[speech.SpeechContext(phrases=list(hints))] if hints else [],
        )
        return speech.StreamingRecognitionConfig(
            config=config, interim_results=self.interim_results, single_utterance=self.single_utterance
        )

    def _get_client(self) -> Any:
        # gRPC asyncio channels belong to the loop that created them.
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            transport = self._speech.services.speech.transports.SpeechGrpcAsyncIOTransport
            try:
                self._client = self._speech.SpeechAsyncClient(**self._connection.client_kwargs(transport, _PROVIDER))
            except google_error_types() as exc:
                raise translate_google_error(exc, _PROVIDER, "creating the speech client") from exc
            self._client_loop = loop
        return self._client

    async def open_stream(self, language: str | None = None, hints: Sequence[str] = ()) -> GoogleSttStream:
        """Start a recognition stream; ``language`` is an ISO 639-1 hint or a BCP-47 tag."""
        config = self.streaming_config(language, hints)
        stream = GoogleSttStream(self, config, config.config.language_code)
        await stream._start(self._get_client())
        return stream

    async def aclose(self) -> None:
        """Close the gRPC channel (call from the loop that used the provider)."""
        client, self._client = self._client, None
        if client is not None and self._client_loop is asyncio.get_running_loop():
            await client.transport.close()


class GoogleSTT:
    """Whole-utterance recognition over one Google stream (implements ``SpeechToText``).

    Args:
        streaming: The configured streaming recogniser to run.
        timeout_s: Budget for one utterance, from opening the stream to the last final result.
    """

    provider_name: Final = _PROVIDER

    def __init__(self, streaming: GoogleStreamingSTT, *, timeout_s: float = 15.0) -> None:
        self.streaming = streaming
        self.sample_rate = streaming.sample_rate
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"GoogleSTT({self.streaming!r})"

    async def transcribe(self, pcm: Pcm, language: str | None = None, hints: Sequence[str] = ()) -> Transcript:
        """Send the whole utterance on one stream and join the final results."""
        pcm = ensure_pcm16_mono(pcm, provider=_PROVIDER)
        started = time.perf_counter()
        duration_s = len(pcm) / self.sample_rate
        tag = bcp47(language or self.streaming.language)
        if len(pcm) == 0:  # nothing was said; Google would answer nothing
            return Transcript("", iso_language(tag), True, None, 0.0, time.perf_counter() - started)
        finals: list[Transcript] = []
        try:
            async with asyncio.timeout(self.timeout_s):
                stream = await self.streaming.open_stream(tag, hints)
                try:
                    await stream.send(pcm)
                    await stream.finish()
                    finals = [t async for t in stream.results() if t.is_final]
                finally:
                    await stream.aclose()
        except TimeoutError as exc:
            raise ProviderTimeout(f"no transcript within {self.timeout_s:.1f} s", provider=_PROVIDER) from exc
        confidences = [t.confidence for t in finals if t.confidence is not None]
        return Transcript(
            text=" ".join(t.text for t in finals if t.text).strip(),
            language=next((t.language for t in finals if t.language), iso_language(tag)),
            is_final=True,
            confidence=sum(confidences) / len(confidences) if confidences else None,
            duration_s=duration_s,
            compute_s=time.perf_counter() - started,
        )

    async def aclose(self) -> None:
        """Close the underlying channel."""
        await self.streaming.aclose()
