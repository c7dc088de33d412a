"""Typed contracts between the call pipeline and the speech providers.

The pipeline depends only on these protocols; the offline family
(``aipbx.providers.local``) and the cloud families implement them. Audio
crossing these boundaries is always mono ``np.int16`` at the provider's own
``sample_rate``: resampling to and from the 8 kHz telephone leg is the
caller's job, done once with an anti-aliasing resampler (soxr).

Failures are reported with the hierarchy in ``aipbx.providers.errors``.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from aipbx.providers.errors import ProviderBadInput

__all__ = [
    "ChatMessage",
    "EndOfTurn",
    "LanguageModel",
    "Pcm",
    "SpeechToText",
    "StreamingSpeechToText",
    "SttStream",
    "TextToSpeech",
    "Transcript",
    "collect_audio",
    "ensure_pcm16_mono",
    "hints_prompt",
    "needed_by",
    "speech_deadline",
]


def hints_prompt(hints: Sequence[str]) -> str:
    """Recognition ``hints`` as the text a prompted recogniser (Whisper, OpenAI) reads before the
    audio: a sentence naming them, which biases the spelling of names without changing the rest as
    a bare word list does ("Saturday hours?" heard as "Set or be ours." after a list of names)."""
    names = [h.strip() for h in hints if h and h.strip()]
    if not names:
        return ""
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    return f"A caller asks about {listed}."


#: When the audio of a synthesis started in this context is needed (``time.monotonic()``): the caller
#: hears silence from then on if it is late. A voice shared by every call of the process (piper:
#: ``DeadlineLane``) serves the earliest first; None means now. Set with :func:`needed_by`; a
#: context variable, so every wrapper (timing, reply cache) passes it on untouched.
speech_deadline: ContextVar[float | None] = ContextVar("speech_deadline", default=None)


@contextmanager
def needed_by(deadline: float | None) -> Iterator[None]:
    """Syntheses started inside the block are needed by ``deadline`` (see :data:`speech_deadline`)."""
    token = speech_deadline.set(deadline)
    try:
        yield
    finally:
        speech_deadline.reset(token)


#: Mono signed 16-bit samples, native byte order: the one audio type at provider boundaries.
Pcm = npt.NDArray[np.int16]


@dataclass(frozen=True, slots=True)
class Transcript:
    """What a speech-to-text provider heard in one utterance.

    Attributes:
        text: Recognised text, stripped; ``""`` when nothing was said.
        language: ISO 639-1 code of the detected or forced language, if known.
        is_final: False for interim hypotheses of a streaming recogniser.
        confidence: 0..1 when the provider reports one, else None.
        duration_s: Length of the audio that was transcribed, in seconds.
        compute_s: Wall-clock time the provider spent, in seconds.
    """

    text: str
    language: str | None
    is_final: bool
    confidence: float | None
    duration_s: float
    compute_s: float

    @property
    def is_empty(self) -> bool:
        """True when no words were recognised."""
        return not self.text.strip()

    @property
    def real_time_factor(self) -> float | None:
        """``compute_s / duration_s`` (below 1 is faster than real time)."""
        return self.compute_s / self.duration_s if self.duration_s > 0 else None


@runtime_checkable
class SpeechToText(Protocol):
    """Whole-utterance speech recognition.

    The caller gates audio with its own VAD and hands over one complete
    utterance at a time. A streaming variant (``stream()`` yielding interim
    ``Transcript(is_final=False)`` objects) will be a separate protocol so
    that batch-only engines such as Whisper need not fake it.
    """

    sample_rate: int
    """Rate the provider expects, in Hz (16000 for every engine so far)."""

    async def transcribe(self, pcm: Pcm, language: str | None = None, hints: Sequence[str] = ()) -> Transcript:
        """Transcribe one utterance.

        Args:
            pcm: Mono ``np.int16`` samples at ``sample_rate``.
            language: ISO 639-1 hint (``"en"``, ``"ko"``); None lets the engine detect it.
            hints: Names the speaker may say that the engine would not expect (the callee's people,
                places, products: "Dr. Minsu Park", "Chuseok"); the engine leans towards them
                (Google: speech context phrases; OpenAI and Whisper: the prompt).

        Raises:
            ProviderBadInput: Wrong dtype/shape, or a language the model cannot do.
            ProviderTimeout: The engine did not finish within its budget.
            ProviderError: The engine failed.
        """
        ...


@runtime_checkable
class EndOfTurn(Protocol):
    """Whether a speaker's turn is over, judged from the audio (intonation, how the words end)."""

    sample_rate: int
    """Rate the model expects, in Hz."""

    async def complete(self, pcm: Pcm) -> float:
        """0..1: how sure the model is that the turn in ``pcm`` (mono ``np.int16``) is complete.

        Raises:
            ProviderTimeout: The model did not finish within its budget.
            ProviderError: The model failed.
        """
        ...


