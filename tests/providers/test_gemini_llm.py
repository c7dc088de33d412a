"""Gemini specifics against the HTTP fake: the REST request, safety outcomes, mid-stream stalls."""

from __future__ import annotations

import time

import pytest

from aipbx.providers.base import ChatMessage
from aipbx.providers.errors import ProviderBadInput, ProviderError, ProviderTimeout
from aipbx.providers.google import GeminiLLM, to_gemini_contents
from tests.fakes.gemini_http import FakeGemini
from tests.providers.conftest import Closer
from tests.providers.factories import SHORT_TIMEOUT_S, gemini_llm

CHAT = [ChatMessage("system", "Be brief."), ChatMessage("user", "예약 가능한가요?")]


async def test_request_goes_to_the_streaming_endpoint_with_the_key(gemini_server: FakeGemini, closer: Closer) -> None:
    llm = closer(gemini_llm(gemini_server))

    _ = [d async for d in llm.stream(CHAT)]

    request = gemini_server.requests[0]
    assert request.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert request.query["alt"] == "sse"
    assert request.headers["x-goog-api-key"] == "test-gemini-key"
    assert request.json["contents"] == [{"role": "user", "parts": [{"text": "예약 가능한가요?"}]}]


async def test_thinking_is_off_by_default_for_a_fast_first_token(gemini_server: FakeGemini, closer: Closer) -> None:
    llm = closer(gemini_llm(gemini_server))

    _ = [d async for d in llm.stream(CHAT)]

    thinking = gemini_server.requests[0].json["generationConfig"]["thinkingConfig"]
    assert thinking.get("thinkingBudget", thinking.get("thinking_budget")) == 0


async def test_a_blocked_prompt_is_bad_input(gemini_server: FakeGemini, closer: Closer) -> None:
    gemini_server.script.block_reason = "PROHIBITED_CONTENT"
    llm = closer(gemini_llm(gemini_server))

    with pytest.raises(ProviderBadInput) as caught:
        _ = [d async for d in llm.stream(CHAT)]

    assert "PROHIBITED_CONTENT" in str(caught.value) and caught.value.retryable is False


async def test_an_answer_stopped_for_safety_is_not_retryable(gemini_server: FakeGemini, closer: Closer) -> None:
    gemini_server.script.deltas, gemini_server.script.finish_reason = [], "SAFETY"
    llm = closer(gemini_llm(gemini_server))

    with pytest.raises(ProviderError) as caught:
        _ = [d async for d in llm.stream(CHAT)]

    assert "SAFETY" in str(caught.value) and caught.value.retryable is False


async def test_an_invalid_key_answered_as_400_points_at_the_key(gemini_server: FakeGemini, closer: Closer) -> None:
    gemini_server.script.status = 400
    gemini_server.script.error_message = "API key not valid. Please pass a valid API key."
    llm = closer(gemini_llm(gemini_server))

    with pytest.raises(ProviderBadInput) as caught:
        _ = [d async for d in llm.stream(CHAT)]

    assert "API key" in str(caught.value) and caught.value.retryable is False


async def test_rate_limit_is_retryable(gemini_server: FakeGemini, closer: Closer) -> None:
    gemini_server.script.status = 429
    llm = closer(gemini_llm(gemini_server))

    with pytest.raises(ProviderError) as caught:
        _ = [d async for d in llm.stream(CHAT)]

    assert caught.value.retryable is True


async def test_stall_in_the_middle_of_an_answer(gemini_server: FakeGemini, closer: Closer) -> None:
    gemini_server.script.stall_after_chunks, gemini_server.script.stall_s = 1, 30
    llm = closer(gemini_llm(gemini_server))
    received: list[str] = []
    started = time.perf_counter()

    with pytest.raises(ProviderTimeout):
        async for delta in llm.stream(CHAT):
            received.append(delta)

    assert received == gemini_server.script.deltas[:1]
    assert time.perf_counter() - started < SHORT_TIMEOUT_S + 1.0


def test_contents_mapping() -> None:
    system, contents = to_gemini_contents(
        [
            ChatMessage("system", "Rule one."),
            ChatMessage("user", "Hi"),
            ChatMessage("assistant", "Hello"),
            ChatMessage("system", "Rule two."),
            ChatMessage("user", "Bye"),
        ]
    )
    assert system == "Rule one.\n\nRule two."
    assert [(c["role"], c["parts"][0]["text"]) for c in contents] == [
        ("user", "Hi"),
        ("model", "Hello"),
        ("user", "Bye"),
    ]


def test_the_api_key_is_required() -> None:
    with pytest.raises(ProviderBadInput):
        GeminiLLM(api_key="")
