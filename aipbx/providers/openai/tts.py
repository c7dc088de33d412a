"""Speech synthesis with OpenAI's ``audio.speech`` as a ``TextToSpeech``, streamed as it is generated.

Theory of operation: ``response_format="pcm"`` makes the service answer raw
24 kHz signed 16-bit little-endian mono, with no container to parse, and
``with_streaming_response`` hands over the body as it arrives, so the first
words can be played while the rest is still being generated. Network chunks
split samples anywhere; an odd trailing byte is carried over to the next chunk.

Input longer than the API's 4096-character limit is sent as several
requests, cut at sentence boundaries, one after the other.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack, aclosing
from typing import Any, Final

import numpy as np

from aipbx.providers.base import Pcm, collect_audio
from aipbx.providers.errors import ProviderBadInput, ProviderTimeout
from aipbx.providers.openai._common import (
    DEFAULT_BASE_URL,
    import_openai,
    make_client,
    translate_openai_error,
    vendor_errors,
)

__all__ = ["OpenAITTS", "split_for_requests"]

_PROVIDER: Final = "openai-tts"
_PCM_RATE: Final = 24000  # fixed by the API for response_format="pcm"
_MAX_INPUT_CHARS: Final = 4096
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


def split_for_requests(text: str, limit: int = _MAX_INPUT_CHARS) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` characters, at sentence ends where possible."""
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text.strip()):
        while len(sentence) > limit:  # one enormous sentence: cut it hard
            head, sentence = sentence[:limit], sentence[limit:]
            if current:
                pieces.append(current)
                current = ""
            pieces.append(head)
        candidate = f"{current} {sentence}" if current else sentence
        if len(candidate) > limit:
            pieces.append(current)
            candidate = sentence
        current = candidate
    if current:
        pieces.append(current)
    return pieces


class OpenAITTS:
    """Streaming speech synthesis with OpenAI (implements ``TextToSpeech``).

    Args:
        api_key: API key (required; nothing is read from the environment).
        model: ``"gpt-4o-mini-tts"``, ``"tts-1"`` or ``"tts-1-hd"``.
        voice: Voice name, e.g. ``"alloy"``, ``"coral"``, ``"sage"``.
        base_url: API root including ``/v1``.
        instructions: Speaking style for ``gpt-4o-mini-tts`` (ignored by ``tts-1``).
        speed: 0.25..4.0; None keeps the default.
        organization: OpenAI organization id, if any.
        project: OpenAI project id, if any.
        timeout_s: httpx read/write timeout.
        connect_timeout_s: httpx connect timeout.
        chunk_timeout_s: Budget for the response headers and for each piece of audio.
        max_retries: SDK-level retries (0: the caller decides, from ``retryable``).
    """

    provider_name: Final = _PROVIDER
    sample_rate: int = _PCM_RATE

    def __init__(
        self,
        *,
        api_key: str,
        model: str = "gpt-4o-mini-tts",
        voice: str = "alloy",
        base_url: str = DEFAULT_BASE_URL,
        instructions: str | None = None,
        speed: float | None = None,
        organization: str | None = None,
        project: str | None = None,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 5.0,
        chunk_timeout_s: float = 10.0,
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
        self.voice = voice
        self.instructions = instructions
        self.speed = speed
        self.chunk_timeout_s = chunk_timeout_s

    def __repr__(self) -> str:
        return f"OpenAITTS(model={self.model!r}, voice={self.voice!r})"

    async def synthesize(self, text: str) -> AsyncIterator[Pcm]:
        """Yield int16 chunks at 24 kHz as the service streams them."""
        if not isinstance(text, str) or not text.strip():
            raise ProviderBadInput("nothing to say: text is empty", provider=_PROVIDER)
        for piece in split_for_requests(text):
            async with aclosing(self._request(piece)) as chunks:  # ends the HTTP stream on early exit
                async for chunk in chunks:
                    yield chunk

    async def _request(self, text: str) -> AsyncGenerator[Pcm, None]:
        options: dict[str, Any] = {}
        if self.instructions:
            options["instructions"] = self.instructions
        if self.speed is not None:
            options["speed"] = self.speed
        create = self._client.audio.speech.with_streaming_response.create
        carry = b""
        try:
            async with AsyncExitStack() as stack:
                async with asyncio.timeout(self.chunk_timeout_s):
                    response = await stack.enter_async_context(
                        create(model=self.model, voice=self.voice, input=text, response_format="pcm", **options)
                    )
                chunks = response.iter_bytes().__aiter__()
                while True:
                    try:
                        async with asyncio.timeout(self.chunk_timeout_s):
                            data = await anext(chunks)
                    except StopAsyncIteration:
                        break
                    data = carry + data
                    usable = len(data) - len(data) % 2
                    carry = data[usable:]
                    if usable:
                        yield np.frombuffer(data[:usable], dtype="<i2").astype(np.int16)
        except TimeoutError as exc:
            raise ProviderTimeout(f"no audio within {self.chunk_timeout_s:.1f} s", provider=_PROVIDER) from exc
        except self._vendor_errors as exc:
            raise translate_openai_error(exc, _PROVIDER, "speech synthesis") from exc

    async def synthesize_all(self, text: str) -> Pcm:
        """Synthesize ``text`` completely into one int16 array."""
        return await collect_audio(self.synthesize(text))

    async def aclose(self) -> None:
        """Close the SDK's HTTP client."""
        await self._client.close()
