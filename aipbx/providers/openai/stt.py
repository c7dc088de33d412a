"""Whole-utterance transcription with OpenAI's ``audio.transcriptions`` as a ``SpeechToText``.

Theory of operation: the utterance (int16 mono) is wrapped in an in-memory
WAV file and uploaded as multipart form data together with the model
(``gpt-4o-mini-transcribe`` by default) and an ISO 639-1 language hint. The
service is batch only, so ``Transcript.is_final`` is always True and the
compute time includes the upload. Any OpenAI-compatible server with
``/v1/audio/transcriptions`` (e.g. a local faster-whisper server) works too.
"""

from __future__ import annotations

import asyncio
import io
import time
import wave
from collections.abc import Sequence
from typing import Any, Final

from aipbx.providers.base import Pcm, Transcript, ensure_pcm16_mono, hints_prompt
from aipbx.providers.errors import ProviderTimeout
from aipbx.providers.openai._common import (
    DEFAULT_BASE_URL,
    import_openai,
    make_client,
    translate_openai_error,
    vendor_errors,
)

__all__ = ["OpenAISTT", "wav_from_pcm"]

_PROVIDER: Final = "openai-stt"


def wav_from_pcm(pcm: Pcm, sample_rate: int) -> bytes:
    """A mono 16-bit little-endian WAV file holding ``pcm``."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm.astype("<i2", copy=False).tobytes())
    return out.getvalue()


def _iso_language(language: str | None) -> str | None:
    """``"ko-KR"`` -> ``"ko"``: the API takes ISO 639-1 codes."""
    return language.split("-")[0].lower() if language else None


class OpenAISTT:
    """Transcription with OpenAI (implements ``SpeechToText``).

    Args:
        api_key: API key (required; nothing is read from the environment).
        model: ``"gpt-4o-mini-transcribe"``, ``"gpt-4o-transcribe"`` or ``"whisper-1"``.
        base_url: API root including ``/v1``.
        language: Default ISO 639-1 hint; None lets the model detect the language.
        prompt: Optional text that biases the recogniser (names, vocabulary of the business).
        sample_rate: Rate of the audio the caller hands over (16000 is what the pipeline uses).
        organization: OpenAI organization id, if any.
        project: OpenAI project id, if any.
        timeout_s: Budget of the whole request (also httpx's read/write timeout).
        connect_timeout_s: httpx connect timeout.
        max_retries: SDK-level retries (0: the caller decides, from ``retryable``).
    """

    provider_name: Final = _PROVIDER

    def __init__(
        self,
        *,
        api_key: str,
        model: str = "gpt-4o-mini-transcribe",
        base_url: str = DEFAULT_BASE_URL,
        language: str | None = None,
        prompt: str | None = None,
        sample_rate: int = 16000,
        organization: str | None = None,
        project: str | None = None,
        timeout_s: float = 15.0,
        connect_timeout_s: float = 5.0,
        max_retries: int = 0,
    ) -> None:
        openai = import_openai(_PROVIDER)
        self._client = make_client(
            openai,
            provider=_PROVIDER,
            api_key=api_key,
            base_url=base_url,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            max_retries=max_retries,
            organization=organization,
            project=project,
        )
        self._vendor_errors = vendor_errors(_PROVIDER)
        self.model = model
        self.language = language
        self.prompt = prompt
        self.sample_rate = sample_rate
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"OpenAISTT(model={self.model!r}, language={self.language!r})"

    async def transcribe(self, pcm: Pcm, language: str | None = None, hints: Sequence[str] = ()) -> Transcript:
        """Upload one utterance and return its transcript (see ``SpeechToText``); ``hints`` join the prompt."""
        pcm = ensure_pcm16_mono(pcm, provider=_PROVIDER)
        language = _iso_language(language or self.language)
        started = time.perf_counter()
        duration_s = len(pcm) / self.sample_rate
        if len(pcm) == 0:  # the API refuses empty audio; nothing was said
            return Transcript("", language, True, None, 0.0, time.perf_counter() - started)
        options: dict[str, Any] = {}
        if language:
            options["language"] = language
        prompt = " ".join(part for part in (self.prompt, hints_prompt(hints)) if part)
        if prompt:
            options["prompt"] = prompt
        try:
            async with asyncio.timeout(self.timeout_s):
                result = await self._client.audio.transcriptions.create(
                    model=self.model,
                    file=("utterance.wav", wav_from_pcm(pcm, self.sample_rate), "audio/wav"),
                    response_format="json",
                    **options,
                )
        except TimeoutError as exc:
            raise ProviderTimeout(f"no transcript within {self.timeout_s:.1f} s", provider=_PROVIDER) from exc
        except self._vendor_errors as exc:
            raise translate_openai_error(exc, _PROVIDER, "transcription") from exc
        return Transcript(
            text=(result.text or "").strip(),
            language=language,
            is_final=True,
            confidence=None,
            duration_s=duration_s,
            compute_s=time.perf_counter() - started,
        )

    async def aclose(self) -> None:
        """Close the SDK's HTTP client."""
        await self._client.close()
