"""Gemini (Gemini Developer API) behind the ``LanguageModel`` protocol, on the ``google-genai`` SDK.

Theory of operation: the conversation is mapped onto Gemini's shape (system
messages become the ``system_instruction``, ``assistant`` becomes ``model``)
and sent with ``client.aio.models.generate_content_stream``, which reads the
``:streamGenerateContent?alt=sse`` event stream. Each chunk's text parts are
yielded at once (thought parts are skipped).

Time budgets are explicit and layered: the SDK's HTTP timeout bounds the
whole request (``timeout_s``), and this module bounds the wait for the first
chunk (``first_token_timeout_s``) and between chunks (``chunk_timeout_s``).
SDK retries are off unless ``max_retries`` says otherwise.

An answer that carries no text is an error, never an empty reply: a prompt
blocked by ``promptFeedback.blockReason`` or an answer stopped for safety is
not retryable; an empty answer for any other reason is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Final

from aipbx.providers.base import ChatMessage
from aipbx.providers.errors import ProviderBadInput, ProviderError, ProviderTimeout
from aipbx.providers.google._common import import_sdk

__all__ = ["GeminiLLM", "to_gemini_contents"]

_PROVIDER: Final = "gemini"
_DEFAULT_BASE_URL: Final = "https://generativelanguage.googleapis.com/"
_BLOCKED_FINISH: Final = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "MODEL_ARMOR", "LANGUAGE"}
)
_API_KEY_HINT: Final = "check the Gemini API key (and that the Generative Language API is enabled)"


def to_gemini_contents(messages: list[ChatMessage]) -> tuple[str | None, list[dict[str, Any]]]:
    """Split a chat into Gemini's ``system_instruction`` and ``contents``.

    Every system message goes into the system instruction (in order); user
    and assistant turns become ``user`` and ``model`` contents.

    Raises:
        ProviderBadInput: An unknown role, or no user/assistant turn at all.
    """
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            system.append(message.content)
        elif message.role in ("user", "assistant"):
            role = "user" if message.role == "user" else "model"
            contents.append({"role": role, "parts": [{"text": message.content}]})
        else:
            raise ProviderBadInput(f"unknown chat role {message.role!r}", provider=_PROVIDER)
    if not contents:
        raise ProviderBadInput("the conversation has no user message", provider=_PROVIDER)
    return ("\n\n".join(system) if system else None), contents


def _translate_api_error(exc: Any) -> ProviderError:
    """Map ``google.genai.errors.APIError`` (HTTP status in ``exc.code``) onto the provider errors."""
    code = int(getattr(exc, "code", 0) or 0)
    detail = f"HTTP {code} {getattr(exc, 'status', '') or ''}: {getattr(exc, 'message', None) or exc}"
    if code in (401, 403):
        return ProviderError(f"access refused ({detail}); {_API_KEY_HINT}", provider=_PROVIDER, retryable=False)
    if code == 400:
        # The Gemini API also answers 400 INVALID_ARGUMENT for an invalid API key.
        return ProviderBadInput(
            f"request rejected ({detail}); check the request and {_API_KEY_HINT}", provider=_PROVIDER
        )
    if code in (408, 504):
        return ProviderTimeout(f"the service timed out ({detail})", provider=_PROVIDER)
    if code == 429 or code >= 500:
        return ProviderError(f"service error ({detail})", provider=_PROVIDER, retryable=True)
    return ProviderError(f"request failed ({detail})", provider=_PROVIDER, retryable=False)


class GeminiLLM:
    """Streaming chat with a Gemini model (implements ``LanguageModel``).

    Args:
        api_key: Gemini API key (required; nothing is read from the environment).
        model: Model id, e.g. ``"gemini-2.5-flash"``.
        base_url: API root override (a proxy or a local test server).
        api_version: REST API version; ``v1beta`` carries every generation option used here.
        thinking_budget: Thinking tokens; 0 turns thinking off, which keeps the
            first token fast for a phone call; None keeps the model's default.
        timeout_s: SDK HTTP timeout of the whole request.
        first_token_timeout_s: Budget for the first chunk of the answer.
        chunk_timeout_s: Budget between later chunks.
        max_retries: SDK-level retries (0: the caller decides, from ``retryable``).
    """

    provider_name: Final = _PROVIDER

    def __init__(
        self,
        *,
        api_key: str,
        model: str = "gemini-2.5-flash",
        base_url: str | None = None,
        api_version: str = "v1beta",
        thinking_budget: int | None = 0,
        timeout_s: float = 30.0,
        first_token_timeout_s: float = 10.0,
        chunk_timeout_s: float = 10.0,
        max_retries: int = 0,
    ) -> None:
        if not api_key:
            raise ProviderBadInput(f"api_key is required; {_API_KEY_HINT}", provider=_PROVIDER)
        genai = import_sdk("google.genai", _PROVIDER)
        self._types = import_sdk("google.genai.types", _PROVIDER)
        self._errors = import_sdk("google.genai.errors", _PROVIDER)
        self.model = model
        self.thinking_budget = thinking_budget
        self.timeout_s = timeout_s
        self.first_token_timeout_s = first_token_timeout_s
        self.chunk_timeout_s = chunk_timeout_s
        http_options = self._types.HttpOptions(
            base_url=base_url or _DEFAULT_BASE_URL,
            api_version=api_version,  # explicit: the SDK would otherwise consult the environment
            timeout=round(timeout_s * 1000),  # milliseconds
            retry_options=self._types.HttpRetryOptions(attempts=max_retries + 1),
        )
        self._client = genai.Client(vertexai=False, api_key=api_key, http_options=http_options)

    def __repr__(self) -> str:
        return f"GeminiLLM(model={self.model!r})"

    def _config(self, system: str | None, max_tokens: int, temperature: float) -> Any:
        types = self._types
        return types.GenerateContentConfig(
            system_instruction=system,
            temperature=temperature,
            max_output_tokens=max_tokens,
            candidate_count=1,
            thinking_config=(
                types.ThinkingConfig(thinking_budget=self.thinking_budget) if self.thinking_budget is not None else None
            ),
        )

    async def stream(
        self, messages: list[ChatMessage], *, max_tokens: int = 150, temperature: float = 0.5
    ) -> AsyncIterator[str]:
        """Yield the answer's text deltas as Gemini streams them (see ``LanguageModel``)."""
        system, contents = to_gemini_contents(messages)
        config = self._config(system, max_tokens, temperature)
        produced = False
        finish_reason: str | None = None
        budget = self.first_token_timeout_s
        try:
            async with asyncio.timeout(budget):
                chunks = await self._client.aio.models.generate_content_stream(
                    model=self.model, contents=contents, config=config
                )
            iterator = chunks.__aiter__()
            while True:
                budget = self.chunk_timeout_s if produced else self.first_token_timeout_s
                try:
                    async with asyncio.timeout(budget):
                        chunk = await anext(iterator)
                except StopAsyncIteration:
                    break
                feedback = chunk.prompt_feedback
                if feedback is not None and feedback.block_reason:
                    reason = getattr(feedback.block_reason, "value", feedback.block_reason)
                    raise ProviderBadInput(f"the prompt was blocked ({reason})", provider=_PROVIDER)
                for candidate in (chunk.candidates or [])[:1]:
                    if candidate.finish_reason:
                        finish_reason = getattr(candidate.finish_reason, "value", str(candidate.finish_reason))
                    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
                    for part in parts:
                        if part.text and not part.thought:
                            produced = True
                            yield part.text
        except ProviderError:
            raise
        except TimeoutError as exc:
            raise ProviderTimeout(
                f"no answer within the time budget ({budget:.1f} s for this chunk, {self.timeout_s:.1f} s "
                "for the whole request)",
                provider=_PROVIDER,
            ) from exc
        except self._errors.APIError as exc:
            raise _translate_api_error(exc) from exc
        except Exception as exc:  # aiohttp/httpx connection errors, malformed answers
            raise ProviderError(f"request failed: {exc!r}", provider=_PROVIDER, retryable=True) from exc
        if not produced:
            if finish_reason in _BLOCKED_FINISH:
                raise ProviderError(
                    f"the answer was blocked (finish reason {finish_reason})", provider=_PROVIDER, retryable=False
                )
            raise ProviderError(f"empty answer (finish reason {finish_reason})", provider=_PROVIDER, retryable=True)

    async def aclose(self) -> None:
        """Close the SDK's HTTP sessions."""
        await self._client.aio.aclose()
