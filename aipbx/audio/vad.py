"""Speech start/end detection on telephone audio (webrtcvad plus hysteresis).

webrtcvad classifies single 10/20/30 ms frames, which flickers: a plosive is
"unvoiced", a cough is "voiced". :class:`SpeechDetector` turns the per-frame
decision into two events: SPEECH_START after ``start_ms`` of consecutive voiced
frames, SPEECH_END after ``end_ms`` of consecutive unvoiced ones. Frames quieter
than ``energy_floor_dbfs`` count as unvoiced whatever webrtcvad says, because
its adaptive noise model flags faint line hiss as speech.

Classifying one frame costs microseconds of C, so calling :meth:`process` on
the event loop does not disturb RTP pacing.
"""

from __future__ import annotations

import enum
import math

import numpy as np
import numpy.typing as npt
import webrtcvad

__all__ = ["SpeechDetector", "VadEvent", "dbfs"]

Pcm = npt.NDArray[np.int16]

_SUPPORTED_RATES = (8000, 16000, 32000, 48000)
_SUPPORTED_FRAME_MS = (10, 20, 30)
_FULL_SCALE = 32768.0


class VadEvent(enum.Enum):
    """Transitions reported by :meth:`SpeechDetector.process`."""

    SPEECH_START = "speech_start"
    SPEECH_END = "speech_end"


def dbfs(frame: Pcm) -> float:
    """RMS level of int16 samples relative to full scale.

    Args:
        frame: int16 samples.

    Returns:
        Level in dBFS: 0.0 for a full-scale square wave, about -3.01 for a
        full-scale sine, ``-inf`` for digital silence or an empty frame.
    """
    samples = np.asarray(frame, dtype=np.float64)
    if samples.size == 0:
        return -math.inf
    power = float(np.mean(samples * samples))
    if power == 0.0:
        return -math.inf
    return 10.0 * math.log10(power / (_FULL_SCALE * _FULL_SCALE))


class SpeechDetector:
    """Detects the start and end of speech in a stream of fixed-size frames.

    Args:
        sample_rate: 8000 or 16000 (webrtcvad also takes 32000 and 48000).
        mode: webrtcvad aggressiveness, 0 (lenient) to 3 (strict).
        frame_ms: Frame duration: 10, 20 or 30 ms.
        start_ms: Voiced audio needed before SPEECH_START.
        end_ms: Unvoiced audio needed before SPEECH_END.
        energy_floor_dbfs: Frames below this level are unvoiced.

    Raises:
        ValueError: An unsupported rate, mode or frame size.
    """

    def __init__(
        self,
        sample_rate: int = 8000,
        mode: int = 2,
        frame_ms: int = 20,
        start_ms: int = 60,
        end_ms: int = 400,
        energy_floor_dbfs: float = -50.0,
    ) -> None:
        if sample_rate not in _SUPPORTED_RATES:
            raise ValueError(f"sample_rate must be one of {_SUPPORTED_RATES}, got {sample_rate}")
        if frame_ms not in _SUPPORTED_FRAME_MS:
            raise ValueError(f"frame_ms must be one of {_SUPPORTED_FRAME_MS}, got {frame_ms}")
        if mode not in range(4):
            raise ValueError(f"mode must be 0..3, got {mode}")
        if start_ms <= 0 or end_ms <= 0:
            raise ValueError("start_ms and end_ms must be positive")
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.frame_samples = sample_rate * frame_ms // 1000
        self.energy_floor_dbfs = energy_floor_dbfs
        self._mode = mode
        # Round up so that e.g. start_ms=50 with 20 ms frames means 3 frames, never fewer than asked.
        self._start_frames = math.ceil(start_ms / frame_ms)
        self._end_frames = math.ceil(end_ms / frame_ms)
        self._vad = webrtcvad.Vad(mode)
        self._in_speech = False
        self.last_voiced = False
        self._run = 0  # consecutive frames contradicting the current state

    @property
    def in_speech(self) -> bool:
        """True between SPEECH_START and SPEECH_END."""
        return self._in_speech

    def is_voiced(self, frame: Pcm) -> bool:
        """Classify one frame without touching the hysteresis state.

        Args:
            frame: Exactly ``frame_samples`` int16 samples.

        Raises:
            ValueError: The frame has the wrong length or is not int16.
        """
        samples = np.asarray(frame)
        if samples.dtype != np.dtype(np.int16) or samples.shape != (self.frame_samples,):
            raise ValueError(
                f"expected {self.frame_samples} int16 samples, got {samples.dtype} with shape {samples.shape}"
            )
        if dbfs(samples) < self.energy_floor_dbfs:
            return False
        # webrtcvad reads native 16-bit PCM; int16 arrays are native by the check above.
        return bool(self._vad.is_speech(samples.tobytes(), self.sample_rate))

    def process(self, frame: Pcm) -> VadEvent | None:
        """Feed the next frame.

        Args:
            frame: Exactly ``frame_samples`` int16 samples.

        Returns:
            SPEECH_START or SPEECH_END on a transition, otherwise ``None``.

        Raises:
            ValueError: The frame has the wrong length or is not int16.
        """
        voiced = self.is_voiced(frame)
        self.last_voiced = voiced
        if voiced == self._in_speech:
            self._run = 0
            return None
        self._run += 1
        if not self._in_speech and self._run >= self._start_frames:
            self._in_speech = True
            self._run = 0
            return VadEvent.SPEECH_START
        if self._in_speech and self._run >= self._end_frames:
            self._in_speech = False
            self._run = 0
            return VadEvent.SPEECH_END
        return None

    def reset(self) -> None:
        """Forget the current state and webrtcvad's noise estimate (e.g. after barge-in handling)."""
        self._vad = webrtcvad.Vad(self._mode)
        self._in_speech = False
        self._run = 0
