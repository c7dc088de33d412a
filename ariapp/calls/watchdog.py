"""The silence watchdog of an AI call: no RTP from the caller for ``timeout_s`` ends the call.

A phone that crashed, lost its network or sits behind a NAT that closed its pinhole never sends a
BYE; without this the call would hold its session, socket and recorder until the 600 s cap. The
caller's audio reaches us through Asterisk's External Media channel, which forwards frames only
when the caller's phone sends them, so the count of packets on our socket is the signal. A caller
who is merely quiet still sends RTP (silence is encoded like any audio); only phones that suppress
silence (VAD/DTX) stop, which is why the default timeout is longer than a HITL hold.

Pure: fed the packet count and a monotonic time, from the media tick (a comparison, no I/O).
"""

from __future__ import annotations


class RtpWatchdog:
    """Says when ``timeout_s`` passed without the received packet count moving.

    The clock starts at ``started_at`` (when the call was answered) with ``received`` packets so
    far: a phone that never sends anything is caught too.
    """

    def __init__(self, timeout_s: float, started_at: float, received: int = 0) -> None:
        self.timeout_s = timeout_s
        self._count = received
        self._last = started_at

    def expired(self, received: int, now: float) -> bool:
        if received != self._count:
            self._count = received
            self._last = now
            return False
        return now - self._last >= self.timeout_s

    def silent_for(self, now: float) -> float:
        """Seconds since the last packet (or since the start, before the first one)."""
        return max(0.0, now - self._last)
