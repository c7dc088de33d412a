"""OpenAI-compatible family: chat (OpenAI, Ollama, vLLM, llama.cpp), transcription and speech.

* :class:`OpenAIChatLLM` - ``chat.completions`` with ``stream=True``.
* :class:`OpenAISTT` - ``audio.transcriptions`` with a WAV built from the PCM.
* :class:`OpenAITTS` - ``audio.speech`` as streamed 24 kHz PCM.

The ``openai`` SDK is imported when a provider is constructed; a missing SDK
raises ``ProviderUnavailable`` naming the pip package. Keys and base URLs are
constructor arguments only.
"""

from aipbx.providers.openai._common import DEFAULT_BASE_URL
from aipbx.providers.openai.llm import OpenAIChatLLM
from aipbx.providers.openai.stt import OpenAISTT, wav_from_pcm
from aipbx.providers.openai.tts import OpenAITTS, split_for_requests

__all__ = ["DEFAULT_BASE_URL", "OpenAIChatLLM", "OpenAISTT", "OpenAITTS", "split_for_requests", "wav_from_pcm"]
