"""How every cloud provider fails: one contract over all of them, driven through the wire-level fakes.

* The service is down (HTTP 500/503, gRPC UNAVAILABLE) -> ``ProviderError``, retryable.
* Access refused (HTTP 401/403, gRPC PERMISSION_DENIED/UNAUTHENTICATED) -> not
  retryable, and the message sends the operator to the credentials / API key.
* The service accepts the request and then says nothing -> ``ProviderTimeout``
  within the configured budget plus one second.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
import numpy as np
import pytest

from aipbx.providers.base import ChatMessage
from aipbx.providers.errors import ProviderError, ProviderTimeout
from tests.fakes.gemini_http import FakeGemini
from tests.fakes.google_grpc import FakeGoogleCloud
from tests.fakes.openai_http import FakeOpenAI
from tests.providers.conftest import Closer
from tests.providers.factories import (
    ROOMY_TIMEOUT_S,
    SHORT_TIMEOUT_S,
    gemini_llm,
    google_stt,
    google_tts,
    openai_chat,
    openai_stt,
    openai_tts,
)

CHAT = [ChatMessage("system", "Be brief."), ChatMessage("user", "Hello?")]
UTTERANCE = (np.sin(np.arange(16000) / 5) * 8000).astype(np.int16)
CREDENTIALS = re.compile(r"credential|api key", re.IGNORECASE)

#: failure kind -> (gRPC status, HTTP status)
KINDS = {
    "unavailable": (grpc.StatusCode.UNAVAILABLE, 503),
    "internal": (grpc.StatusCode.INTERNAL, 500),
    "permission-denied": (grpc.StatusCode.PERMISSION_DENIED, 403),
    "unauthenticated": (grpc.StatusCode.UNAUTHENTICATED, 401),
}


@dataclass
class FailureCase:
    call: Callable[[], Awaitable[object]]  # one complete request through the provider
    fail_with: Callable[[str | None], None]  # script a failure kind from KINDS (None: healthy)
    stall: Callable[[float], None]  # script silence of this many seconds
    budget_s: float  # the provider's configured budget for that silence


async def _drain(chunks: object) -> None:
    async for _ in chunks:  # type: ignore[attr-defined]
        pass


def _google_case(server: FakeGoogleCloud, closer: Closer, what: str, budget_s: float) -> FailureCase:
    def fail_with(kind: str | None) -> None:
        server.speech.error = server.tts.error = KINDS[kind][0] if kind else None

    def stall(seconds: float) -> None:
        server.speech.stall_s = server.tts.stall_s = seconds

    if what == "stt":
        stt = closer(google_stt(server, budget_s=budget_s))
        return FailureCase(lambda: stt.transcribe(UTTERANCE), fail_with, stall, stt.streaming.final_timeout_s)
    voice = "en-US-Chirp3-HD-Aoede" if what == "tts-streaming" else "ko-KR-Neural2-A"
    tts = closer(google_tts(server, budget_s, voice=voice))
    return FailureCase(lambda: _drain(tts.synthesize("Hello. Goodbye.")), fail_with, stall, budget_s)


def _http_case(server: FakeGemini | FakeOpenAI, call: Callable[[], Awaitable[object]], budget_s: float) -> FailureCase:
    def fail_with(kind: str | None) -> None:
        server.script.status = KINDS[kind][1] if kind else None

    def stall(seconds: float) -> None:
        server.script.stall_s = seconds

    return FailureCase(call, fail_with, stall, budget_s)


PROVIDERS = ["google-stt", "google-tts", "google-tts-streaming", "gemini", "openai-chat", "openai-stt", "openai-tts"]


def _case(request: pytest.FixtureRequest, closer: Closer, budget_s: float) -> FailureCase:
    family, _, what = request.param.partition("-")
    if family == "google":
        return _google_case(request.getfixturevalue("google_cloud"), closer, what, budget_s)
    if family == "gemini":
        gemini = request.getfixturevalue("gemini_server")
        llm = closer(gemini_llm(gemini, budget_s))
        return _http_case(gemini, lambda: _drain(llm.stream(CHAT)), budget_s)
    server = request.getfixturevalue("openai_server")
    if what == "chat":
        chat = closer(openai_chat(server, budget_s))
        return _http_case(server, lambda: _drain(chat.stream(CHAT)), budget_s)
    if what == "stt":
        stt = closer(openai_stt(server, budget_s))
        return _http_case(server, lambda: stt.transcribe(UTTERANCE), budget_s)
    tts = closer(openai_tts(server, budget_s))
    return _http_case(server, lambda: _drain(tts.synthesize("Hello. Goodbye.")), budget_s)


@pytest.fixture(params=PROVIDERS)
def case(request: pytest.FixtureRequest, closer: Closer) -> FailureCase:
    """A provider whose budget no loaded machine reaches: what it does with the service's answer."""
    return _case(request, closer, ROOMY_TIMEOUT_S)


@pytest.fixture(params=PROVIDERS)
def silent_case(request: pytest.FixtureRequest, closer: Closer) -> FailureCase:
    """A provider with a short budget, for the service that says nothing."""
    return _case(request, closer, SHORT_TIMEOUT_S)


@pytest.mark.parametrize("kind", ["unavailable", "internal"])
async def test_service_errors_are_retryable(case: FailureCase, kind: str) -> None:
    case.fail_with(kind)

    with pytest.raises(ProviderError) as caught:
        await case.call()

    assert caught.value.retryable is True
    assert not isinstance(caught.value, ProviderTimeout)


@pytest.mark.parametrize("kind", ["permission-denied", "unauthenticated"])
async def test_refused_access_is_final_and_points_at_the_credentials(case: FailureCase, kind: str) -> None:
    case.fail_with(kind)

    with pytest.raises(ProviderError) as caught:
        await case.call()

    assert caught.value.retryable is False
    assert CREDENTIALS.search(str(caught.value)), str(caught.value)


async def test_a_silent_service_times_out_within_the_budget(silent_case: FailureCase) -> None:
    case = silent_case
    # given: the service will say nothing for far longer than the budget
    case.stall(10 * case.budget_s + 5)
    started = time.perf_counter()

    # when
    with pytest.raises(ProviderTimeout) as caught:
        await case.call()

    # then
    elapsed = time.perf_counter() - started
    assert case.budget_s * 0.9 <= elapsed < case.budget_s + 1.0
    assert caught.value.retryable is True


async def test_the_provider_works_again_once_the_service_recovers(case: FailureCase) -> None:
    # given: one failed request
    case.fail_with("unavailable")
    with pytest.raises(ProviderError):
        await case.call()

    # when: the service is healthy again
    case.fail_with(None)

    # then: the same provider object serves the next request
    await case.call()
