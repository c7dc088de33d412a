"""Settings of the ARI app, read from the environment once at start-up.

A missing mandatory secret (the ARI password; in production the recordings key) fails at start-up with
a message that says what to set.

Production or development is the deployment's one switch, ``DJANGO_SETTINGS_MODULE``: the Docker image
sets ``webconsole.settings.prod`` for every process, the ARI app included; ``make up``, the demo and the
tests set ``webconsole.settings.dev`` or ``.test``. Unset counts as production, as it does for the
console's entry points (``webconsole.asgi``, ``webconsole.celery``): a deployment that forgets it fails
closed. The ARI app only reads the name; it never imports Django.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aipbx.errors import ConfigError
from aipbx.sealing import ENV_VAR
from aipbx.settings import CoreSettings
from ariapp.conversation.confirm import CONFIRM_AT
from ariapp.conversation.hitl import DEFAULT_SENSITIVE, HitlConfig

REPO = Path(__file__).resolve().parent.parent
DEVELOPMENT_SETTINGS = ("webconsole.settings.dev", "webconsole.settings.test")


def is_production(env: Mapping[str, str]) -> bool:
    """Whether production settings are in effect (see the module docstring)."""
    return env.get("DJANGO_SETTINGS_MODULE", "").strip() not in DEVELOPMENT_SETTINGS


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = env.get(name, default)
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Settings:
    core: CoreSettings  # what the console reads too (aipbx.settings): instance, Redis, paths, providers
    ari_url: str
    ari_user: str
    ari_password: str
    app_name: str
    media_host: str
    media_format: str
    state_dir: Path
    live_transcription_calls: int  # phone-to-phone calls transcribed live at once; the rest after the call
    sounds_dir: Path  # where the recording notices are written for the dialplan to play
    celery_broker_url: str
    model_cache: Path | None
    max_ai_call_seconds: int
    max_ai_calls: int  # AI calls at once in total (over it: a busy message, ariapp.calls.limits); 0: no cap
    max_ai_calls_per_caller: int  # AI calls one caller number may hold at once; 0: no cap
    rtp_timeout_s: int  # no RTP from the caller this long ends an AI call; 0: never
    jitter_ms: int
    status_port: int
    bench_echo: bool
    end_of_turn_ms: int
    admit_latency_s: float  # median answer latency above which new AI calls hear the busy message; 0: off
    confirm_at: float  # gate probability from which "did you mean …?" is asked (conversation/confirm.py); 0: never
    pause_ms: int
    events: bool
    extract_after_call: bool
    celery_queue: str
    tts_provider: str
    hitl: HitlConfig | None  # None: AIPBX_HITL=0, the AI never asks a person
    callback_ring_s: int = 30  # how long each phone of a click-to-call rings (the operator's, then the caller's)
    transfer_ring_s: int = 20  # how long an operator's phone rings when an AI call is put through to them
    callback_trunk: str = ""  # PJSIP endpoint outside numbers are dialled through; empty: extensions only
    #: The stack's ring-time override (scratch test stacks ring 2 s): the dialplan globals this app sets
    #: from the directory use it too, as the rendered seed does (None: each extension's own timeout).
    no_answer_override: int | None = None
    tts_cache_mb: int = 64  # synthesized replies kept per voice (aipbx.providers.cache); 0: none
    turn_model: str = "smart-turn"  # hears whether the caller finished (ariapp.conversation.turns); "off": words only

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        password = env.get("AIPBX_ARI_PASSWORD", "")
        if not password:
            raise ConfigError(
                "AIPBX_ARI_PASSWORD is not set: run `make up` (it generates .env) or export the ARI "
                "password configured in Asterisk's ari.conf"
            )
        media_format = env.get("AIPBX_MEDIA_FORMAT", "ulaw")
        if media_format == "slin16" and env.get("AIPBX_ALLOW_SLIN16") != "1":
            # Measured on Asterisk 22.10: slin16 reaches us, but what we send back in slin16 is
            # dropped (chan_rtp has no receive mapping for its dynamic payload type), so callers
            # would hear nothing. AIPBX_ALLOW_SLIN16=1 is for a patched or newer Asterisk.
            raise ConfigError(
                "AIPBX_MEDIA_FORMAT=slin16: Asterisk 22's External Media RTP drops slin16 "
                "sent back to it, so callers would hear nothing; use ulaw (default) or alaw, "
                "or set AIPBX_ALLOW_SLIN16=1 with an Asterisk that accepts it"
            )
        if media_format not in ("ulaw", "alaw", "slin16"):
            raise ConfigError(f"AIPBX_MEDIA_FORMAT must be ulaw, alaw or slin16, not {media_format!r}")

        def integer(name: str, default: int, low: int, high: int) -> int:
            raw = env.get(name, str(default))
            try:
                value = int(raw)
            except ValueError:
                raise ConfigError(f"{name} must be an integer, not {raw!r}") from None
            if not low <= value <= high:
                raise ConfigError(f"{name} must be between {low} and {high}, not {value}")
            return value

        cache = env.get("AIPBX_MODEL_CACHE")
        core = CoreSettings.from_env(env)
        if core.recordings_keys is None and is_production(env):
            module = env.get("DJANGO_SETTINGS_MODULE", "").strip() or "unset, so production"
            raise ConfigError(
                f"{ENV_VAR} is not set: the production settings (DJANGO_SETTINGS_MODULE={module}) refuse to "
                "keep recordings in clear. Set it to the master key the console also has (Docker: "
                f"secrets/{ENV_VAR}, written by the first docker compose up; a new one: python -m "
                "aipbx.sealing newkey), or run with DJANGO_SETTINGS_MODULE=webconsole.settings.dev"
            )
        return cls(
            core=core,
            ari_url=env.get("AIPBX_ARI_URL", "http://127.0.0.1:8088"),
            ari_user=env.get("AIPBX_ARI_USER", "aipbx"),
            ari_password=password,
            app_name=env.get("AIPBX_ARI_APP", "aipbx"),
            media_host=env.get("AIPBX_MEDIA_HOST", "127.0.0.1"),
            media_format=media_format,
            state_dir=Path(env.get("AIPBX_STATE_DIR", REPO / "var" / "dev" / "state")),
            live_transcription_calls=integer("AIPBX_LIVE_TRANSCRIPTION_CALLS", 2, 0, 200),
            sounds_dir=Path(env.get("AIPBX_SOUNDS_DIR", REPO / "var" / "dev" / "sounds")),
            celery_broker_url=env.get("AIPBX_CELERY_BROKER_URL") or core.redis_url,
            model_cache=Path(cache) if cache else None,
            max_ai_call_seconds=integer("AIPBX_MAX_AI_CALL_SECONDS", 600, 10, 86400),
            max_ai_calls=integer("AIPBX_MAX_AI_CALLS", 50, 0, 10000),
            max_ai_calls_per_caller=integer("AIPBX_MAX_AI_CALLS_PER_CALLER", 2, 0, 1000),
            rtp_timeout_s=_rtp_timeout(integer("AIPBX_RTP_TIMEOUT_S", 90, 0, 86400)),
            jitter_ms=integer("AIPBX_JITTER_MS", 40, 20, 200),
            status_port=integer("AIPBX_STATUS_PORT", 8090, 1, 65535),
            bench_echo=env.get("AIPBX_BENCH_ECHO", "0") == "1",
            end_of_turn_ms=integer("AIPBX_END_OF_TURN_MS", 300, 120, 3000),
            confirm_at=_number(env, "AIPBX_CONFIRM_AT", CONFIRM_AT, 0.0, 1.0),
            admit_latency_s=_number(env, "AIPBX_ADMIT_LATENCY_S", 3.0, 0.0, 60.0),
            events=env.get("AIPBX_EVENTS", "1") == "1",
            extract_after_call=env.get("AIPBX_EXTRACT_AFTER_CALL", "1") == "1",
            celery_queue=env.get("AIPBX_CELERY_QUEUE", "aipbx"),  # the worker's CELERY_TASK_DEFAULT_QUEUE
            tts_provider=_choice(env, "AIPBX_TTS", "local", ("local", "google", "openai")),
            pause_ms=integer("AIPBX_PAUSE_MS", 120, 60, 1000),
            hitl=_hitl_config(env) if env.get("AIPBX_HITL", "1") == "1" else None,
            callback_ring_s=integer("AIPBX_CALLBACK_RING_S", 30, 5, 120),
            transfer_ring_s=integer("AIPBX_TRANSFER_RING_S", 20, 5, 120),
            callback_trunk=_trunk(env.get("AIPBX_CALLBACK_TRUNK", "").strip()),
            no_answer_override=integer("AIPBX_NO_ANSWER_OVERRIDE", 0, 0, 600) or None,
            tts_cache_mb=integer("AIPBX_TTS_CACHE_MB", 64, 0, 4096),
            turn_model=_choice(env, "AIPBX_TURN_MODEL", "smart-turn", ("smart-turn", "off")),
        )


def _trunk(name: str) -> str:
    if name and not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", name):
        raise ConfigError(
            f"AIPBX_CALLBACK_TRUNK must be a PJSIP endpoint name (letters, digits, - and _), not {name!r}"
        )
    return name


def _rtp_timeout(seconds: int) -> int:
    """0 (off) or at least 5 s: a shorter watchdog would hang up on a network hiccup."""
    if 0 < seconds < 5:
        raise ConfigError(f"AIPBX_RTP_TIMEOUT_S must be 0 (off) or at least 5 seconds, not {seconds}")
    return seconds


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "")
    if not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g}, not {value:g}")
    return value


def _hitl_config(env: Mapping[str, str]) -> HitlConfig:
    """``AIPBX_HITL_*``: hold limit, spoken-update times, decision wait, score floor, sensitive words."""
    hold = _number(env, "AIPBX_HITL_HOLD_S", 60.0, 1.0, 600.0)
    raw_updates = env.get("AIPBX_HITL_UPDATES_S", "15,30")
    try:
        updates = tuple(float(x) for x in raw_updates.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"AIPBX_HITL_UPDATES_S must be comma-separated seconds, not {raw_updates!r}") from None
    if any(not 0 < u < hold for u in updates) or list(updates) != sorted(updates):
        raise ConfigError(
            f"AIPBX_HITL_UPDATES_S must be increasing times inside the hold ({hold:g} s), not {raw_updates!r}"
        )
    min_score = env.get("AIPBX_HITL_MIN_SCORE", "").strip()
    sensitive = env.get("AIPBX_HITL_SENSITIVE")
    return HitlConfig(
        min_score=_number(env, "AIPBX_HITL_MIN_SCORE", 0.0, 0.0, 1.0) if min_score else None,
        sensitive=tuple(w.strip() for w in sensitive.split(",") if w.strip())
        if sensitive is not None
        else DEFAULT_SENSITIVE,
        decision_s=_number(env, "AIPBX_HITL_DECISION_S", 2.0, 0.1, 30.0),
        updates_s=updates,
        hold_s=hold,
        voicemail=env.get("AIPBX_VOICEMAIL", "1") == "1",
        voicemail_max_s=_number(env, "AIPBX_VOICEMAIL_MAX_S", 120.0, 5.0, 600.0),
        voicemail_silence_s=_number(env, "AIPBX_VOICEMAIL_SILENCE_S", 4.0, 1.0, 30.0),
    )
