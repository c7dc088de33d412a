"""Factories: the real cloud provider classes, pointed at the local fakes with short budgets."""

from __future__ import annotations

from typing import Any

from google.auth.credentials import AnonymousCredentials

from ariapp.providers.google import GeminiLLM, GoogleStreamingSTT, GoogleSTT, GoogleTTS
from ariapp.providers.openai import OpenAIChatLLM, OpenAISTT, OpenAITTS
from tests.fakes.gemini_http import FakeGemini
from tests.fakes.google_grpc import FakeGoogleCloud
from tests.fakes.openai_http import FakeOpenAI

#: Keeps the suite fast: every stall test waits for a budget this long.
SHORT_TIMEOUT_S = 0.5


def google_streaming_stt(server: FakeGoogleCloud, **options: Any) -> GoogleStreamingSTT:
    """The real Speech client, plain-text gRPC to the fake, anonymous credentials."""
    options.setdefault("final_timeout_s", SHORT_TIMEOUT_S)
    return GoogleStreamingSTT(credentials=AnonymousCredentials(), endpoint=server.endpoint, insecure=True, **options)


def google_stt(server: FakeGoogleCloud, *, timeout_s: float = 5.0, **options: Any) -> GoogleSTT:
    return GoogleSTT(google_streaming_stt(server, **options), timeout_s=timeout_s)


def google_tts(server: FakeGoogleCloud, **options: Any) -> GoogleTTS:
    options.setdefault("request_timeout_s", SHORT_TIMEOUT_S)
    options.setdefault("chunk_timeout_s", SHORT_TIMEOUT_S)
    return GoogleTTS(credentials=AnonymousCredentials(), endpoint=server.endpoint, insecure=True, **options)


def gemini_llm(server: FakeGemini, **options: Any) -> GeminiLLM:
    options.setdefault("first_token_timeout_s", SHORT_TIMEOUT_S)
    options.setdefault("chunk_timeout_s", SHORT_TIMEOUT_S)
    return GeminiLLM(api_key="test-gemini-key", base_url=server.base_url, **options)


def openai_chat(server: FakeOpenAI, **options: Any) -> OpenAIChatLLM:
    options.setdefault("first_token_timeout_s", SHORT_TIMEOUT_S)
    options.setdefault("chunk_timeout_s", SHORT_TIMEOUT_S)
    return OpenAIChatLLM(api_key="sk-test", base_url=server.api_url, **options)


def openai_stt(server: FakeOpenAI, **options: Any) -> OpenAISTT:
    options.setdefault("timeout_s", SHORT_TIMEOUT_S)
    return OpenAISTT(api_key="sk-test", base_url=server.api_url, **options)


def openai_tts(server: FakeOpenAI, **options: Any) -> OpenAITTS:
    options.setdefault("chunk_timeout_s", SHORT_TIMEOUT_S)
    return OpenAITTS(api_key="sk-test", base_url=server.api_url, **options)
