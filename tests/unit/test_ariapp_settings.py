"""Tests for ariapp.settings: the ARI app's environment, read once at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from aipbx.errors import ConfigError
from ariapp.settings import REPO, Settings

# Development settings: production ones also demand the recordings key (tested below).
BASE = {"AIPBX_ARI_PASSWORD": "s3cret-from-env", "DJANGO_SETTINGS_MODULE": "webconsole.settings.dev"}


def test_missing_ari_password_fails_with_what_to_set() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({})

    assert "AIPBX_ARI_PASSWORD is not set" in str(info.value)
    assert "make up" in str(info.value)


def test_empty_ari_password_counts_as_missing() -> None:
    with pytest.raises(ConfigError, match="AIPBX_ARI_PASSWORD"):
        Settings.from_env({"AIPBX_ARI_PASSWORD": ""})


def test_explicit_env_is_used_instead_of_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIPBX_ARI_PASSWORD", "from-os-environ")
    monkeypatch.setenv("AIPBX_JITTER_MS", "not-a-number")

    settings = Settings.from_env(BASE)

    assert settings.ari_password == "s3cret-from-env"
    assert settings.jitter_ms == 40


def test_process_environment_is_read_when_no_env_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIPBX_ARI_PASSWORD", "from-os-environ")

    assert Settings.from_env().ari_password == "from-os-environ"


def test_defaults() -> None:
    settings = Settings.from_env(BASE)

    assert settings.ari_url == "http://127.0.0.1:8088"
    assert (settings.ari_user, settings.app_name, settings.core.instance) == ("aipbx", "aipbx", "dev")
    assert settings.media_host == "127.0.0.1"
    assert settings.media_format == "ulaw"
    assert settings.core.recordings_dir == REPO / "recordings"
    assert settings.core.cdr_dir == REPO / "data" / "cdr"
    assert settings.state_dir == REPO / "var" / "dev" / "state"
    assert settings.core.extensions_file == REPO / "asterisk" / "extensions.yaml"
    assert settings.core.extensions_file.is_file()
    assert (settings.core.stt_model, settings.model_cache) == ("tiny.en", None)
    assert (settings.max_ai_call_seconds, settings.jitter_ms, settings.status_port) == (600, 40, 8090)
    assert (settings.core.log_level, settings.core.log_json, settings.bench_echo) == ("INFO", False, False)


def test_every_value_can_be_overridden(tmp_path: Path) -> None:
    env = {
        **BASE,
        "AIPBX_ARI_URL": "http://127.0.0.1:18088",
        "AIPBX_ARI_USER": "u",
        "AIPBX_ARI_APP": "aipbx-t1",
        "AIPBX_INSTANCE": "t1",
        "AIPBX_MEDIA_HOST": "127.0.0.2",
        "AIPBX_MEDIA_FORMAT": "alaw",
        "AIPBX_RECORDINGS_DIR": str(tmp_path / "rec"),
        "AIPBX_CDR_DIR": str(tmp_path / "cdr"),
        "AIPBX_STATE_DIR": str(tmp_path / "state"),
        "AIPBX_EXTENSIONS_FILE": str(tmp_path / "ext.yaml"),
        "AIPBX_MODEL_CACHE": str(tmp_path / "models"),
        "AIPBX_MAX_AI_CALL_SECONDS": "30",
        "AIPBX_JITTER_MS": "60",
        "AIPBX_STATUS_PORT": "18090",
        "AIPBX_LOG_JSON": "1",
        "AIPBX_BENCH_ECHO": "1",
    }

    settings = Settings.from_env(env)

    assert settings.ari_url == "http://127.0.0.1:18088"
    assert (settings.ari_user, settings.app_name, settings.core.instance) == ("u", "aipbx-t1", "t1")
    assert (settings.media_host, settings.media_format) == ("127.0.0.2", "alaw")
    assert settings.core.recordings_dir == tmp_path / "rec"
    assert settings.core.cdr_dir == tmp_path / "cdr"
    assert settings.state_dir == tmp_path / "state"
    assert settings.core.extensions_file == tmp_path / "ext.yaml"
    assert settings.model_cache == tmp_path / "models"
    assert (settings.max_ai_call_seconds, settings.jitter_ms, settings.status_port) == (30, 60, 18090)
    assert settings.core.log_json is True
    assert settings.bench_echo is True


@pytest.mark.parametrize("value", ["true", "yes", "0", ""])
def test_flags_are_on_only_for_exactly_1(value: str) -> None:
    settings = Settings.from_env({**BASE, "AIPBX_LOG_JSON": value, "AIPBX_BENCH_ECHO": value})

    assert settings.core.log_json is False
    assert settings.bench_echo is False


@pytest.mark.parametrize("name", ["AIPBX_MAX_AI_CALL_SECONDS", "AIPBX_JITTER_MS", "AIPBX_STATUS_PORT"])
@pytest.mark.parametrize("raw", ["forty", "40ms", "", "1.5"])
def test_bad_integer_names_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**BASE, name: raw})

    assert str(info.value) == f"{name} must be an integer, not {raw!r}"


@pytest.mark.parametrize("fmt", ["ulaw", "alaw"])
def test_g711_media_formats_are_accepted(fmt: str) -> None:
    assert Settings.from_env({**BASE, "AIPBX_MEDIA_FORMAT": fmt}).media_format == fmt


@pytest.mark.parametrize("allow", [None, "0", "yes", "true"])
def test_slin16_is_refused_unless_explicitly_allowed(allow: str | None) -> None:
    env = {**BASE, "AIPBX_MEDIA_FORMAT": "slin16"}
    if allow is not None:
        env["AIPBX_ALLOW_SLIN16"] = allow

    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)

    assert "AIPBX_MEDIA_FORMAT=slin16" in str(info.value)
    assert "AIPBX_ALLOW_SLIN16=1" in str(info.value)


def test_slin16_is_accepted_with_allow_slin16() -> None:
    env = {**BASE, "AIPBX_MEDIA_FORMAT": "slin16", "AIPBX_ALLOW_SLIN16": "1"}

    assert Settings.from_env(env).media_format == "slin16"


@pytest.mark.parametrize("fmt", ["opus", "ULAW", "slin", "g722", ""])
def test_unknown_media_format_is_refused(fmt: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**BASE, "AIPBX_MEDIA_FORMAT": fmt, "AIPBX_ALLOW_SLIN16": "1"})

    assert str(info.value) == f"AIPBX_MEDIA_FORMAT must be ulaw, alaw or slin16, not {fmt!r}"


def test_settings_are_immutable() -> None:
    settings = Settings.from_env(BASE)

    with pytest.raises(AttributeError):
        settings.ari_password = "changed"  # type: ignore[misc]


def test_human_in_the_loop_defaults_and_overrides() -> None:
    default = Settings.from_env(BASE).hitl
    assert default is not None
    assert (default.hold_s, default.updates_s, default.decision_s, default.min_score) == (60.0, (15.0, 30.0), 2.0, None)
    assert "refund" in default.sensitive and "환불" in default.sensitive
    custom = Settings.from_env(
        {
            **BASE,
            "AIPBX_HITL_HOLD_S": "6",
            "AIPBX_HITL_UPDATES_S": "1.5,3",
            "AIPBX_HITL_MIN_SCORE": "0.6",
            "AIPBX_HITL_SENSITIVE": "invoice, 청구서",
        }
    ).hitl
    assert (custom.hold_s, custom.updates_s, custom.min_score, custom.sensitive) == (
        6.0,
        (1.5, 3.0),
        0.6,
        ("invoice", "청구서"),
    )
    assert Settings.from_env({**BASE, "AIPBX_HITL": "0"}).hitl is None


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("AIPBX_HITL_HOLD_S", "soon", "must be a number"),
        ("AIPBX_HITL_HOLD_S", "0", "between 1 and 600"),
        ("AIPBX_HITL_UPDATES_S", "30,15", "increasing times inside the hold"),
        ("AIPBX_HITL_UPDATES_S", "15,90", "increasing times inside the hold"),
        ("AIPBX_HITL_MIN_SCORE", "1.5", "between 0 and 1"),
    ],
)
def test_bad_human_in_the_loop_settings_are_refused_with_the_variable_named(name, value, message) -> None:
    with pytest.raises(ConfigError, match=f"{name}.*{message}"):
        Settings.from_env({**BASE, name: value})


def test_recording_keys_are_optional_in_development_and_a_bad_value_fails_at_start_up() -> None:
    assert Settings.from_env(BASE).core.recordings_keys is None  # recordings stay in clear (logged by the tracker)
    assert (
        Settings.from_env({**BASE, "DJANGO_SETTINGS_MODULE": "webconsole.settings.test"}).core.recordings_keys is None
    )
    keys = Settings.from_env({**BASE, "AIPBX_RECORDINGS_KEYS": "k2:" + "B" * 43 + "=,k1:" + "A" * 43 + "="})
    assert keys.core.recordings_keys is not None and keys.core.recordings_keys.current[0] == "k2"
    with pytest.raises(ConfigError, match="AIPBX_RECORDINGS_KEYS: key 'k1' is 3 bytes"):
        Settings.from_env({**BASE, "AIPBX_RECORDINGS_KEYS": "k1:AAAA"})


def test_ai_call_caps_and_the_rtp_watchdog_have_defaults_and_can_be_set_or_switched_off() -> None:
    default = Settings.from_env(BASE)
    assert (default.max_ai_calls, default.max_ai_calls_per_caller, default.rtp_timeout_s) == (50, 2, 90)
    # the watchdog outlasts a HITL hold, where a phone that suppresses silence may send nothing
    assert default.hitl is not None and default.rtp_timeout_s > default.hitl.hold_s
    custom = Settings.from_env(
        {**BASE, "AIPBX_MAX_AI_CALLS": "8", "AIPBX_MAX_AI_CALLS_PER_CALLER": "1", "AIPBX_RTP_TIMEOUT_S": "20"}
    )
    assert (custom.max_ai_calls, custom.max_ai_calls_per_caller, custom.rtp_timeout_s) == (8, 1, 20)
    off = Settings.from_env(
        {**BASE, "AIPBX_MAX_AI_CALLS": "0", "AIPBX_MAX_AI_CALLS_PER_CALLER": "0", "AIPBX_RTP_TIMEOUT_S": "0"}
    )
    assert (off.max_ai_calls, off.max_ai_calls_per_caller, off.rtp_timeout_s) == (0, 0, 0)


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("AIPBX_MAX_AI_CALLS", "-1", "between 0 and 10000"),
        ("AIPBX_MAX_AI_CALLS_PER_CALLER", "one", "must be an integer"),
        ("AIPBX_RTP_TIMEOUT_S", "2", "0 \\(off\\) or at least 5 seconds"),
    ],
)
def test_bad_cap_or_watchdog_settings_are_refused_with_the_variable_named(name, value, message) -> None:
    with pytest.raises(ConfigError, match=f"{name}.*{message}"):
        Settings.from_env({**BASE, name: value})


@pytest.mark.parametrize("module", ["webconsole.settings.prod", "", None])
def test_production_settings_refuse_to_start_without_a_recordings_key(module: str | None) -> None:
    # given the production settings (the Docker image's DJANGO_SETTINGS_MODULE), or none at all
    env = {k: v for k, v in BASE.items() if k != "DJANGO_SETTINGS_MODULE"}
    if module is not None:
        env["DJANGO_SETTINGS_MODULE"] = module
    # then no key means no start, with the setting named and where to get it
    with pytest.raises(ConfigError, match="AIPBX_RECORDINGS_KEYS is not set: the production settings") as info:
        Settings.from_env(env)
    assert "python -m aipbx.sealing newkey" in str(info.value)
    # and with a key they start, sealing
    keyed = Settings.from_env({**env, "AIPBX_RECORDINGS_KEYS": "k1:" + "A" * 43 + "="})
    assert keyed.core.recordings_keys is not None and keyed.core.recordings_keys.current[0] == "k1"


def test_voicemail_and_call_back_settings() -> None:
    default = Settings.from_env(BASE)
    assert default.hitl is not None and default.hitl.voicemail and default.hitl.voicemail_max_s == 120.0
    assert (default.callback_ring_s, default.callback_trunk, default.transfer_ring_s) == (30, "", 20)
    custom = Settings.from_env(
        {
            **BASE,
            "AIPBX_VOICEMAIL": "0",
            "AIPBX_VOICEMAIL_SILENCE_S": "2.5",
            "AIPBX_CALLBACK_RING_S": "20",
            "AIPBX_CALLBACK_TRUNK": "kt-sip",
            "AIPBX_TRANSFER_RING_S": "8",
        }
    )
    assert custom.transfer_ring_s == 8
    assert custom.hitl is not None and not custom.hitl.voicemail and custom.hitl.voicemail_silence_s == 2.5
    assert (custom.callback_ring_s, custom.callback_trunk) == (20, "kt-sip")
    with pytest.raises(ConfigError, match="AIPBX_CALLBACK_TRUNK"):
        Settings.from_env({**BASE, "AIPBX_CALLBACK_TRUNK": "kt/sip,evil"})
    with pytest.raises(ConfigError, match="AIPBX_VOICEMAIL_MAX_S"):
        Settings.from_env({**BASE, "AIPBX_VOICEMAIL_MAX_S": "9999"})
