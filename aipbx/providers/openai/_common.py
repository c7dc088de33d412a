"""What the OpenAI-API providers share: the client, explicit budgets, and error translation.

Every provider of this family talks to an OpenAI-compatible HTTP API through
the official ``openai`` SDK (``AsyncOpenAI``): OpenAI itself, or Ollama, vLLM
or a llama.cpp server given as ``base_url``. The SDK's exceptions map onto
:mod:`aipbx.providers.errors`::

    openai                                     -> aipbx.providers.errors
    APITimeoutError, 408                       -> ProviderTimeout      (retryable)
    APIConnectionError, RateLimitError (429),
    InternalServerError (5xx)                  -> ProviderError        (retryable)
    AuthenticationError (401),
    PermissionDeniedError (403)                -> ProviderError        (not retryable; check the API key)
    BadRequestError (400), NotFound (404),
    UnprocessableEntity (422)                  -> ProviderBadInput     (not retryable)

The SDK fills unset arguments from ``OPENAI_*`` environment variables, so
every argument that matters (key, base URL, organization, project) is passed
explicitly here.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import Awaitable
from types import ModuleType
from typing import Any, Final

from aipbx.providers.errors import ProviderBadInput, ProviderError, ProviderTimeout, ProviderUnavailable

__all__ = [
    "DEFAULT_BASE_URL",
    "close_bounded",
    "OPENAI_PIN",
    "import_openai",
    "make_client",
    "translate_openai_error",
    "vendor_errors",
]

OPENAI_PIN: Final = "openai==3.57.0"
DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"
_CLOSING: set[asyncio.Future[object]] = set()
_KEY_HINT: Final = "check the API key (and the organization/project it belongs to)"


def import_openai(provider: str) -> ModuleType:
    """Import the ``openai`` SDK or raise ProviderUnavailable naming the pip package."""
    try:
        return importlib.import_module("openai")
    except ImportError as exc:
        raise ProviderUnavailable(
            "openai is not installed", install=f"pip install {OPENAI_PIN}", provider=provider
        ) from exc


def make_client(
    openai: ModuleType,
    *,
    provider: str,
    api_key: str,
    base_url: str,
    timeout_s: float,
    connect_timeout_s: float,
    max_retries: int,
    organization: str | None = None,
    project: str | None = None,
) -> Any:
    """An ``AsyncOpenAI`` client with every setting explicit.

    ``timeout_s`` is httpx's read/write/pool timeout, i.e. the longest silence
    on the socket, not a bound on a whole streamed answer; the providers add
    their own per-chunk budgets on top.
    """
    if not api_key:
        raise ProviderBadInput(
            "api_key is required (any placeholder for a local server that ignores it)", provider=provider
        )
    timeout = openai.Timeout(timeout_s, connect=connect_timeout_s)
    return openai.AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        organization=organization,
        project=project,
        timeout=timeout,
        max_retries=max_retries,
    )


def _transport_errors() -> tuple[type[BaseException], type[BaseException]] | None:
    """``(TimeoutException, HTTPError)`` of the HTTP library under the SDK, raised raw while streaming."""
    for name in ("httpx2", "httpx"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        return module.TimeoutException, module.HTTPError
    return None


def translate_openai_error(exc: BaseException, provider: str, what: str) -> ProviderError:
    """Map an ``openai`` (or underlying httpx) exception onto the provider error hierarchy."""
    openai = importlib.import_module("openai")
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return ProviderTimeout(f"{what}: the request timed out", provider=provider)
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError(f"{what}: connection failed: {exc}", provider=provider, retryable=True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        detail = f"HTTP {status}: {exc.message}"
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError) or status in (401, 403):
            return ProviderError(f"{what}: access refused ({detail}); {_KEY_HINT}", provider=provider, retryable=False)
        if status == 408:
            return ProviderTimeout(f"{what}: the service timed out ({detail})", provider=provider)
        if status == 429 or status >= 500:
            return ProviderError(f"{what}: service error ({detail})", provider=provider, retryable=True)
        return ProviderBadInput(f"{what}: request rejected ({detail})", provider=provider)
    transport = _transport_errors()
    if transport is not None:
        timeout_error, http_error = transport
        if isinstance(exc, timeout_error):
            return ProviderTimeout(f"{what}: the connection went silent ({exc!r})", provider=provider)
        if isinstance(exc, http_error):
            return ProviderError(f"{what}: transport error: {exc!r}", provider=provider, retryable=True)
    return ProviderError(f"{what} failed: {exc!r}", provider=provider, retryable=True)


def vendor_errors(provider: str) -> tuple[type[BaseException], ...]:
    """Exception classes :func:`translate_openai_error` understands (SDK and transport)."""
    openai = import_openai(provider)
    transport = _transport_errors()
    return (openai.OpenAIError, *(transport or ()))


async def close_bounded(closing: Awaitable[object], timeout_s: float = 2.0) -> None:
    """Finish a close/release even while being cancelled, but never wait for it long.

    Used in ``finally`` blocks: a stream abandoned by a barge-in must give its
    connection back, yet a wedged socket must not hold up the cancellation.
    """
    task = asyncio.ensure_future(asyncio.wait_for(closing, timeout_s))
    _CLOSING.add(task)  # keeps the task alive if our caller is cancelled meanwhile
    task.add_done_callback(_CLOSING.discard)
    with contextlib.suppress(Exception):
        await asyncio.shield(task)
