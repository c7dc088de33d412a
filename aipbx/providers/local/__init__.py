"""Offline providers, the default family: weights ship inside registry packages.

* :class:`WhisperSTT` - faster-whisper, ``"base"`` (multilingual) or ``"tiny.en"``.
* :class:`PiperTTS` - Piper neural voice (en_US "joe"), 22050 Hz.
* :class:`EspeakTTS` - espeak-ng subprocess for languages Piper lacks, 22050 Hz.

Nothing here downloads; see :mod:`aipbx.providers.local.models` for where the
weights come from.
"""

from aipbx.providers.local.models import (
    PiperVoiceFiles,
    assemble_whisper_base,
    default_cache_dir,
    piper_voice_files,
    resolve_whisper_model,
)
from aipbx.providers.local.stt import WhisperSTT
from aipbx.providers.local.tts import EspeakTTS, PiperTTS, normalize_english_times

__all__ = [
    "EspeakTTS",
    "PiperTTS",
    "PiperVoiceFiles",
    "WhisperSTT",
    "assemble_whisper_base",
    "default_cache_dir",
    "normalize_english_times",
    "piper_voice_files",
    "resolve_whisper_model",
]
