"""The ``AIPBX_*`` variables every process reads, parsed once into one typed object.

The ARI app (``ariapp.settings.Settings`` embeds it as ``core``) and the web console
(``webconsole.settings.base`` takes its Django settings from it) used to parse these each on its
own, with different defaults; now both call :meth:`CoreSettings.from_env`, through the cached
:func:`core_settings` when they read the process's own environment.

Empty values count as unset: ``KEY=`` in an env file must not become an empty path or an empty
Redis URL. A malformed value raises :class:`~aipbx.errors.ConfigError` naming the variable.

What only one process reads stays in that process's settings (the ARI connection and the media
plane in ``ariapp.settings``; the database, secret key and hosts in ``webconsole.settings``).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final

from aipbx.errors import ConfigError
from aipbx.providers.factory import LLM_ENV_NAMES, LLM_PROVIDERS, STT_ENV_NAMES
from aipbx.sealing import Keyring, KeyringError

REPO: Final = Path(__file__).resolve().parent.parent
DEFAULT_REDIS_URL: Final = "redis://127.0.0.1:6379/0"
STT_PROVIDERS: Final = ("local", "google", "openai")
KNOWLEDGE_STORES: Final = ("chroma", "memory", "none")


@dataclass(frozen=True, slots=True)
class KnowledgeStoreSettings:
    """Where the callees' knowledge is indexed (``AIPBX_KNOWLEDGE_STORE``, ``AIPBX_CHROMA_*``)."""

    store: str  # chroma (a Chroma server), memory (this process only), none (the ARI app answers without)
    chroma_host: str
    chroma_port: int
    chroma_token: str | None  # bearer token for a Chroma that checks one (not the stack's own server)
    prefix: str  # collection names start with it: one per stack instance


@dataclass(frozen=True, slots=True)
class CoreSettings:
    """The settings both the ARI app and the console read, with the defaults of a development checkout."""

    instance: str  # AIPBX_INSTANCE: the stack instance (Redis keys, the event stream, collections)
    redis_url: str
    log_level: str  # upper case, a name logging knows
    log_json: bool
    recordings_dir: Path
    recordings_keys: Keyring | None  # AIPBX_RECORDINGS_KEYS; None: recordings stay in clear (development)
    cdr_dir: Path
    extensions_file: Path  # the seed directory (asterisk/extensions.yaml)
    hold_music_dir: Path  # uploaded hold music: the console writes it, the ARI app plays it
    knowledge: KnowledgeStoreSettings
    llm_provider: str  # AIPBX_LLM: the ARI app's answers and the worker's post-call judge
    stt_provider: str  # AIPBX_STT
    stt_model: str  # the offline recogniser of English
    stt_model_ko: str  # the offline recogniser of ko-KR extensions (multilingual)
    stt_model_relisten: str  # the offline recogniser an unsure English question is heard again with
    #: The variables :func:`aipbx.providers.factory.build_llm` may read, set and non-empty.
    llm_env: Mapping[str, str]
    #: The variables :func:`aipbx.providers.factory.build_stt` may read, set and non-empty.
    stt_env: Mapping[str, str]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CoreSettings:
        """Parse and check ``env``.

        Raises:
            ConfigError: a value is malformed (the message names the variable).
        """

        def get(name: str, default: str) -> str:
            return env.get(name, "").strip() or default

        def choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
            value = get(name, default)
            if value not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
            return value

        def port(name: str, default: int) -> int:
            raw = get(name, str(default))
            try:
                value = int(raw)
            except ValueError:
                raise ConfigError(f"{name} must be an integer, not {raw!r}") from None
            if not 1 <= value <= 65535:
                raise ConfigError(f"{name} must be between 1 and 65535, not {value}")
            return value

        level = get("AIPBX_LOG_LEVEL", "INFO").upper()
        if not isinstance(logging.getLevelName(level), int):
            raise ConfigError(f"AIPBX_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {level!r}")
        try:
            keys = Keyring.from_env(env)
        except KeyringError as exc:
            raise ConfigError(str(exc)) from exc
        instance = get("AIPBX_INSTANCE", "dev")
        return cls(
            instance=instance,
            redis_url=get("AIPBX_REDIS_URL", DEFAULT_REDIS_URL),
            log_level=level,
            log_json=get("AIPBX_LOG_JSON", "0") == "1",
            recordings_dir=Path(get("AIPBX_RECORDINGS_DIR", str(REPO / "recordings"))),
            recordings_keys=keys,
            cdr_dir=Path(get("AIPBX_CDR_DIR", str(REPO / "data" / "cdr"))),
            extensions_file=Path(get("AIPBX_EXTENSIONS_FILE", str(REPO / "asterisk" / "extensions.yaml"))),
            hold_music_dir=Path(get("AIPBX_HOLD_MUSIC_DIR", str(REPO / "var" / "hold-music"))),
            knowledge=KnowledgeStoreSettings(
                store=choice("AIPBX_KNOWLEDGE_STORE", "chroma", KNOWLEDGE_STORES),
                chroma_host=get("AIPBX_CHROMA_HOST", "127.0.0.1"),
                chroma_port=port("AIPBX_CHROMA_PORT", 8001),
                chroma_token=get("AIPBX_CHROMA_TOKEN", "") or None,
                # kb<instance>, as the stack and compose.yaml set it: instances never share collections
                prefix=get("AIPBX_KNOWLEDGE_PREFIX", f"kb{instance}"),
            ),
            llm_provider=choice("AIPBX_LLM", "local", LLM_PROVIDERS),
            stt_provider=choice("AIPBX_STT", "local", STT_PROVIDERS),
            stt_model=get("AIPBX_STT_MODEL", "tiny.en"),
            stt_model_ko=get("AIPBX_STT_MODEL_KO", "base"),
            stt_model_relisten=get("AIPBX_STT_MODEL_RELISTEN", "base"),
            llm_env=_present(env, LLM_ENV_NAMES),
            stt_env=_present(env, STT_ENV_NAMES),
        )


def _present(env: Mapping[str, str], names: tuple[str, ...]) -> Mapping[str, str]:
    return MappingProxyType({name: env[name] for name in names if env.get(name, "").strip()})


@functools.cache
def core_settings() -> CoreSettings:
    """This process's settings, read from ``os.environ`` on first use and kept.

    Raises:
        ConfigError: see :meth:`CoreSettings.from_env`.
    """
    return CoreSettings.from_env(os.environ)