@runtime_checkable
class TextToSpeech(Protocol):
    """Text-to-speech that hands out audio as soon as it exists."""

    sample_rate: int
    """Native output rate in Hz; the caller resamples to the telephone leg."""

    def synthesize(self, text: str) -> AsyncIterator[Pcm]:
        """Yield mono ``np.int16`` chunks in playback order, the first one as early as possible.

        Raises (while iterating):
            ProviderBadInput: Empty text or an unknown voice.
            ProviderTimeout: A chunk did not arrive within the budget.
            ProviderError: The engine failed.
        """
        ...

    async def synthesize_all(self, text: str) -> Pcm:
        """Synthesize ``text`` completely and return one ``np.int16`` array."""
        ...


@runtime_checkable
class SttStream(Protocol):
    """One utterance-spanning recognition stream (e.g. Google StreamingRecognize)."""

    async def send(self, pcm: Pcm) -> None:
        """Feed mono ``np.int16`` audio at the provider's ``sample_rate`` as it arrives."""
        ...

    async def finish(self) -> None:
        """No more audio: the provider sends its last final result and the iterator ends."""
        ...

    def results(self) -> AsyncIterator[Transcript]:
        """Interim (``is_final=False``) and final transcripts as the provider produces them."""
        ...

    async def aclose(self) -> None:
        """Abandon the stream (caller hung up): release the connection at once."""
        ...


@runtime_checkable
class StreamingSpeechToText(Protocol):
    """Speech recognition that hears audio while the caller is still speaking."""

    sample_rate: int

    async def open_stream(self, language: str | None = None) -> SttStream:
        """Start a recognition stream; raises ProviderError subclasses on failure."""
        ...


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of an LLM conversation; ``role`` is "system", "user" or "assistant"."""

    role: str
    content: str


@runtime_checkable
class LanguageModel(Protocol):
    """A chat model that streams its answer."""

    def stream(
        self, messages: list[ChatMessage], *, max_tokens: int = 150, temperature: float = 0.5
    ) -> AsyncIterator[str]:
        """Yield text deltas as the model produces them.

        Raises (while iterating):
            ProviderTimeout: No first token / next token within the budget.
            ProviderError: The service failed (``retryable`` says whether a retry may help).
        """
        ...


def ensure_pcm16_mono(pcm: Pcm, *, provider: str | None = None) -> Pcm:
    """Check that ``pcm`` is 1-D ``np.int16`` audio and return it as a contiguous array.

    Raises:
        ProviderBadInput: For any other dtype or shape (no silent conversion:
            a float array in [-1, 1] mistaken for int16 would be silence).
    """
    if not isinstance(pcm, np.ndarray):
        raise ProviderBadInput(f"expected a numpy array, got {type(pcm).__name__}", provider=provider)
    if pcm.dtype != np.int16:
        raise ProviderBadInput(f"expected int16 samples, got {pcm.dtype}", provider=provider)
    if pcm.ndim != 1:
        raise ProviderBadInput(f"expected mono 1-D audio, got shape {pcm.shape}", provider=provider)
    return np.ascontiguousarray(pcm)


async def collect_audio(chunks: AsyncIterable[Pcm]) -> Pcm:
    """Concatenate an async stream of int16 chunks (helper for ``synthesize_all``)."""
    parts = [chunk async for chunk in chunks]
    if not parts:
        return np.zeros(0, dtype=np.int16)
    joined: Pcm = np.concatenate(parts).astype(np.int16, copy=False)
    return joined
