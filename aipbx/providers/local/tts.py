"""Offline text-to-speech: Piper (neural, English) and espeak-ng (formant, any language).

Theory of operation: both classes implement ``TextToSpeech`` and stream. Piper
synthesizes sentence by sentence and hands each sentence to the event loop
through an ``asyncio.Queue`` the moment it exists, so the first sentence can
play while the rest is being computed. All calls share a voice: its jobs run
one at a time in a ``DeadlineLane``, earliest-needed first
(``aipbx.providers.base.needed_by``). espeak-ng runs as a
subprocess writing a WAV stream to stdout, read in 200 ms pieces.

Output is int16 mono at the engine's native rate (22050 Hz for both); the
caller resamples to the telephone leg with an anti-aliasing resampler.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import re
import shutil
import struct
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from aipbx.providers.base import Pcm, collect_audio, speech_deadline
from aipbx.providers.errors import (
    ProviderBadInput,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from aipbx.providers.local.models import PiperVoiceFiles, piper_voice_files
from aipbx.providers.local.workers import DeadlineLane

if TYPE_CHECKING:
    from piper import PiperVoice, SynthesisConfig

__all__ = ["EspeakTTS", "PiperTTS", "normalize_english_times"]

_DONE: Final = object()
_VOICES: dict[Path, PiperVoice] = {}
_VOICES_LOCK = threading.Lock()
_LANES: dict[Path, DeadlineLane] = {}

# espeak reads the digits in "10 am" as a time but the words in "ten am" as the
# verb "am" (/æm/), which Whisper then hears as "and". Spelling it "a.m." fixes
# the phonemes; "pm" is read correctly either way.
_HOUR_AM = re.compile(
    r"\b(\d{1,2}(?::\d{2})?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"fifteen|twenty|thirty|forty|fifty|o'clock)\s+am\b(?!\s+I\b)",
    re.IGNORECASE,
)


def normalize_english_times(text: str) -> str:
    """Rewrite "ten am" as "ten a.m." so espeak's phonemizer reads a time, not the verb."""
    return _HOUR_AM.sub(lambda m: f"{m.group(1)} a.m.", text)


def _lane(files: PiperVoiceFiles) -> DeadlineLane:
    """The process's lane for a voice model: every call's syntheses, earliest-needed first."""
    with _VOICES_LOCK:
        if files.onnx not in _LANES:
            _LANES[files.onnx] = DeadlineLane("piper")
        return _LANES[files.onnx]


def _load_voice(files: PiperVoiceFiles) -> PiperVoice:
    """Load (or reuse) a Piper voice; blocking."""
    with _VOICES_LOCK:
        cached = _VOICES.get(files.onnx)
        if cached is not None:
            return cached
        try:
            from piper import PiperVoice
        except ImportError as exc:
            raise ProviderUnavailable(
                "piper-tts is not installed", install="pip install piper-tts==1.8.0", provider="piper"
            ) from exc
        try:
            voice = PiperVoice.load(files.onnx, config_path=files.config)
        except Exception as exc:  # onnxruntime raises its own non-exported exception types
            raise ProviderUnavailable(f"cannot load piper voice {files.onnx}: {exc}", provider="piper") from exc
        _VOICES[files.onnx] = voice
        return voice


