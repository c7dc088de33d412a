"""Factories: the real cloud provider classes, pointed at the local fakes with short budgets."""

from __future__ import annotations

from typing import Any

from google.auth.credentials import AnonymousCredentials

from aipbx.providers.google import GeminiLLM, GoogleStreamingSTT, GoogleSTT, GoogleTTS
from aipbx.providers.openai import OpenAIChatLLM, OpenAISTT, OpenAITTS
from tests.fakes.gemini_http import FakeGemini
from tests.fakes.google_grpc import FakeGoogleCloud
from tests.fakes.openai_http import FakeOpenAI

#: Keeps the suite fast: every stall test waits for a budget this long.
SHORT_TIMEOUT_S = 0.5
#: The budget of tests about what a provider does with an answer (an error, a refusal): long enough
#: that a loaded machine's slow loopback round trip is never mistaken for a silent service.
ROOMY_TIMEOUT_S = 10.0


def google_streaming_stt(
    server: FakeGoogleCloud, budget_s: float = SHORT_TIMEOUT_S, **options: Any
) -> GoogleStreamingSTT:
    """The real Speech client, plain-text gRPC to the fake, anonymous credentials."""
    options.setdefault("final_timeout_s", budget_s)
    return GoogleStreamingSTT(credentials=AnonymousCredentials(), endpoint=server.endpoint, insecure=True, **options)


def google_stt(server: FakeGoogleCloud, *, timeout_s: float = 5.0, **options: Any) -> GoogleSTT:
    timeout_s = max(timeout_s, options.get("budget_s", 0.0))
    return GoogleSTT(google_streaming_stt(server, **options), timeout_s=timeout_s)


def google_tts(server: FakeGoogleCloud, budget_s: float = SHORT_TIMEOUT_S, **options: Any) -> GoogleTTS:
    options.setdefault("request_timeout_s", budget_s)
    options.setdefault("chunk_timeout_s", budget_s)
    return GoogleTTS(credentials=AnonymousCredentials(), endpoint=server.endpoint, insecure=True, **options)


def gemini_llm(server: FakeGemini, budget_s: float = SHORT_TIMEOUT_S, **options: Any) -> GeminiLLM:
    options.setdefault("first_token_timeout_s", budget_s)
    options.setdefault("chunk_timeout_s", budget_s)
    return GeminiLLM(api_key="test-gemini-key", base_url=server.base_url, **options)


def openai_chat(server: FakeOpenAI, budget_s: float = SHORT_TIMEOUT_S, **options: Any) -> OpenAIChatLLM:
    options.setdefault("first_token_timeout_s", budget_s)
    options.setdefault("chunk_timeout_s", budget_s)
    return OpenAIChatLLM(api_key="sk-test", base_url=server.api_url, **options)


def openai_stt(server: FakeOpenAI, budget_s: float = SHORT_TIMEOUT_S, **options: Any) -> OpenAISTT:
    options.setdefault("timeout_s", budget_s)
    return OpenAISTT(api_key="sk-test", base_url=server.api_url, **options)


def openai_tts(server: FakeOpenAI, budget_s: float = SHORT_TIMEOUT_S, **options: Any) -> OpenAITTS:
    options.setdefault("chunk_timeout_s", budget_s)
    return OpenAITTS(api_key="sk-test", base_url=server.api_url, **options)
