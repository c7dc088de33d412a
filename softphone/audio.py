"""Pure audio helpers for the softphone: playout queue, echo line, timelines, tones, DTMF.

No sockets and no clocks here; :mod:`softphone.media` drives these from its 20 ms loop.
Audio is mono int16 at 8 kHz (G.711's rate) unless a function says otherwise.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

RATE = 8000
FRAME = 160  # samples per 20 ms frame at 8 kHz
Pcm = npt.NDArray[np.int16]

DTMF_EVENTS = "0123456789*#ABCD"


def as_int16(pcm: npt.ArrayLike) -> Pcm:
    """Mono int16 from int16 or float ([-1, 1]) input; stereo is averaged."""
    arr = np.asarray(pcm)
    if arr.ndim == 2:
        arr = arr.mean(axis=1) if arr.shape[1] <= 8 else arr.mean(axis=0)
    if arr.dtype == np.int16:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        return (np.clip(arr, -1.0, 1.0) * 32767.0).astype(np.int16)
    return np.clip(arr, -32768, 32767).astype(np.int16)


def resample(pcm: npt.ArrayLike, rate_in: int, rate_out: int = RATE) -> Pcm:
    """Resample mono audio with soxr (HQ) to int16 at ``rate_out``."""
    samples = as_int16(pcm)
    if rate_in == rate_out or samples.size == 0:
        return samples
    from aipbx.audio.resample import resample as hq_resample  # the media plane's anti-aliasing resampler

    return hq_resample(samples, rate_in, rate_out)


def tone(freq: float, seconds: float, amplitude_dbfs: float = -12.0, rate: int = RATE) -> Pcm:
    """A sine tone with 5 ms raised-cosine edges (no clicks)."""
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    amp = 32767.0 * 10 ** (amplitude_dbfs / 20.0)
    wave = amp * np.sin(2 * np.pi * freq * t)
    ramp = min(n // 2, int(0.005 * rate))
    if ramp:
        edge = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ramp))
        wave[:ramp] *= edge
        wave[n - ramp :] *= edge[::-1]
    return wave.astype(np.int16)


def mix(a: Pcm, b: Pcm, gain: float = 1.0) -> Pcm:
    """``a + gain*b`` with saturation."""
    out = a.astype(np.int32) + (b.astype(np.float32) * gain).astype(np.int32)
    return np.clip(out, -32768, 32767).astype(np.int16)


class PlayoutQueue:
    """Audio waiting to be sent, consumed one frame at a time.

    ``queued_total``/``played_total`` count samples ever queued/sent so a waiter can ask
    "has everything I queued so far been played?".
    """

    def __init__(self) -> None:
        self._chunks: list[Pcm] = []
        self._offset = 0
        self.queued_total = 0
        self.played_total = 0

    def push(self, pcm: Pcm) -> int:
        """Queue samples; return the ``played_total`` value at which they are all sent."""
        if pcm.size:
            self._chunks.append(pcm)
            self.queued_total += int(pcm.size)
        return self.queued_total

    @property
    def pending(self) -> int:
        return self.queued_total - self.played_total

    def take(self, n: int = FRAME) -> Pcm | None:
        """Next ``n`` samples (zero-padded at the end of the queue), or None when idle."""
        if not self._chunks:
            return None
        out = np.zeros(n, dtype=np.int16)
        filled = 0
        while filled < n and self._chunks:
            chunk = self._chunks[0]
            k = min(n - filled, chunk.size - self._offset)
            out[filled : filled + k] = chunk[self._offset : self._offset + k]
            filled += k
            self._offset += k
            if self._offset >= chunk.size:
                self._chunks.pop(0)
                self._offset = 0
        self.played_total += filled
        return out

    def clear(self) -> None:
        """Drop everything pending (barge-in); waiters count it as played."""
        self._chunks.clear()
        self._offset = 0
        self.played_total = self.queued_total


class EchoLine:
    """A delay line: what goes in comes out ``delay`` samples later, scaled by ``gain``.

    The line is primed with ``delay`` samples of silence. If the input runs ahead of the
    output (clock skew, a burst) by more than ``slack`` samples, the oldest excess is dropped
    so the delay stays bounded.
    """

    def __init__(self, delay: int, gain: float, slack: int = 4 * FRAME) -> None:
        self.delay = delay
        self.gain = gain
        self._slack = slack
        self._buf = np.zeros(delay, dtype=np.int16)

    def push(self, pcm: Pcm) -> None:
        self._buf = np.concatenate([self._buf, pcm])
        excess = self._buf.size - (self.delay + self._slack)
        if excess > 0:
            self._buf = self._buf[excess:]

    def pull(self, n: int = FRAME) -> Pcm:
        out = np.zeros(n, dtype=np.int16)
        k = min(n, self._buf.size)
        out[:k] = self._buf[:k]
        self._buf = self._buf[k:]
        return out


@dataclass(frozen=True)
class TimedFrame:
    """Samples seen at ``time`` (monotonic seconds) with RTP ``timestamp`` and ``ssrc``."""

    time: float
    timestamp: int
    ssrc: int
    samples: Pcm


def place_on_timeline(frames: Iterable[TimedFrame], origin: float, rate: int = RATE) -> Pcm:
    """Lay frames out on one track starting at ``origin``; gaps are zeros.

    Frames are grouped into runs (same SSRC, RTP timestamps that agree with arrival times
    to within 100 ms). Inside a run, positions come from the RTP timestamps, so network
    jitter does not smear the audio; each run is anchored at its least-delayed frame, so
    silence between talkspurts keeps its real length. Frames before ``origin`` are dropped.
    """
    runs: list[list[tuple[int, int, Pcm]]] = []  # (arrival_pos, ts_offset, samples)
    prev: TimedFrame | None = None
    for f in frames:
        pos = int(round((f.time - origin) * rate))
        if prev is not None and f.ssrc == prev.ssrc:
            ts_gap = ((f.timestamp - prev.timestamp + 2**31) % 2**32) - 2**31
            time_gap = (f.time - prev.time) * rate
            if abs(ts_gap - time_gap) <= 0.1 * rate and ts_gap >= 0:
                runs[-1].append((pos, runs[-1][-1][1] + ts_gap, f.samples))
                prev = f
                continue
        runs.append([(pos, 0, f.samples)])
        prev = f
    placed: list[tuple[int, Pcm]] = []
    for run in runs:
        anchor = min(p - off for p, off, _ in run)
        placed += [(anchor + off, s) for _, off, s in run]
    end = max((p + s.size for p, s in placed), default=0)
    out = np.zeros(max(end, 0), dtype=np.int16)
    for p, s in placed:
        if p + s.size <= 0:
            continue
        lo = max(p, 0)
        out[lo : p + s.size] = s[lo - p :]
    return out


def dtmf_payload(digit: str, end: bool, duration: int, volume: int = 10) -> bytes:
    """RFC 4733 telephone-event payload: event, E bit, volume, duration (in samples)."""
    event = DTMF_EVENTS.index(digit.upper())
    return struct.pack("!BBH", event, (0x80 if end else 0) | (volume & 0x3F), min(duration, 0xFFFF))


def parse_dtmf_payload(payload: bytes) -> tuple[str, bool, int] | None:
    """``(digit, end, duration)`` from a telephone-event payload, None if not a DTMF digit."""
    if len(payload) < 4:
        return None
    event, flags, duration = struct.unpack("!BBH", payload[:4])
    if event >= len(DTMF_EVENTS):
        return None
    return DTMF_EVENTS[event], bool(flags & 0x80), duration
