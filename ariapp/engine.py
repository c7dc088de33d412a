"""Build the conversation engine (providers shared by every call) from the settings.

    AIPBX_STT = local | google | openai       speech recognition
    AIPBX_TTS = local | google | openai       speech synthesis (per call language)
    AIPBX_LLM = local | gemini | openai       answers (local: the best knowledge passage, no generation)

Keys and endpoints come from the environment through :class:`ariapp.settings.Settings`; a missing
key fails at start-up with the name of the variable to set. Vendor SDKs are imported only when
their family is chosen.
"""

from __future__ import annotations

from collections.abc import Mapping

from aipbx.knowledge import build_retriever
from aipbx.providers.base import EndOfTurn, SpeechToText
from aipbx.providers.cache import CachedTTS
from aipbx.providers.factory import (
    build_llm,
    build_stt,
    check_stt_languages,
    google_auth,
    relisten_model,
    require_env,
    stt_model,
)
from ariapp.calls.session import Engine
from ariapp.conversation.answerer import ExtractiveAnswerer, LlmAnswerer
from ariapp.settings import Settings
from ariapp.timed import TimedAnswerer, TimedRetriever, TimedSTT, TimedTTS


def build_stts(
    settings: Settings, env: Mapping[str, str], languages: tuple[str, ...], lane: str = "conversation"
) -> dict[str, SpeechToText]:
    """One recogniser per call language; the cloud families take the language per request, so one
    object serves them all, and offline one model serves every language that uses it.

    ``lane``: ``conversation`` answers callers; ``transcript`` writes phone-to-phone calls down.
    """
    env = _stt_env(settings, env)
    check_stt_languages(env, languages)
    built: dict[str, SpeechToText] = {}
    result = {}
    for language in languages:
        key = stt_model(env, language) if settings.core.stt_provider == "local" else settings.core.stt_provider
        if key not in built:
            built[key] = build_stt(env, language, lane=lane)
        result[language] = built[key]
    return result


def build_relisten_stts(
    settings: Settings, env: Mapping[str, str], stts: Mapping[str, SpeechToText]
) -> dict[str, SpeechToText]:
    """The recogniser that hears each language's unsure questions again: offline, English is heard
    again by another model (``relisten_model``); a cloud family, and Korean, by the call's own."""
    if settings.core.stt_provider != "local":
        return dict(stts)
    env = _stt_env(settings, env)
    loaded = {stt_model(env, language): stt for language, stt in stts.items()}  # e.g. ko-KR's base
    result: dict[str, SpeechToText] = {}
    for language in stts:
        model = relisten_model(env, language)
        if model not in loaded:
            loaded[model] = build_stt(env, language, model=model)
        result[language] = loaded[model]
    return result


def _stt_env(settings: Settings, env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with the recogniser settings as this process read them (``build_stt`` reads the mapping)."""
    return {
        **env,
        "AIPBX_STT": settings.core.stt_provider,
        "AIPBX_STT_MODEL": settings.core.stt_model,
        "AIPBX_STT_MODEL_KO": settings.core.stt_model_ko,
        "AIPBX_STT_MODEL_RELISTEN": settings.core.stt_model_relisten,
    }


def build_tts(settings: Settings, env: Mapping[str, str], language: str, voice: str = ""):
    """The voice for one call language ("en-US" or "ko-KR"); ``voice`` names one of the provider's
    voices (an extension's setting; "" = the configured default)."""
    if settings.tts_provider == "local":
        from aipbx.providers.local import EspeakTTS, PiperTTS

        # piper has one English voice; espeak-ng speaks Korean, but unintelligibly: the production
        # Korean voice is Google's (README, "Languages and providers"). A named voice is espeak's.
        if voice:
            return EspeakTTS(voice=voice)
        return PiperTTS() if language.startswith("en") else EspeakTTS(voice="ko")
    if settings.tts_provider == "google":
        from aipbx.providers.google import GoogleTTS

        default = "ko-KR-Neural2-A" if language.startswith("ko") else "en-US-Neural2-F"
        voice = voice or env.get(f"AIPBX_GOOGLE_VOICE_{language[:2].upper()}", default)
        return GoogleTTS(**google_auth(env), endpoint=env.get("AIPBX_GOOGLE_ENDPOINT") or None, voice=voice)
    from aipbx.providers.openai import OpenAITTS

    return OpenAITTS(
        api_key=require_env(env, "OPENAI_API_KEY"),
        **_openai_url(env),
        model=env.get("AIPBX_OPENAI_TTS_MODEL", "gpt-4o-mini-tts"),
        voice=voice or env.get("AIPBX_OPENAI_VOICE", "alloy"),
    )


def build_answerer(settings: Settings, env: Mapping[str, str]):
    llm = build_llm(settings.core.llm_provider, env)
    return ExtractiveAnswerer() if llm is None else LlmAnswerer(llm)


def _openai_url(env: Mapping[str, str]) -> dict:
    base_url = env.get("AIPBX_OPENAI_BASE_URL")
    return {"base_url": base_url} if base_url else {}


def build_engine(settings: Settings, env: Mapping[str, str]) -> Engine:
    if settings.bench_echo:
        return Engine(None, build_tts(settings, env, "en-US"), ExtractiveAnswerer(), echo=True)

    def voice(language: str, name: str = "") -> TimedTTS:
        # the cache sits inside the timing: a reply said before is timed as the caller gets it
        return TimedTTS(CachedTTS(build_tts(settings, env, language, name), settings.tts_cache_mb * 1024 * 1024))

    voices = {lang: voice(lang) for lang in ("en-US", "ko-KR")}
    retriever = build_retriever(settings.core.knowledge, answers_calls=True)
    languages = _languages(settings)
    built = build_stts(settings, env, languages)
    timed = {id(stt): TimedSTT(stt) for stt in built.values()}
    stts = {lang: timed[id(stt)] for lang, stt in built.items()}
    relisten_stts = {
        lang: timed.setdefault(id(stt), TimedSTT(stt))
        for lang, stt in build_relisten_stts(settings, env, built).items()
    }
    transcript_stts = build_stts(settings, env, languages, lane="transcript")
    return Engine(
        stts[languages[0]],
        voices["en-US"],
        TimedAnswerer(build_answerer(settings, env)),
        stts=stts,
        relisten_stts=relisten_stts,
        transcript_stts=transcript_stts,
        retriever=TimedRetriever(retriever) if retriever is not None else None,
        end_of_turn_ms=settings.end_of_turn_ms,
        pause_ms=min(settings.pause_ms, settings.end_of_turn_ms),
        voices=voices,
        voice_factory=voice,
        desk=build_desk(settings),
        hitl=settings.hitl,
        confirm_at=settings.confirm_at,
        turn_model=build_turn_model(settings),
    )


def build_turn_model(settings: Settings) -> EndOfTurn | None:
    """The end-of-turn model (offline whatever the providers: it hears audio, it sends nothing)."""
    if settings.turn_model == "off":
        return None
    from aipbx.providers.local.turn import SmartTurn

    return SmartTurn()


def _languages(settings: Settings) -> tuple[str, ...]:
    """The call languages of the extensions (English first: the default recogniser)."""
    from aipbx.directory import load_directory

    used = load_directory(settings.core.extensions_file).languages
    return tuple(dict.fromkeys(("en-US", *used)))


def build_desk(settings: Settings):
    """The console's replies to HITL requests; off with AIPBX_HITL=0 or without the event stream."""
    if settings.hitl is None or not settings.events:
        return None
    from ariapp.conversation.hitl import RedisDesk

    return RedisDesk(settings.core.redis_url, settings.core.instance)
