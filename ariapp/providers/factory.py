"""Build the configured generative language model from an environment mapping.

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

from ariapp.errors import ConfigError
from ariapp.providers.base import LanguageModel

__all__ = ["LLM_ENV_NAMES", "LLM_PROVIDERS", "build_llm", "require_env"]

LLM_PROVIDERS: Final = ("local", "gemini", "openai")
#: Every variable :func:`build_llm` may read (processes copy just these from their environment).
LLM_ENV_NAMES: Final = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "AIPBX_GEMINI_MODEL", "AIPBX_GEMINI_BASE_URL",
                        "OPENAI_API_KEY", "AIPBX_OPENAI_BASE_URL", "AIPBX_OPENAI_MODEL")


def require_env(env: Mapping[str, str], *names: str) -> str:
    """The first non-empty variable of ``names``, else a ConfigError naming them."""
    for name in names:
        if env.get(name):
            return env[name]
    raise ConfigError(f"{' or '.join(names)} must be set for the chosen provider")


def build_llm(provider: str, env: Mapping[str, str], *, first_token_timeout_s: float = 10.0,
              chunk_timeout_s: float = 10.0) -> LanguageModel | None:
    """The ``LanguageModel`` of ``provider``, or None for ``local``.

    Raises:
        ConfigError: Unknown provider or a missing key (the message names the variable).
        ProviderUnavailable: The vendor SDK is not installed.
    """
    if provider == "local":
        return None
    if provider == "gemini":
        from ariapp.providers.google import GeminiLLM

        return GeminiLLM(api_key=require_env(env, "GEMINI_API_KEY", "GOOGLE_API_KEY"),
                         model=env.get("AIPBX_GEMINI_MODEL", "gemini-2.5-flash"),
                         base_url=env.get("AIPBX_GEMINI_BASE_URL") or None,
                         first_token_timeout_s=first_token_timeout_s, chunk_timeout_s=chunk_timeout_s)
    if provider == "openai":
        from ariapp.providers.openai import OpenAIChatLLM

        base_url = env.get("AIPBX_OPENAI_BASE_URL")
        return OpenAIChatLLM(api_key=require_env(env, "OPENAI_API_KEY"), **({"base_url": base_url} if base_url else {}),
                             model=env.get("AIPBX_OPENAI_MODEL", "gpt-4o-mini"),
                             first_token_timeout_s=first_token_timeout_s, chunk_timeout_s=chunk_timeout_s)
    raise ConfigError(f"AIPBX_LLM must be one of {', '.join(LLM_PROVIDERS)}, not {provider!r}")