def _check_text(text: str, provider: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ProviderBadInput("nothing to say: text is empty", provider=provider)
    return text.strip()


class PiperTTS:
    """Neural TTS with a local Piper voice (implements ``TextToSpeech``).

    Args:
        voice: None for the packaged en_US "joe" voice, or a ``.onnx`` file / voice directory.
        speaker_id: Speaker of a multi-speaker voice.
        length_scale: >1 speaks slower; None keeps the voice's default.
        noise_scale: Generator noise; None keeps the default, 0 makes output deterministic
            (together with ``noise_w_scale=0``).
        noise_w_scale: Phoneme-duration noise; None keeps the default.
        volume: Peak level per sentence (Piper normalises each sentence to full scale);
            below 1 leaves headroom for resampler overshoot and G.711.
        normalize_text: Apply :func:`normalize_english_times` for English voices.
        chunk_timeout_s: Budget for each chunk (a sentence) to arrive.
        executor: A thread pool of its own, first come first served, instead of the process's lane
            for this model (:attr:`lane`, shared by every ``PiperTTS`` of it).
    """

    provider_name: Final = "piper"

    def __init__(
        self,
        voice: Path | None = None,
        *,
        speaker_id: int | None = None,
        length_scale: float | None = None,
        noise_scale: float | None = None,
        noise_w_scale: float | None = None,
        volume: float = 0.85,
        normalize_text: bool = True,
        chunk_timeout_s: float = 10.0,
        executor: Executor | None = None,
    ) -> None:
        self._files = piper_voice_files(voice)
        try:
            config = json.loads(self._files.config.read_text(encoding="utf-8"))
            self.sample_rate: int = int(config["audio"]["sample_rate"])
            self.language: str = str(config.get("espeak", {}).get("voice", ""))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ProviderUnavailable(
                f"piper voice config {self._files.config} is unreadable: {exc}", provider="piper"
            ) from exc
        self.speaker_id = speaker_id
        self.length_scale = length_scale
        self.noise_scale = noise_scale
        self.noise_w_scale = noise_w_scale
        self.volume = volume
        self.normalize_text = normalize_text
        self.chunk_timeout_s = chunk_timeout_s
        self._executor = executor
        self.lane: DeadlineLane | None = None if executor is not None else _lane(self._files)

    def __repr__(self) -> str:
        return f"PiperTTS(voice={self._files.onnx.name!r}, sample_rate={self.sample_rate})"

    def _synthesis_config(self) -> SynthesisConfig:
        from piper import SynthesisConfig

        return SynthesisConfig(
            speaker_id=self.speaker_id,
            length_scale=self.length_scale,
            noise_scale=self.noise_scale,
            noise_w_scale=self.noise_w_scale,
            volume=self.volume,
        )

    async def warmup(self) -> None:
        """Load the voice and synthesize one word so the first caller does not pay for it."""
        await self.synthesize_all("Hello.")

    def _produce(self, text: str, put: Callable[[object], None], stop: threading.Event) -> None:
        """Worker thread: synthesize sentence by sentence and hand each one over."""
        try:
            if stop.is_set():  # the caller hung up or talked over us while this waited its turn
                return
            voice = _load_voice(self._files)
            for chunk in voice.synthesize(text, self._synthesis_config()):
                if stop.is_set():
                    return
                put(chunk.audio_int16_array)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(exc)
        finally:
            put(_DONE)

    async def synthesize(self, text: str) -> AsyncIterator[Pcm]:
        """Yield int16 chunks (one per sentence) at ``sample_rate`` as Piper produces them."""
        text = _check_text(text, "piper")
        if self.normalize_text and self.language.startswith("en"):
            text = normalize_english_times(text)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()

        def put(item: object) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop closed after the consumer left; nobody is listening
                stop.set()

        # The producer never raises (errors travel through the queue), so its future
        # needs no awaiting; the stop flag ends it after the current sentence (or before it starts).
        context = contextvars.copy_context()
        if self.lane is not None:
            self.lane.submit(lambda: context.run(self._produce, text, put, stop), speech_deadline.get())
        else:
            loop.run_in_executor(self._executor, context.run, self._produce, text, put, stop)
        try:
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), self.chunk_timeout_s)
                except TimeoutError as exc:
                    raise ProviderTimeout(f"no audio within {self.chunk_timeout_s:.1f} s", provider="piper") from exc
                if item is _DONE:
                    return
                if isinstance(item, ProviderError):
                    raise item
                if isinstance(item, BaseException):
                    raise ProviderError(f"piper synthesis failed: {item!r}", provider="piper") from item
                assert isinstance(item, np.ndarray)
                yield item
        finally:
            stop.set()

    async def synthesize_all(self, text: str) -> Pcm:
        """Synthesize ``text`` completely into one int16 array."""
        return await collect_audio(self.synthesize(text))


