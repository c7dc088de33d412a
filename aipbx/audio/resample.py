"""Sample-rate conversion with an anti-aliasing filter (libsoxr).

Telephony runs at 8 kHz, speech models at 16 kHz and TTS engines at 16-24 kHz.
Dropping or repeating samples would alias everything above the new Nyquist
frequency back into the voice band, so conversion goes through soxr's "HQ"
polyphase filter instead.

Use :func:`resample` for a whole buffer (a TTS utterance) and
:class:`StreamResampler` for 20 ms frames of a live call, where the filter state
must carry across frame boundaries to avoid a click every frame.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import soxr

__all__ = ["StreamResampler", "resample"]

Pcm = npt.NDArray[np.int16]

_QUALITY = "HQ"


def _check_pcm(pcm: Pcm) -> Pcm:
    array = np.asarray(pcm)
    if array.dtype != np.dtype(np.int16) or array.ndim != 1:
        raise TypeError(f"expected 1-D native int16 samples, got {array.dtype} with shape {array.shape}")
    return array


def _check_rates(in_rate: int, out_rate: int) -> None:
    if in_rate <= 0 or out_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {in_rate} -> {out_rate}")


def resample(pcm: Pcm, in_rate: int, out_rate: int) -> Pcm:
    """Convert a whole buffer from ``in_rate`` to ``out_rate``.

    Args:
        pcm: 1-D native int16 samples.
        in_rate: Input sample rate in Hz.
        out_rate: Output sample rate in Hz.

    Returns:
        int16 samples, about ``len(pcm) * out_rate / in_rate`` of them. A copy of
        the input when the rates are equal.

    Raises:
        TypeError: ``pcm`` is not 1-D int16.
        ValueError: A rate is not positive.
    """
    pcm = _check_pcm(pcm)
    _check_rates(in_rate, out_rate)
    if in_rate == out_rate:
        return pcm.copy()
    if len(pcm) == 0:
        return np.zeros(0, dtype=np.int16)
    return np.asarray(soxr.resample(pcm, in_rate, out_rate, quality=_QUALITY), dtype=np.int16)


class StreamResampler:
    """Resamples a continuous stream chunk by chunk.

    After a start-up delay of one or two frames, each call returns exactly
    ``len(frame) * ratio`` samples when that is an integer; the samples held by
    the filter (a few ms) are released by :meth:`flush`. Callers that need
    fixed-size frames from the start should re-frame the output.

    Args:
        in_rate: Input sample rate in Hz.
        out_rate: Output sample rate in Hz.

    Raises:
        ValueError: A rate is not positive.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        _check_rates(in_rate, out_rate)
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream: soxr.ResampleStream | None = None
        if in_rate != out_rate:
            # libsoxr's fixed-rate engine runs DFT stages that emit output in ~100 ms bursts (nothing
            # for five 20 ms frames, then everything); the variable-rate engine has the same stopband
            # but streams every chunk with a fixed delay of a frame or two, which is what a call needs.
            self._stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality=_QUALITY, vr=True)

    @property
    def ratio(self) -> float:
        """Output samples per input sample."""
        return self.out_rate / self.in_rate

    def process(self, frame: Pcm) -> Pcm:
        """Resample the next chunk of the stream.

        Args:
            frame: 1-D native int16 samples following the previous chunk.

        Returns:
            The int16 output available so far (may be shorter than expected at
            the start of the stream).

        Raises:
            TypeError: ``frame`` is not 1-D int16.
        """
        frame = _check_pcm(frame)
        if self._stream is None:
            return frame.copy()
        out: Pcm = self._stream.resample_chunk(frame, last=False)
        return out

    def flush(self) -> Pcm:
        """End the stream and return the samples still held by the filter.

        The resampler is reset afterwards and can start a new, unrelated stream.

        Returns:
            The remaining int16 samples (empty when rates are equal).
        """
        if self._stream is None:
            return np.zeros(0, dtype=np.int16)
        tail: Pcm = self._stream.resample_chunk(np.zeros(0, dtype=np.int16), last=True)
        self._stream.clear()
        return tail
