"""Choosing providers from the environment: the right classes, and clear start-up errors."""

from __future__ import annotations

import pytest

from aipbx.errors import ConfigError
from ariapp.conversation.answerer import ExtractiveAnswerer, LlmAnswerer
from ariapp.engine import build_answerer, build_relisten_stts, build_stts, build_tts, build_turn_model
from ariapp.settings import Settings

BASE = {"AIPBX_ARI_PASSWORD": "x", "AIPBX_KNOWLEDGE_STORE": "none", "DJANGO_SETTINGS_MODULE": "webconsole.settings.dev"}


def settings(**env: str) -> tuple[Settings, dict[str, str]]:
    merged = {**BASE, **env}
    return Settings.from_env(merged), merged


def test_the_default_is_offline() -> None:
    s, env = settings()
    assert (s.core.stt_provider, s.tts_provider, s.core.llm_provider) == ("local", "local", "local")
    assert isinstance(build_answerer(s, env), ExtractiveAnswerer)
    assert type(build_tts(s, env, "en-US")).__name__ == "PiperTTS"
    assert type(build_tts(s, env, "ko-KR")).__name__ == "EspeakTTS"


def test_the_end_of_turn_model_is_on_by_default_and_can_be_turned_off() -> None:
    assert type(build_turn_model(settings()[0])).__name__ == "SmartTurn"
    assert build_turn_model(settings(AIPBX_TURN_MODEL="off")[0]) is None
    with pytest.raises(ConfigError, match="AIPBX_TURN_MODEL"):
        settings(AIPBX_TURN_MODEL="smart")


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"AIPBX_LLM": "openai"}, "OPENAI_API_KEY"),
        ({"AIPBX_LLM": "gemini"}, "GEMINI_API_KEY"),
        ({"AIPBX_STT": "openai"}, "OPENAI_API_KEY"),
        ({"AIPBX_STT": "google"}, "AIPBX_GOOGLE_API_KEY"),
        ({"AIPBX_TTS": "google"}, "GOOGLE_APPLICATION_CREDENTIALS"),
    ],
)
def test_a_missing_key_names_the_variable_to_set(env: dict[str, str], variable: str) -> None:
    s, merged = settings(**env)
    with pytest.raises(ConfigError, match=variable):
        if "AIPBX_LLM" in env:
            build_answerer(s, merged)
        elif "AIPBX_STT" in env:
            build_stts(s, merged, ("en-US",))
        else:
            build_tts(s, merged, "ko-KR")


def test_cloud_families_are_built_with_their_keys_and_endpoints() -> None:
    s, env = settings(
        AIPBX_LLM="openai",
        AIPBX_STT="google",
        AIPBX_TTS="openai",
        OPENAI_API_KEY="sk-test",
        AIPBX_OPENAI_BASE_URL="http://127.0.0.1:9/v1",
        AIPBX_GOOGLE_API_KEY="g-key",
    )
    answerer = build_answerer(s, env)
    assert isinstance(answerer, LlmAnswerer) and type(answerer.llm).__name__ == "OpenAIChatLLM"
    stts = build_stts(s, env, ("en-US", "ko-KR"))
    assert type(stts["en-US"]).__name__ == "GoogleSTT" and stts["ko-KR"] is stts["en-US"]  # language per request
    assert type(build_tts(s, env, "en-US")).__name__ == "OpenAITTS"


def test_an_unknown_provider_is_refused_at_start_up() -> None:
    with pytest.raises(ConfigError, match="AIPBX_LLM"):
        Settings.from_env({**BASE, "AIPBX_LLM": "gpt5-local"})


def test_a_korean_extension_gets_a_korean_capable_recogniser_automatically() -> None:
    s, env = settings()
    stts = build_stts(s, env, ("en-US", "ko-KR"))
    assert repr(stts["en-US"]) == "WhisperSTT(model='tiny.en', language=None)"
    assert repr(stts["ko-KR"]) == "WhisperSTT(model='base', language=None)"
    # one multilingual model serves both languages when it is the English one too
    s, env = settings(AIPBX_STT_MODEL="base")
    both = build_stts(s, env, ("en-US", "ko-KR"))
    assert both["en-US"] is both["ko-KR"]


def test_an_english_only_model_for_korean_calls_refuses_to_start_naming_the_setting() -> None:
    s, env = settings(AIPBX_STT_MODEL_KO="tiny.en")
    with pytest.raises(ConfigError, match="AIPBX_STT_MODEL_KO"):
        build_stts(s, env, ("en-US", "ko-KR"))
    assert set(build_stts(s, env, ("en-US",))) == {"en-US"}  # no Korean extension: nothing to refuse


def test_the_transcript_lane_is_a_separate_low_priority_model() -> None:
    s, env = settings()
    talk, write = build_stts(s, env, ("en-US",))["en-US"], build_stts(s, env, ("en-US",), lane="transcript")["en-US"]
    assert talk is not write
    assert (talk.cpu_threads, write.cpu_threads) == (2, 1)


def test_the_recognition_window_is_shortened_by_default_and_can_be_turned_off() -> None:
    s, env = settings()
    assert build_stts(s, env, ("en-US",))["en-US"].window_pad_s == 10.0
    s, env = settings(AIPBX_STT_WINDOW_PAD_S="off")
    assert build_stts(s, env, ("en-US",), lane="transcript")["en-US"].window_pad_s is None
    for bad in ("2", "ten", "40"):
        s, env = settings(AIPBX_STT_WINDOW_PAD_S=bad)
        with pytest.raises(ConfigError, match="AIPBX_STT_WINDOW_PAD_S"):
            build_stts(s, env, ("en-US",))


def test_an_unsure_english_question_is_heard_again_by_whisper_base_offline() -> None:
    # (tiny.en, told the nearest passages' words, sometimes heard a near miss as them: docs/performance.md)
    s, env = settings()
    stts = build_stts(s, env, ("en-US", "ko-KR"))
    again = build_relisten_stts(s, env, stts)
    assert repr(again["en-US"]) == "WhisperSTT(model='base', language=None)"
    # the Korean calls' model serves it (loaded once), and Korean is heard again by its own
    assert again["en-US"] is stts["ko-KR"] and again["ko-KR"] is stts["ko-KR"]
    # English only: one more model, on the conversation lane
    alone = build_relisten_stts(s, env, build_stts(s, env, ("en-US",)))["en-US"]
    assert repr(alone) == "WhisperSTT(model='base', language=None)" and alone.lane == "conversation"


@pytest.mark.parametrize(
    "env", [{"AIPBX_STT_MODEL_RELISTEN": "same"}, {"AIPBX_STT": "google", "AIPBX_GOOGLE_API_KEY": "g"}]
)
def test_the_second_listen_can_be_the_calls_own_recogniser(env: dict[str, str]) -> None:
    # set so, or a cloud family (one recogniser per family)
    s, merged = settings(**env)
    stts = build_stts(s, merged, ("en-US",))
    assert build_relisten_stts(s, merged, stts)["en-US"] is stts["en-US"]