class EspeakTTS:
    """Formant TTS through the ``espeak-ng`` executable (implements ``TextToSpeech``).

    Robotic but speaks ~100 languages; the fallback for languages Piper lacks.

    Args:
        voice: espeak-ng voice name (``espeak-ng --voices``), e.g. ``"en-us"``, ``"ko"``.
        words_per_minute: Speaking rate; None keeps espeak's default (175).
        executable: Name or path of the espeak-ng binary.
        chunk_timeout_s: Budget for each piece of audio to arrive.
    """

    provider_name: Final = "espeak-ng"
    sample_rate: int = 22050  # every non-MBROLA espeak-ng voice
    _MAX_TEXT_BYTES: Final = 60_000  # stays inside a pipe buffer: stdin is written in one go
    _READ_BYTES: Final = 8820  # 200 ms of 22.05 kHz int16

    def __init__(
        self,
        voice: str = "en-us",
        *,
        words_per_minute: int | None = None,
        executable: str = "espeak-ng",
        chunk_timeout_s: float = 10.0,
    ) -> None:
        path = shutil.which(executable)
        if path is None:
            raise ProviderUnavailable(
                f"{executable!r} not found on PATH", install="apt-get install espeak-ng", provider="espeak-ng"
            )
        self._path = path
        self.voice = voice
        self.words_per_minute = words_per_minute
        self.chunk_timeout_s = chunk_timeout_s

    def __repr__(self) -> str:
        return f"EspeakTTS(voice={self.voice!r})"

    def _argv(self) -> list[str]:
        argv = [self._path, "--stdout", "-b", "1", "-v", self.voice]  # -b 1: input is UTF-8
        if self.words_per_minute is not None:
            argv += ["-s", str(self.words_per_minute)]
        return argv  # no text argument: espeak-ng reads stdin, so text can never become an option

    async def _read(self, stream: asyncio.StreamReader, n: int, *, exact: bool = False) -> bytes:
        try:
            reader = stream.readexactly(n) if exact else stream.read(n)
            return await asyncio.wait_for(reader, self.chunk_timeout_s)
        except asyncio.IncompleteReadError as exc:
            return exc.partial
        except TimeoutError as exc:
            raise ProviderTimeout(f"no audio within {self.chunk_timeout_s:.1f} s", provider="espeak-ng") from exc

    async def _skip_wav_header(self, stdout: asyncio.StreamReader) -> bool:
        """Consume the RIFF header up to the data chunk; False if the stream ended first.

        espeak-ng streams, so the RIFF and data sizes in its header are placeholders.
        """
        head = await self._read(stdout, 12, exact=True)
        if len(head) < 12:
            return False
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise ProviderError(f"espeak-ng wrote no WAV header: {head!r}", provider="espeak-ng")
        while True:
            chunk = await self._read(stdout, 8, exact=True)
            if len(chunk) < 8:
                return False
            chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"data":
                return True
            body = await self._read(stdout, size, exact=True)
            if chunk_id == b"fmt ":
                _fmt, channels, rate, _byte_rate, _align, bits = struct.unpack("<HHIIHH", body[:16])
                if (channels, rate, bits) != (1, self.sample_rate, 16):
                    raise ProviderBadInput(
                        f"voice {self.voice!r} produces {channels} ch {rate} Hz {bits} bit; "
                        f"only mono {self.sample_rate} Hz 16 bit voices are supported",
                        provider="espeak-ng",
                    )

    async def synthesize(self, text: str) -> AsyncIterator[Pcm]:
        """Yield int16 chunks of about 200 ms at ``sample_rate`` as espeak-ng writes them."""
        data = _check_text(text, "espeak-ng").encode("utf-8")
        if len(data) > self._MAX_TEXT_BYTES:
            raise ProviderBadInput(f"text too long ({len(data)} bytes); split it", provider="espeak-ng")
        proc = await asyncio.create_subprocess_exec(
            *self._argv(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        try:
            try:
                proc.stdin.write(data + b"\n")
                await proc.stdin.drain()
                proc.stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                pass  # espeak-ng exited early (e.g. unknown voice): its exit status says why
            if await self._skip_wav_header(proc.stdout):
                carry = b""
                while block := await self._read(proc.stdout, self._READ_BYTES):
                    block = carry + block
                    usable = len(block) - len(block) % 2
                    carry = block[usable:]
                    if usable:
                        yield np.frombuffer(block[:usable], dtype="<i2").astype(np.int16)
            returncode = await asyncio.wait_for(proc.wait(), self.chunk_timeout_s)
            if returncode != 0:
                stderr = (await proc.stderr.read()).decode("utf-8", "replace").strip()
                error = ProviderBadInput if "voice does not exist" in stderr else ProviderError
                raise error(f"espeak-ng exited with {returncode}: {stderr}", provider="espeak-ng")
        finally:
            if proc.returncode is None:
                proc.kill()
                # Reap the child even if we are being cancelled, but never wait long.
                try:
                    await asyncio.shield(asyncio.wait_for(proc.wait(), 2.0))
                except TimeoutError:
                    pass  # SIGKILLed; the kernel reaps it once asyncio's child watcher runs

    async def synthesize_all(self, text: str) -> Pcm:
        """Synthesize ``text`` completely into one int16 array."""
        return await collect_audio(self.synthesize(text))
