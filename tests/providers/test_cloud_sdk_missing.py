"""Without its SDK, every cloud provider fails at construction with the pip command that fixes it."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from aipbx.providers.errors import ProviderBadInput, ProviderUnavailable
from aipbx.providers.google import GeminiLLM, GoogleStreamingSTT, GoogleTTS
from aipbx.providers.openai import OpenAIChatLLM, OpenAISTT, OpenAITTS

CASES: list[tuple[str, Callable[[], object], str]] = [
    ("google.cloud.speech_v1", lambda: GoogleStreamingSTT(api_key="k"), "google-cloud-speech=="),
    ("google.cloud.texttospeech_v1", lambda: GoogleTTS(api_key="k"), "google-cloud-texttospeech=="),
    ("google.genai", lambda: GeminiLLM(api_key="k"), "google-genai=="),
    ("openai", lambda: OpenAIChatLLM(api_key="k"), "openai=="),
    ("openai", lambda: OpenAISTT(api_key="k"), "openai=="),
    ("openai", lambda: OpenAITTS(api_key="k"), "openai=="),
]


@pytest.mark.parametrize(
    ("module", "make", "pin"), CASES, ids=["speech", "texttospeech", "genai", "openai-chat", "openai-stt", "openai-tts"]
)
def test_missing_sdk_names_the_pip_package(
    monkeypatch: pytest.MonkeyPatch, module: str, make: Callable[[], object], pin: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail like an absent package

    with pytest.raises(ProviderUnavailable) as caught:
        make()

    assert f"pip install {pin}" in str(caught.value)
    assert caught.value.retryable is False


@pytest.mark.parametrize("make", [OpenAIChatLLM, OpenAISTT, OpenAITTS])
def test_openai_family_needs_an_explicit_key(make: Callable[..., object]) -> None:
    with pytest.raises(ProviderBadInput, match="api_key is required"):
        make(api_key="")
