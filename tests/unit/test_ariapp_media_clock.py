"""Tests for ariapp.calls.media.MediaClock, the process's one 20 ms loop, run on virtual time.

The real loop runs; only its monotonic clock and its two sleeps are virtual, so timing assertions
are exact and a stall of the event loop can be simulated by oversleeping.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from ariapp.calls.media import SPIN_S, MediaClock

FRAME = 0.02
START = 1000.0


def at(seconds: float) -> object:
    """A virtual instant, to the microsecond (pytest.approx's default is a millisecond around 1000 s)."""
    return pytest.approx(seconds, abs=1e-6)


class Stop(Exception):
    """Raised by the virtual loop sleep once the test has seen enough ticks."""


class VirtualTime:
    """A monotonic clock and the two sleeps MediaClock uses, advancing it instead of waiting."""

    def __init__(self) -> None:
        self.now = START
        self.oversleep: dict[int, float] = {}  # loop sleep call index -> extra seconds (a stall)
        self.sleeps = 0
        self.stopping = False

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if self.stopping:
            raise Stop
        assert seconds >= 0
        self.now += seconds + self.oversleep.get(self.sleeps, 0.0)
        self.sleeps += 1

    def precise_sleep(self, seconds: float) -> None:
        # The blocking part of each wait must stay within the spin budget.
        assert 0 < seconds <= SPIN_S + 1e-9
        self.now += seconds

    def media_clock(self) -> MediaClock:
        return MediaClock(monotonic=self.monotonic, sleep=self.sleep, precise_sleep=self.precise_sleep)


def run(clock: MediaClock, time: VirtualTime) -> None:
    """Run the clock until ``time.stopping`` is set and the loop next sleeps."""
    try:
        asyncio.run(clock.run())
    except Stop:
        pass


def send_times(time: VirtualTime, ticks: int) -> tuple[MediaClock, list[float]]:
    """Run one call's send tick until it fired ``ticks`` times; return the clock and its tick times."""
    clock = time.media_clock()
    sent: list[float] = []

    def send() -> None:
        sent.append(time.now)
        if len(sent) == ticks:
            time.stopping = True

    clock.add("call", send)
    run(clock, time)
    return clock, sent[:ticks]


def test_one_tick_per_frame_on_the_grid() -> None:
    time = VirtualTime()

    clock, sent = send_times(time, ticks=500)

    assert sent == [at(START + n * FRAME) for n in range(500)]
    assert clock.late_ticks == 0
    assert list(clock.tick_times)[:500] == sent


@pytest.mark.parametrize("stall", [0.1, 0.3, 2.0])
def test_no_burst_after_a_stall(stall: float) -> None:
    # given the event loop blocked for `stall` seconds while waiting for tick 50
    time = VirtualTime()
    time.oversleep = {49: stall}

    clock, sent = send_times(time, ticks=200)

    # then no instant carries more than the late frame plus two catch-up frames
    per_instant = Counter(round(t, 9) for t in sent)
    assert max(per_instant.values()) <= 1 + 2
    assert sent[50] == at(START + 50 * FRAME - SPIN_S + stall)  # the loop sleep ends SPIN_S early
    assert clock.late_ticks == 1
    # and the 20 ms rhythm resumes from the late tick
    after = sent[50:]
    assert all(b - a == pytest.approx(FRAME) for a, b in zip(after, after[1:], strict=False))


def test_small_lateness_is_caught_up_without_losing_the_grid() -> None:
    # given the wait for tick 20 ending 30 ms late (1.5 frames, inside the catch-up bound)
    time = VirtualTime()
    time.oversleep = {19: 0.030}

    clock, sent = send_times(time, ticks=100)

    # then tick 21 follows straight away and later ticks are back on the original grid
    assert sent[20] == sent[21] == at(START + 20 * FRAME - SPIN_S + 0.030)
    assert sent[22:] == [at(START + n * FRAME) for n in range(22, 100)]
    assert clock.late_ticks == 2


def test_runs_are_deterministic() -> None:
    first_time, second_time = VirtualTime(), VirtualTime()
    first_time.oversleep = second_time.oversleep = {7: 0.013, 30: 0.5}

    _, first = send_times(first_time, ticks=100)
    _, second = send_times(second_time, ticks=100)

    assert first == second


def test_every_call_sends_before_any_call_processes() -> None:
    # given two calls on one clock
    time = VirtualTime()
    clock = time.media_clock()
    order: list[str] = []

    def tick(name: str) -> None:
        order.append(name)
        if len(order) == 8:
            time.stopping = True

    clock.add("a", lambda: tick("send a"), lambda: tick("process a"))
    clock.add("b", lambda: tick("send b"), lambda: tick("process b"))

    # when two ticks run
    run(clock, time)

    # then within each tick both sends come first
    assert order == ["send a", "send b", "process a", "process b"] * 2


def test_a_failing_call_is_dropped_and_the_others_keep_their_rhythm() -> None:
    # given a call whose processing raises on its third tick, next to a healthy call
    time = VirtualTime()
    clock = time.media_clock()
    healthy: list[float] = []
    broken_ticks = 0

    def healthy_send() -> None:
        healthy.append(time.now)
        if len(healthy) == 10:
            time.stopping = True

    def broken_process() -> None:
        nonlocal broken_ticks
        broken_ticks += 1
        if broken_ticks == 3:
            raise RuntimeError("broken call")

    clock.add("healthy", healthy_send)
    clock.add("broken", lambda: None, broken_process)

    # when
    run(clock, time)

    # then the broken call left the clock and the healthy one never missed a frame
    assert broken_ticks == 3
    assert len(clock) == 1
    assert healthy == [at(START + n * FRAME) for n in range(10)]
