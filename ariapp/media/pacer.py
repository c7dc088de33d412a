"""Outbound RTP pacing: one packet per frame on a monotonic clock.

Two pure pieces; the async loop that drives them against real time (and owns the
sockets) is :class:`ariapp.calls.media.MediaClock`.

* :class:`PacerClock` decides *when* the next frame is due. Deadlines are
  ``anchor + n * frame``, never "previous send + frame", so scheduling jitter does
  not accumulate into drift. A loop that wakes a little late catches up by
  sending the missed frames back to back, but never more than
  ``max_catchup_frames`` of them; after a longer stall (GC pause, blocked loop)
  the clock re-anchors at the present instead of bursting, because a burst of
  stale audio only overflows the far end's jitter buffer.
* :class:`RtpStreamState` decides *what* header the next packet gets: the
  sequence number advances per packet sent, the timestamp by samples per frame,
  never by wall time (RFC 3550 5.1). :meth:`RtpStreamState.skip` advances the
  timestamp over frames that are deliberately not sent.
"""

from __future__ import annotations

import random

from aipbx.audio.rtp import RtpPacket

__all__ = ["PacerClock", "RtpStreamState"]


class PacerClock:
    """Frame deadlines on a monotonic clock with bounded catch-up.

    Args:
        frame_ms: Frame period in milliseconds.
        max_catchup_frames: How many overdue frames may be sent back to back
            after a late wake-up before the clock re-anchors instead.

    Attributes:
        resyncs: Times the clock re-anchored after a stall.
    """

    def __init__(self, frame_ms: int = 20, max_catchup_frames: int = 2) -> None:
        if frame_ms <= 0:
            raise ValueError("frame_ms must be positive")
        if max_catchup_frames < 0:
            raise ValueError("max_catchup_frames must be >= 0")
        self.period = frame_ms / 1000
        self.max_catchup_frames = max_catchup_frames
        self.resyncs = 0
        self._anchor: float | None = None
        self._frames = 0

    def start(self, now: float) -> None:
        """Anchor the schedule: the first frame is due at ``now``."""
        self._anchor = now
        self._frames = 0

    def next_deadline(self) -> float:
        """Monotonic time at which the next frame is due.

        Raises:
            RuntimeError: :meth:`start` was not called.
        """
        if self._anchor is None:
            raise RuntimeError("PacerClock.start() was not called")
        return self._anchor + self._frames * self.period

    def on_sent(self, now: float) -> None:
        """Record that the due frame was served (sent or deliberately skipped) at ``now``."""
        lateness = now - self.next_deadline()
        if lateness > self.max_catchup_frames * self.period:
            # Too far behind to catch up without a burst: the frame just served starts a new schedule.
            self.resyncs += 1
            self._anchor = now
            self._frames = 1
        else:
            self._frames += 1


class RtpStreamState:
    """Sequence number and timestamp of one outbound RTP stream.

    Args:
        ssrc: Synchronisation source of the stream.
        payload_type: RTP payload type (0 = PCMU, 8 = PCMA).
        samples_per_frame: Timestamp increment per frame (160 for 20 ms at 8 kHz).
        sequence: First sequence number; random when ``None`` (RFC 3550 5.1).
        timestamp: First timestamp; random when ``None``.
    """

    def __init__(
        self,
        ssrc: int,
        payload_type: int,
        samples_per_frame: int,
        sequence: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        if samples_per_frame <= 0:
            raise ValueError("samples_per_frame must be positive")
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.samples_per_frame = samples_per_frame
        self.sequence = random.getrandbits(16) if sequence is None else sequence & 0xFFFF
        self.timestamp = random.getrandbits(32) if timestamp is None else timestamp & 0xFFFFFFFF
        self.packets = 0

    def next_packet(self, payload: bytes, marker: bool = False) -> RtpPacket:
        """Build the packet for the current frame and advance to the next one.

        Args:
            payload: Encoded audio of exactly one frame (silence frames included).
            marker: Set on the first packet of a talkspurt.

        Returns:
            The packet carrying the current sequence number and timestamp.
        """
        packet = RtpPacket(
            payload_type=self.payload_type,
            sequence=self.sequence,
            timestamp=self.timestamp,
            ssrc=self.ssrc,
            payload=payload,
            marker=marker,
        )
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + self.samples_per_frame) & 0xFFFFFFFF
        self.packets += 1
        return packet

    def skip(self, frames: int) -> None:
        """Advance the timestamp over ``frames`` frames that are not sent.

        The sequence number does not move: the receiver must not see a loss.
        """
        if frames < 0:
            raise ValueError("frames must be >= 0")
        self.timestamp = (self.timestamp + frames * self.samples_per_frame) & 0xFFFFFFFF
