"""Chat completions over an OpenAI-compatible API (OpenAI, Ollama, vLLM, llama.cpp) as a ``LanguageModel``.

Theory of operation: one ``chat.completions.create(stream=True)`` request per
answer; each ``chat.completion.chunk``'s ``delta.content`` is yielded as it
arrives. The SDK's httpx timeout bounds silence on the socket; this module
adds a budget for the first chunk and between chunks, so a server that
accepts the request and then stalls cannot hold a call. The stream is closed
whenever the consumer stops early (e.g. the caller barged in).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Final, Literal

from aipbx.providers.base import ChatMessage
from aipbx.providers.errors import ProviderBadInput, ProviderError, ProviderTimeout
from aipbx.providers.openai._common import (
    DEFAULT_BASE_URL,
    close_bounded,
    import_openai,
    make_client,
    translate_openai_error,
    vendor_errors,
)

__all__ = ["OpenAIChatLLM"]

_PROVIDER: Final = "openai-chat"
_ROLES: Final = frozenset({"system", "user", "assistant"})


class OpenAIChatLLM:
    """Streaming chat with an OpenAI-compatible server (implements ``LanguageModel``).

    Args:
        api_key: API key; local servers that ignore it still need a placeholder.
        model: Model name as the server knows it (``"gpt-4o-mini"``, ``"llama3.2"``...).
        base_url: API root including ``/v1``; e.g. ``http://127.0.0.1:11434/v1`` for Ollama.
        max_tokens_param: Request field for the token cap: ``"max_tokens"`` (understood by every
            compatible server) or ``"max_completion_tokens"`` (OpenAI's reasoning models).
        organization: OpenAI organization id, if any.
        project: OpenAI project id, if any.
        timeout_s: httpx read/write timeout (longest socket silence).
        connect_timeout_s: httpx connect timeout.
        first_token_timeout_s: Budget for the first chunk of the answer.
        chunk_timeout_s: Budget between later chunks.
        max_retries: SDK-level retries (0: the caller decides, from ``retryable``).
    """

    provider_name: Final = _PROVIDER

    def __init__(
        self,
        *,
        api_key: str,
        model: str = "gpt-4o-mini",
        base_url: str = DEFAULT_BASE_URL,
        max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens",
        organization: str | None = None,
        project: str | None = None,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 5.0,
        first_token_timeout_s: float = 10.0,
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
        self.base_url = base_url
        self.max_tokens_param = max_tokens_param
        self.first_token_timeout_s = first_token_timeout_s
        self.chunk_timeout_s = chunk_timeout_s

    def __repr__(self) -> str:
        return f"OpenAIChatLLM(model={self.model!r}, base_url={self.base_url!r})"

    @staticmethod
    def _payload(messages: list[ChatMessage]) -> list[dict[str, str]]:
        if not any(m.role == "user" for m in messages):
            raise ProviderBadInput("the conversation has no user message", provider=_PROVIDER)
        for message in messages:
            if message.role not in _ROLES:
                raise ProviderBadInput(f"unknown chat role {message.role!r}", provider=_PROVIDER)
        return [{"role": m.role, "content": m.content} for m in messages]

    async def stream(
        self, messages: list[ChatMessage], *, max_tokens: int = 150, temperature: float = 0.5
    ) -> AsyncIterator[str]:
        """Yield the answer's text deltas as the server streams them (see ``LanguageModel``)."""
        payload = self._payload(messages)
        limits: dict[str, Any] = {self.max_tokens_param: max_tokens}
        produced = False
        finish_reason: str | None = None
        budget = self.first_token_timeout_s
        stream: Any = None
        try:
            async with asyncio.timeout(budget):
                stream = await self._client.chat.completions.create(
                    model=self.model, messages=payload, temperature=temperature, stream=True, **limits
                )
            chunks = stream.__aiter__()
            while True:
                budget = self.chunk_timeout_s if produced else self.first_token_timeout_s
                try:
                    async with asyncio.timeout(budget):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                for choice in chunk.choices[:1]:
                    finish_reason = choice.finish_reason or finish_reason
                    if choice.delta is not None and choice.delta.content:
                        produced = True
                        yield choice.delta.content
        except TimeoutError as exc:
            raise ProviderTimeout(f"no answer chunk within {budget:.1f} s", provider=_PROVIDER) from exc
        except self._vendor_errors as exc:
            raise translate_openai_error(exc, _PROVIDER, "chat completion") from exc
        finally:
            if stream is not None:
                await close_bounded(stream.close())  # releases the HTTP connection when the consumer stopped early
        if not produced:
            if finish_reason == "content_filter":
                raise ProviderError("the answer was blocked by the content filter", provider=_PROVIDER, retryable=False)
            raise ProviderError(f"empty answer (finish reason {finish_reason})", provider=_PROVIDER, retryable=True)

    async def aclose(self) -> None:
        """Close the SDK's HTTP client."""
        await self._client.close()
