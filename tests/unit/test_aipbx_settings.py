"""The settings both processes read (aipbx.settings): one parse, the defaults of a checkout, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from aipbx.errors import ConfigError
from aipbx.settings import DEFAULT_REDIS_URL, REPO, CoreSettings, core_settings


def test_defaults_are_a_development_checkout() -> None:
    core = CoreSettings.from_env({})

    assert (core.instance, core.redis_url, core.log_level, core.log_json) == ("dev", DEFAULT_REDIS_URL, "INFO", False)
    assert core.recordings_dir == REPO / "recordings" and core.recordings_keys is None
    assert core.cdr_dir == REPO / "data" / "cdr"
    assert core.extensions_file == REPO / "asterisk" / "extensions.yaml"
    assert core.hold_music_dir == REPO / "var" / "hold-music"
    assert (core.llm_provider, core.stt_provider, core.stt_model, core.stt_model_ko) == (
        "local", "local", "tiny.en", "base",
    )  # fmt: skip
    knowledge = core.knowledge
    assert (knowledge.store, knowledge.chroma_host, knowledge.chroma_port, knowledge.chroma_token) == (
        "chroma", "127.0.0.1", 8001, None,
    )  # fmt: skip
    assert knowledge.prefix == "kbdev"
    assert dict(core.llm_env) == {} and dict(core.stt_env) == {}


def test_empty_values_count_as_unset() -> None:
    # given: an env file with KEY= lines
    names = ("AIPBX_INSTANCE", "AIPBX_REDIS_URL", "AIPBX_RECORDINGS_DIR", "AIPBX_LOG_LEVEL", "AIPBX_CHROMA_TOKEN")
    # when
    core = CoreSettings.from_env(dict.fromkeys(names, " "))
    # then
    assert core == CoreSettings.from_env({})


def test_values_from_the_environment(tmp_path: Path) -> None:
    env = {
        "AIPBX_INSTANCE": "pbx",
        "AIPBX_LOG_LEVEL": "debug",
        "AIPBX_LOG_JSON": "1",
        "AIPBX_RECORDINGS_DIR": str(tmp_path / "rec"),
        "AIPBX_HOLD_MUSIC_DIR": str(tmp_path / "music"),
        "AIPBX_KNOWLEDGE_STORE": "memory",
        "AIPBX_CHROMA_PORT": "9001",
        "AIPBX_CHROMA_TOKEN": " t0k ",
        "AIPBX_LLM": "openai",
        "OPENAI_API_KEY": "sk-x",
        "GEMINI_API_KEY": "",
        "AIPBX_STT_MODEL_KO": "small",
    }
    core = CoreSettings.from_env(env)

    assert (core.instance, core.log_level, core.log_json) == ("pbx", "DEBUG", True)
    assert (core.recordings_dir, core.hold_music_dir) == (tmp_path / "rec", tmp_path / "music")
    assert (core.knowledge.store, core.knowledge.chroma_port, core.knowledge.chroma_token) == ("memory", 9001, "t0k")
    assert core.knowledge.prefix == "kbpbx"  # each instance its own collections, as the stack and compose set it
    assert core.llm_provider == "openai" and dict(core.llm_env) == {"OPENAI_API_KEY": "sk-x"}
    assert dict(core.stt_env) == {"OPENAI_API_KEY": "sk-x", "AIPBX_STT_MODEL_KO": "small"}
    assert core.stt_model_ko == "small"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AIPBX_KNOWLEDGE_STORE", "pinecone"),
        ("AIPBX_CHROMA_PORT", "eighty"),
        ("AIPBX_CHROMA_PORT", "70000"),
        ("AIPBX_LLM", "gpt5-local"),
        ("AIPBX_STT", "whisper"),
        ("AIPBX_LOG_LEVEL", "loud"),
        ("AIPBX_RECORDINGS_KEYS", "k1:AAAA"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        CoreSettings.from_env({name: value})


def test_the_process_settings_are_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    core_settings.cache_clear()
    monkeypatch.setenv("AIPBX_INSTANCE", "first")
    try:
        first = core_settings()
        monkeypatch.setenv("AIPBX_INSTANCE", "second")

        assert core_settings() is first and first.instance == "first"
    finally:
        core_settings.cache_clear()
