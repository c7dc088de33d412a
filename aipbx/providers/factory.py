"""Build the configured providers from an environment mapping: the language model and the recogniser.

``AIPBX_STT`` names the recogniser family (``local``, ``google``, ``openai``); offline, the model is
chosen per call language (``AIPBX_STT_MODEL`` for English, ``AIPBX_STT_MODEL_KO`` for Korean), and
an English question nothing answers is heard again by ``AIPBX_STT_MODEL_RELISTEN`` (:func:`relisten_model`). The
ARI app (conversations, live transcripts) and the worker (transcripts after the call) build theirs
here.

``AIPBX_LLM`` names the family: ``local`` (no generative model: ``None``),
``gemini`` or ``openai`` (any OpenAI-compatible server, e.g. a local Ollama
through ``AIPBX_OPENAI_BASE_URL``). Both the ARI app (answers) and the
knowledge worker (post-call usefulness judgement) build their model here, so
one setting drives both. The mapping is passed in explicitly; this module never
reads ``os.environ`` itself, and vendor SDKs are imported only for the family chosen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aipbx.errors import ConfigError
from aipbx.providers.base import LanguageModel, SpeechToText

__all__ = [
    "LLM_ENV_NAMES",
    "LLM_PROVIDERS",
    "STT_ENV_NAMES",
    "build_llm",
    "build_stt",
    "relisten_model",
    "require_env",
    "stt_model",
]

LLM_PROVIDERS: Final = ("local", "gemini", "openai")
#: Every variable :func:`build_llm` may read (processes copy just these from their environment).
LLM_ENV_NAMES: Final = (
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "AIPBX_GEMINI_MODEL",
    "AIPBX_GEMINI_BASE_URL",
    "OPENAI_API_KEY",
    "AIPBX_OPENAI_BASE_URL",
    "AIPBX_OPENAI_MODEL",
)


#: Every variable :func:`build_stt` may read.
STT_ENV_NAMES: Final = (
    "AIPBX_STT",
    "AIPBX_STT_MODEL",
    "AIPBX_STT_MODEL_KO",
    "AIPBX_STT_MODEL_RELISTEN",
    "AIPBX_STT_WINDOW_PAD_S",
    "AIPBX_MODEL_CACHE",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "AIPBX_GOOGLE_API_KEY",
    "AIPBX_GOOGLE_ENDPOINT",
    "AIPBX_GOOGLE_STT_MODEL",
    "OPENAI_API_KEY",
    "AIPBX_OPENAI_BASE_URL",
    "AIPBX_OPENAI_STT_MODEL",
)


def stt_model(env: Mapping[str, str], language: str) -> str:
    """The offline recogniser of ``language``: ``AIPBX_STT_MODEL_KO`` (default ``base``, multilingual)
    for Korean, ``AIPBX_STT_MODEL`` (default ``tiny.en``) otherwise."""
    if language.startswith("ko"):
        return env.get("AIPBX_STT_MODEL_KO") or "base"
    return env.get("AIPBX_STT_MODEL") or "tiny.en"


def relisten_model(env: Mapping[str, str], language: str) -> str:
    """The offline recogniser that hears an unsure question again (``ariapp.conversation.deciding``):
    ``AIPBX_STT_MODEL_RELISTEN`` (default ``base``; ``same``: the call's own) for English, the call's
    own model for Korean. Heard again by whisper base, questions tiny.en first heard wrong are
    answered at least as often as when tiny.en hears them again, and no near miss is heard as the
    nearest passages' words, which tiny.en told them sometimes does (docs/performance.md, "A second
    listen by another model")."""
    own = stt_model(env, language)
    chosen = (env.get("AIPBX_STT_MODEL_RELISTEN") or "base").strip()
    return own if language.startswith("ko") or chosen == "same" else chosen


def stt_window_pad(env: Mapping[str, str]) -> float | None:
    """``AIPBX_STT_WINDOW_PAD_S``: seconds of padding the offline recogniser encodes after an utterance
    instead of whisper's whole 30 s window (default 10; ``off`` = the whole window).

    Raises:
        ConfigError: not a number from 5 to 25, nor ``off``.
    """
    raw = (env.get("AIPBX_STT_WINDOW_PAD_S") or "").strip().lower()
    if not raw:
        return 10.0
    if raw == "off":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 5.0 <= value <= 25.0:  # below 5 s the decoder starts repeating sentences (docs/performance.md)
        raise ConfigError(f"AIPBX_STT_WINDOW_PAD_S must be seconds from 5 to 25, or off; not {raw!r}")
    return value


def check_stt_languages(env: Mapping[str, str], languages: tuple[str, ...]) -> None:
    """Refuse an English-only offline recogniser for Korean calls (every turn would fail).

    Raises:
        ConfigError: names the setting to change.
    """
    if (env.get("AIPBX_STT") or "local") != "local" or not any(lang.startswith("ko") for lang in languages):
        return
    model = stt_model(env, "ko-KR")
    if model.rstrip("/").endswith(".en"):
        raise ConfigError(
            f"AIPBX_STT_MODEL_KO={model} only understands English, but ko-KR extensions need a "
            "Korean-capable recogniser: set AIPBX_STT_MODEL_KO=base (or another multilingual model)"
        )


def build_stt(
    env: Mapping[str, str], language: str = "en-US", *, lane: str = "conversation", model: str | None = None
) -> SpeechToText:
    """The recogniser for calls in ``language``.

    ``lane="transcript"`` (offline only) is a single-threaded model on a worker thread at the lowest
    CPU priority: it writes calls down without taking the CPU from a caller waiting for an answer.
    ``lane="batch"`` is the worker's (after the call): nobody waits on it, so it may take minutes.
    ``model``: the offline model to load instead of the language's (:func:`relisten_model`).

    Raises:
        ConfigError: Unknown family or a missing key (the message names the variable).
        ProviderUnavailable: The model package or the vendor SDK is not installed.
    """
    provider = env.get("AIPBX_STT") or "local"
    if provider == "local":
        from pathlib import Path

        from aipbx.providers.local import WhisperSTT
        from aipbx.providers.local.workers import worker

        cache = env.get("AIPBX_MODEL_CACHE")
        model, cache_dir = model or stt_model(env, language), Path(cache) if cache else None
        pad = stt_window_pad(env)
        if lane == "transcript":
            return WhisperSTT(
                model,
                cache_dir=cache_dir,
                cpu_threads=1,
                executor=worker("whisper-transcript", nice=19),
                timeout_s=120.0,
                lane=lane,
                window_pad_s=pad,
            )
        timeout = 300.0 if lane == "batch" else 30.0
        return WhisperSTT(model, cache_dir=cache_dir, timeout_s=timeout, lane=lane, window_pad_s=pad)
    if provider == "google":
        from aipbx.providers.google import GoogleStreamingSTT, GoogleSTT

        streaming = GoogleStreamingSTT(
            **google_auth(env),
            endpoint=env.get("AIPBX_GOOGLE_ENDPOINT") or None,
            model=env.get("AIPBX_GOOGLE_STT_MODEL", "telephony"),
        )
        return GoogleSTT(streaming)
    if provider == "openai":
        from aipbx.providers.openai import DEFAULT_BASE_URL, OpenAISTT

        return OpenAISTT(
            api_key=require_env(env, "OPENAI_API_KEY"),
            base_url=env.get("AIPBX_OPENAI_BASE_URL") or DEFAULT_BASE_URL,
            model=env.get("AIPBX_OPENAI_STT_MODEL", "gpt-4o-mini-transcribe"),
        )
    raise ConfigError(f"AIPBX_STT must be one of local, google, openai, not {provider!r}")


def google_auth(env: Mapping[str, str]) -> dict:
    """A service-account file (``GOOGLE_APPLICATION_CREDENTIALS``) or an API key (``AIPBX_GOOGLE_API_KEY``)."""
    if env.get("GOOGLE_APPLICATION_CREDENTIALS"):
        return {"credentials_file": env["GOOGLE_APPLICATION_CREDENTIALS"]}
    return {"api_key": require_env(env, "AIPBX_GOOGLE_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS")}


def require_env(env: Mapping[str, str], *names: str) -> str:
    """The first non-empty variable of ``names``, else a ConfigError naming them."""
    for name in names:
        if env.get(name):
            return env[name]
    raise ConfigError(f"{' or '.join(names)} must be set for the chosen provider")


def build_llm(
    provider: str, env: Mapping[str, str], *, first_token_timeout_s: float = 10.0, chunk_timeout_s: float = 10.0
) -> LanguageModel | None:
    """The ``LanguageModel`` of ``provider``, or None for ``local``.

    Raises:
        ConfigError: Unknown provider or a missing key (the message names the variable).
        ProviderUnavailable: The vendor SDK is not installed.
    """
    if provider == "local":
        return None
    if provider == "gemini":
        from aipbx.providers.google import GeminiLLM

        return GeminiLLM(
            api_key=require_env(env, "GEMINI_API_KEY", "GOOGLE_API_KEY"),
            model=env.get("AIPBX_GEMINI_MODEL", "gemini-2.5-flash"),
            base_url=env.get("AIPBX_GEMINI_BASE_URL") or None,
            first_token_timeout_s=first_token_timeout_s,
            chunk_timeout_s=chunk_timeout_s,
        )
    if provider == "openai":
        from aipbx.providers.openai import DEFAULT_BASE_URL, OpenAIChatLLM

        return OpenAIChatLLM(
            api_key=require_env(env, "OPENAI_API_KEY"),
            base_url=env.get("AIPBX_OPENAI_BASE_URL") or DEFAULT_BASE_URL,
            model=env.get("AIPBX_OPENAI_MODEL", "gpt-4o-mini"),
            first_token_timeout_s=first_token_timeout_s,
            chunk_timeout_s=chunk_timeout_s,
        )
    raise ConfigError(f"AIPBX_LLM must be one of {', '.join(LLM_PROVIDERS)}, not {provider!r}")
