"""A fixed-depth jitter buffer for inbound RTP audio.

Theory of operation: the socket reader calls :meth:`JitterBuffer.push` for every
decoded packet as it arrives; the consumer calls :meth:`JitterBuffer.pop` once per
frame tick (20 ms). Packets are keyed by an *extended* sequence number (the
16-bit RTP sequence unwrapped into an unbounded int) so that 65535 -> 0 is just
another step.

* **Buffering.** At start, and after an underrun, ``pop`` returns nothing until
  ``depth_ms`` of audio is queued; playout then resumes from the oldest queued
  frame, so the gap that caused the underrun is skipped, not replayed.
* **Playing.** Each ``pop`` plays the next sequence number. If it is missing but
  later frames are queued, the slot is concealed: the last real frame repeated
  at -6 dB, then at -12 dB, then silence. If nothing at all is queued, the buffer
  has run dry: UNDERRUN, and back to buffering.
* **Late and duplicate packets.** A packet for a slot that was already played,
  concealed or skipped is *late* and dropped; a packet already queued is a
  *duplicate* and dropped.
* **Latency bound.** If the span from the play head to the newest packet grows
  beyond ``max_depth_ms`` (a burst after a network stall), the oldest frames are
  dropped so that delay stays bounded.
* **New source.** An SSRC change (Asterisk re-INVITE, masquerade), or two
  consecutive packets far behind the play head (a sequence restart, RFC 3550
  A.1), mean a new sequence space: the queue is cleared and the buffer re-buffers.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aipbx.audio.rtp import RtpPacket, seq_delta

__all__ = ["FrameStatus", "JitterBuffer", "JitterStats"]

Pcm = npt.NDArray[np.int16]

# RFC 3550 A.1 MAX_MISORDER: a packet this far behind the play head is not mere reordering.
_MAX_MISORDER = 100
# Repeating one frame more than twice (40 ms) starts to sound robotic; silence is less jarring.
_MAX_REPEATS = 2


class FrameStatus(enum.Enum):
    """What :meth:`JitterBuffer.pop` returned for this tick."""

    OK = "ok"
    CONCEALED = "concealed"
    UNDERRUN = "underrun"
    BUFFERING = "buffering"


@dataclass(slots=True)
class JitterStats:
    """Counters since the buffer was created.

    Attributes:
        received: Packets pushed, including ones later dropped.
        played: Real frames returned with status OK.
        concealed: Ticks filled by concealment (repeat or silence).
        late: Packets whose slot had already been played, concealed or skipped.
        duplicates: Packets whose sequence number was already queued.
        dropped_overflow: Queued frames dropped to bound latency.
        underruns: Times the buffer ran dry during playout.
        invalid: Packets dropped because their frame size differed from the first one.
        resyncs: Times the sequence space was reset: a new SSRC, or the same SSRC
            restarting its sequence numbers far behind the play head.
    """

    received: int = 0
    played: int = 0
    concealed: int = 0
    late: int = 0
    duplicates: int = 0
    dropped_overflow: int = 0
    underruns: int = 0
    invalid: int = 0
    resyncs: int = 0


class JitterBuffer:
    """Reorders, de-duplicates and paces decoded RTP frames.

    Args:
        depth_ms: Audio to accumulate before playout starts or resumes.
        frame_ms: Duration of one frame (the RTP ptime).
        max_depth_ms: Largest span from play head to newest packet before the
            oldest frames are dropped.

    Raises:
        ValueError: On a non-positive frame size or ``depth_ms > max_depth_ms``.
    """

    def __init__(self, depth_ms: int = 40, frame_ms: int = 20, max_depth_ms: int = 60) -> None:
        if frame_ms <= 0:
            raise ValueError("frame_ms must be positive")
        if depth_ms < 0 or max_depth_ms < depth_ms:
            raise ValueError("need 0 <= depth_ms <= max_depth_ms")
        self.frame_ms = frame_ms
        self.depth_frames = max(1, math.ceil(depth_ms / frame_ms))
        self.max_frames = max(self.depth_frames, max_depth_ms // frame_ms)
        self.stats = JitterStats()
        self.frame_samples: int | None = None
        self._frames: dict[int, Pcm] = {}
        self._ssrc: int | None = None
        self._highest: int | None = None  # extended seq of the newest packet seen
        self._played: int | None = None  # extended seq of the last slot consumed
        self._playing = False
        self._last_frame: Pcm | None = None
        self._repeats = 0
        self._restart_candidate: int | None = None

    @property
    def buffered_ms(self) -> int:
        """Audio currently queued, in milliseconds (missing slots not counted)."""
        return len(self._frames) * self.frame_ms

    @property
    def playing(self) -> bool:
        """True once playout has started and until the next underrun."""
        return self._playing

    def push(self, packet: RtpPacket, pcm: Pcm) -> None:
        """Queue one decoded packet.

        Args:
            packet: The parsed RTP packet; only ``sequence`` and ``ssrc`` are used.
            pcm: Its decoded samples. The first frame fixes the frame size; later
                frames of another size are counted as ``invalid`` and dropped.
        """
        self.stats.received += 1
        pcm = np.asarray(pcm, dtype=np.int16)
        if self.frame_samples is None:
            self.frame_samples = len(pcm)
        elif len(pcm) != self.frame_samples:
            self.stats.invalid += 1
            return
        if self._ssrc is not None and packet.ssrc != self._ssrc:
            self._resync()
        self._ssrc = packet.ssrc

        ext = self._extend(packet.sequence)
        if self._played is not None and ext <= self._played:
            if self._is_restart(packet.sequence, ext):
                self._resync()
                ext = self._extend(packet.sequence)
            else:
                self.stats.late += 1
                return
        self._restart_candidate = None
        if ext in self._frames:
            self.stats.duplicates += 1
            return
        self._frames[ext] = pcm
        if self._highest is None or ext > self._highest:
            self._highest = ext
        self._bound_latency()

    def pop(self) -> tuple[Pcm | None, FrameStatus]:
        """Take the frame for this tick.

        Returns:
            ``(frame, status)``: a real frame with OK; a concealment frame with
            CONCEALED; ``None`` with BUFFERING while (re)filling; ``None`` with
            UNDERRUN on the tick the buffer ran dry. The caller plays silence for
            ``None``.
        """
        if not self._playing:
            if len(self._frames) < self.depth_frames:
                return None, FrameStatus.BUFFERING
            self._playing = True
            self._played = min(self._frames) - 1
            self._repeats = 0

        if not self._frames:
            self._playing = False
            self.stats.underruns += 1
            return None, FrameStatus.UNDERRUN

        assert self._played is not None
        slot = self._played + 1
        self._played = slot
        frame = self._frames.pop(slot, None)
        if frame is not None:
            self._last_frame = frame
            self._repeats = 0
            self.stats.played += 1
            return frame, FrameStatus.OK

        self.stats.concealed += 1
        return self._conceal(), FrameStatus.CONCEALED

    def _conceal(self) -> Pcm:
        assert self.frame_samples is not None
        if self._last_frame is None or self._repeats >= _MAX_REPEATS:
            return np.zeros(self.frame_samples, dtype=np.int16)
        self._repeats += 1
        # Each repeat halves the previous one (-6 dB, then -12 dB) so a held vowel fades out.
        return (self._last_frame >> self._repeats).astype(np.int16)

    def _extend(self, sequence: int) -> int:
        reference = self._highest if self._highest is not None else self._played
        if reference is None:
            return sequence
        return reference + seq_delta(reference & 0xFFFF, sequence)

    def _bound_latency(self) -> None:
        assert self._highest is not None
        floor = self._highest - self.max_frames + 1
        head = self._played + 1 if self._played is not None else min(self._frames)
        if head >= floor:
            return
        for ext in [ext for ext in self._frames if ext < floor]:
            del self._frames[ext]
            self.stats.dropped_overflow += 1
        # Everything below the floor now counts as consumed, so stragglers for it are late.
        self._played = floor - 1

    def _is_restart(self, sequence: int, ext: int) -> bool:
        # RFC 3550 A.1: a packet far behind the play head is either very late or the sender
        # restarted its sequence numbers; two such packets in sequence mean a restart.
        assert self._played is not None
        if self._played - ext < _MAX_MISORDER:
            return False
        if self._restart_candidate == sequence:
            return True
        self._restart_candidate = (sequence + 1) & 0xFFFF
        return False

    def _resync(self) -> None:
        self.stats.resyncs += 1
        self._restart_candidate = None
        self._frames.clear()
        self._highest = None
        self._played = None
        self._playing = False
        self._repeats = 0
