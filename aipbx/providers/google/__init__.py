"""Google Cloud family: Speech-to-Text, Text-to-Speech (gRPC) and Gemini (HTTP).

* :class:`GoogleStreamingSTT` / :class:`GoogleSTT` - ``google-cloud-speech`` v1 StreamingRecognize.
* :class:`GoogleTTS` - ``google-cloud-texttospeech`` v1, streaming for Chirp 3 HD voices,
  per sentence otherwise.
* :class:`GeminiLLM` - ``google-genai``, ``generate_content_stream``.

The SDKs are imported when a provider is constructed, so importing this
package never fails; a missing SDK raises ``ProviderUnavailable`` naming the
pip package. Credentials and endpoints are constructor arguments only.
"""

from aipbx.providers.google.llm import GeminiLLM, to_gemini_contents
from aipbx.providers.google.stt import GoogleStreamingSTT, GoogleSTT, GoogleSttStream
from aipbx.providers.google.tts import GoogleTTS, pcm_from_wav, split_sentences

__all__ = [
    "GeminiLLM",
    "GoogleSTT",
    "GoogleStreamingSTT",
    "GoogleSttStream",
    "GoogleTTS",
    "pcm_from_wav",
    "split_sentences",
    "to_gemini_contents",
]
