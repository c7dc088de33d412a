"""Admission control: while this node answers callers slower than its target, new AI calls hear the
busy message instead of joining a queue.

Speech recognition on a 2-core node is the scarce resource (issue 19: 20 callers asking 0.5 s apart
wait 4.5 s for an answer, 30 callers 7.7 s, some never). Past that point one more AI call makes every
caller's wait longer, so the node says so at the door: the caller hears "I can't take another call
right now" (``limits.BUSY_MESSAGE``, SIP 486), the CDR says ``limit_capacity``, the console gets a
``call.rejected`` event and ``aipbx_ai_calls_rejected_total{limit="capacity"}`` counts it.

The signal is what callers experience: the latency of the answers given in the last ``window_s``
(end of the caller's speech -> first reply audio, as measured for every turn). Overloaded when at
least ``min_samples`` answers in the window were slower than ``target_s`` at the median. Answers
age out of the window, so a node that went quiet admits calls again without anyone resetting it.
Calls already in progress are never affected.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Admission:
    """``target_s``: the answer latency (median over the window) above which new AI calls are refused;
    0 turns admission control off."""

    target_s: float = 3.0
    window_s: float = 20.0
    min_samples: int = 3
    clock: Callable[[], float] = time.monotonic
    _answers: deque[tuple[float, float]] = field(default_factory=deque)  # (when, latency_s)

    def observe(self, latency_s: float) -> None:
        """One answer's latency (the caller's end of speech -> our first reply frame)."""
        now = self.clock()
        self._answers.append((now, latency_s))
        self._expire(now)

    def _expire(self, now: float) -> None:
        while self._answers and now - self._answers[0][0] > self.window_s:
            self._answers.popleft()

    def recent(self) -> list[float]:
        self._expire(self.clock())
        return [latency for _, latency in self._answers]

    def median_s(self) -> float | None:
        """The median answer latency over the window (None: too few answers to say)."""
        recent = sorted(self.recent())
        if len(recent) < self.min_samples:
            return None
        middle = len(recent) // 2
        return recent[middle] if len(recent) % 2 else (recent[middle - 1] + recent[middle]) / 2

    def overloaded(self) -> bool:
        if self.target_s <= 0:
            return False
        median = self.median_s()
        return median is not None and median > self.target_s
