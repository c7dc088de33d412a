"""Has the caller finished their turn? Smart Turn v3.2 listens to how the words end.

A semantic end-of-turn model (BSD-2, 23 languages including Korean): the last 8 s of the caller's
audio as whisper-style log-mel features (80 x 800 at 16 kHz) in, the probability that the turn is
complete out. ~50 ms per utterance on one core, on a worker thread of its own ("turn"), so it runs
beside the recogniser and is ready before the transcript.

It is one signal of :mod:`ariapp.conversation.turns`, not the decider: measured through G.711 on the
synthetic caller (``python -m bench endpointing``), alone (its own 0.5) it would hold one complete
question in ten, but where it is sure a thought is unfinished (below 0.1) it is rarely wrong, and it
hears what the transcript hides ("My son is seven and [pause]" recognised as "My son is seven.").
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from aipbx.providers.base import Pcm, ensure_pcm16_mono
from aipbx.providers.errors import ProviderError, ProviderTimeout
from aipbx.providers.local.models import check_smart_turn
from aipbx.providers.local.workers import queued, worker

__all__ = ["SmartTurn"]

log = logging.getLogger(__name__)

_RATE: Final = 16000
_WINDOW: Final = 8 * _RATE  # the model hears the last 8 s, silence before shorter audio
_FRAMES: Final = 800


class SmartTurn:
    """Probability that a caller's turn is complete, from its audio (int16 mono, 16 kHz)."""

    sample_rate: int = _RATE

    def __init__(self, path: Path | None = None, *, timeout_s: float = 5.0) -> None:
        self.path = check_smart_turn(path)  # fail at start-up, not on the first call
        self.timeout_s = timeout_s
        self._session: Any = None
        self._features: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SmartTurn({self.path.name})"

    def _load(self) -> Any:
        with self._lock:
            if self._session is None:
                import onnxruntime as ort
                from faster_whisper.feature_extractor import FeatureExtractor

                options = ort.SessionOptions()
                options.intra_op_num_threads = 1  # one utterance at a time, beside the recogniser
                options.inter_op_num_threads = 1
                options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                self._features = FeatureExtractor(chunk_length=_WINDOW // _RATE)
                self._session = ort.InferenceSession(
                    str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
                )
        return self._session

    def features(self, audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The model's input for ``audio`` (float, 16 kHz): its last 8 s (silence before shorter
        audio), normalised to zero mean and unit variance, as 80 x 800 whisper log-mel frames."""
        self._load()
        audio = audio[-_WINDOW:]
        window = np.zeros(_WINDOW, dtype=np.float32)
        window[_WINDOW - len(audio) :] = audio
        window = (window - window.mean()) / np.sqrt(window.var() + 1e-7)
        mel = self._features(window, padding=0)
        return np.asarray(mel[:, :_FRAMES], dtype=np.float32)

    def _complete(self, audio: npt.NDArray[np.float32]) -> float:
        session = self._load()
        (out,) = session.run(None, {"input_features": self.features(audio)[np.newaxis]})
        return float(np.asarray(out).reshape(-1)[0])

    async def warmup(self) -> None:
        await self.complete(np.zeros(_RATE // 2, dtype=np.int16))

    async def complete(self, pcm: Pcm) -> float:
        """0..1: how sure the model is that the turn in ``pcm`` is over.

        Raises:
            ProviderError: The model failed or took longer than ``timeout_s``.
        """
        pcm = ensure_pcm16_mono(pcm, provider="smart-turn")
        audio = pcm.astype(np.float32) / 32768.0
        job = queued("turn", self._complete)
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(worker("turn"), contextvars.copy_context().run, job, audio)
        try:
            return await asyncio.wait_for(future, self.timeout_s)
        except TimeoutError as exc:
            raise ProviderTimeout(f"no result within {self.timeout_s:.1f} s", provider="smart-turn") from exc
        except (RuntimeError, ValueError) as exc:  # onnxruntime's failures
            raise ProviderError(f"end-of-turn model failed: {exc!r}", provider="smart-turn") from exc
        finally:
            if not job.started:  # cancelled while queued: it never runs
                job.release()
            log.debug("end of turn judged in %.0f ms", 1000 * (time.perf_counter() - started))
