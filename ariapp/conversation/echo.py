"""Telling the caller's voice from our own voice coming back (echo), so echo never barges in.

Phones and line hybrids send back a delayed, attenuated copy of what they play. We know exactly what
we sent, so at a speech onset we correlate the caller's last 200 ms with our outbound audio over
the plausible echo delays (0-500 ms). A high normalised correlation means the "speech" is our own
voice; real caller speech does not correlate with it, and double talk (caller over echo) lowers the
correlation enough to count as the caller. The check runs only at onsets, with FFTs, so it costs
nothing on the 20 ms clock. Measured on synthetic speech through G.711: an echo scores 0.98-1.0,
unrelated caller speech at most ~0.55, double talk mostly below 0.75 (the threshold); an onset judged
echo is re-checked while the speech lasts, so a caller talking over our echo still barges in.
"""

from __future__ import annotations

import numpy as np


class EchoGuard:
    def __init__(
        self,
        sample_rate: int = 8000,
        window_ms: int = 200,
        max_delay_ms: int = 500,
        threshold: float = 0.75,
        silence_dbfs: float = -50.0,
        talk_dbfs: float = -45.0,
    ) -> None:
        self.rate = sample_rate
        self.window = sample_rate * window_ms // 1000
        self.max_delay = sample_rate * max_delay_ms // 1000
        self.threshold = threshold
        self._floor = 32768.0 * 10 ** (silence_dbfs / 20)
        self._talk = 32768.0 * 10 ** (talk_dbfs / 20)
        # Ring buffers of int16, written in place every tick (this runs on the media clock for every
        # call); they are unrolled into float arrays only when an onset is judged.
        self._in = _Ring(self.window)
        self._out = _Ring(self.window + self.max_delay)
        self.last_score = 0.0

    def feed(self, inbound: np.ndarray | None, outbound: np.ndarray | None, frame: int) -> None:
        """Once per tick: the caller's frame and ours (``None`` = silence), ``frame`` samples each."""
        self._in.write(inbound, frame)
        self._out.write(outbound, frame)

    def recently_spoke(self) -> bool:
        """Whether we sent anything audible within the echo window."""
        return _rms(self._out.ordered()) > self._floor

    def caller_over_echo(self) -> bool:
        """While an onset judged echo lasts: is the caller now really talking (loud and not ours)?

        A quiet window is never the caller: the end of an echo is quiet and decorrelates, and must
        not be mistaken for speech.
        """
        return _rms(self._in.ordered()) > self._talk and not self.is_echo()

    def is_echo(self) -> bool:
        """True when the caller's last ``window`` looks like a delayed copy of our own audio."""
        reference = self._out.ordered()
        if _rms(reference) <= self._floor:
            self.last_score = 0.0
            return False
        self.last_score = max_normalised_correlation(self._in.ordered(), reference)
        return self.last_score >= self.threshold


class _Ring:
    def __init__(self, size: int) -> None:
        self.data = np.zeros(size, dtype=np.int16)
        self.pos = 0

    def write(self, frame: np.ndarray | None, size: int) -> None:
        end = self.pos + size
        if end <= len(self.data):
            self.data[self.pos : end] = 0 if frame is None else frame
        else:  # sizes that do not divide the ring: wrap
            values = np.zeros(size, np.int16) if frame is None else frame
            first = len(self.data) - self.pos
            self.data[self.pos :] = values[:first]
            self.data[: size - first] = values[first:]
        self.pos = end % len(self.data)

    def ordered(self) -> np.ndarray:
        """Oldest to newest, as float64."""
        return np.concatenate([self.data[self.pos :], self.data[: self.pos]]).astype(np.float64)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))


def max_normalised_correlation(x: np.ndarray, reference: np.ndarray) -> float:
    """Max over lags of corr(x, reference[lag : lag+len(x)]) normalised to [-1, 1] (via FFT)."""
    n, m = len(x), len(reference)
    if n == 0 or m < n:
        return 0.0
    x = x - x.mean()
    x_norm = float(np.sqrt(np.dot(x, x)))
    if x_norm == 0.0:
        return 0.0
    size = 1 << (n + m - 1).bit_length()
    cross = np.fft.irfft(np.fft.rfft(reference, size) * np.conj(np.fft.rfft(x, size)), size)[: m - n + 1]
    # Energy of each reference segment, by cumulative sums (mean removed per segment approximately
    # by the global mean: echo segments are speech, whose mean is ~0 anyway).
    ref = reference - reference.mean()
    cumulative = np.concatenate([[0.0], np.cumsum(ref**2)])
    seg_energy = cumulative[n:] - cumulative[:-n]
    denom = np.sqrt(np.maximum(seg_energy, 1e-9)) * x_norm
    return float(np.max(np.abs(cross) / denom))
