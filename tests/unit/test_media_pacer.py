"""Tests for ariapp.media.pacer on a virtual clock."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from ariapp.media.pacer import Pacer, PacerClock, RtpStreamState
from ariapp.media.rtp import parse_rtp

FRAME = 0.02


class VirtualTime:
    """A clock and a sleep that advances it, with optional oversleeping to simulate stalls."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.oversleep: dict[int, float] = {}  # sleep call index -> extra seconds
        self.sleeps = 0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds + self.oversleep.get(self.sleeps, 0.0)
        self.sleeps += 1


def run_pacer(
    time: VirtualTime, ticks: int, frames: list[bytes | None] | None = None, max_catchup_frames: int = 2
) -> tuple[Pacer, list[tuple[float, bytes]]]:
    """Run a pacer until ``ticks`` source calls were made; return it and the (time, datagram) log."""
    sent: list[tuple[float, bytes]] = []
    calls = 0
    pacer: Pacer

    def source() -> bytes | None:
        nonlocal calls
        frame = frames[calls] if frames is not None else calls.to_bytes(4, "big")
        calls += 1
        if calls == ticks:
            pacer.stop()
        return frame

    pacer = Pacer(
        send=lambda datagram: sent.append((time.now, datagram)),
        source=source,
        clock=time.clock,
        sleep=time.sleep,
        max_catchup_frames=max_catchup_frames,
    )
    asyncio.run(pacer.run())
    return pacer, sent


def test_clock_deadlines_are_anchored_not_accumulated() -> None:
    clock = PacerClock(frame_ms=20)
    clock.start(5.0)

    for n in range(100_000):
        assert clock.next_deadline() == 5.0 + n * FRAME
        # a loop that always wakes 7 ms late still stays on the original grid
        clock.on_sent(clock.next_deadline() + 0.007)

    assert clock.resyncs == 0


def test_clock_catches_up_a_small_delay_within_the_bound() -> None:
    clock = PacerClock(frame_ms=20, max_catchup_frames=2)
    clock.start(0.0)

    # when the first frame goes out 40 ms late (exactly two frames)
    clock.on_sent(0.040)

    # then the two overdue frames are still due now, and the grid is kept
    assert clock.next_deadline() == pytest.approx(0.020)
    clock.on_sent(0.040)
    assert clock.next_deadline() == pytest.approx(0.040)
    clock.on_sent(0.040)
    assert clock.next_deadline() == pytest.approx(0.060)
    assert clock.resyncs == 0


def test_clock_reanchors_after_a_stall() -> None:
    clock = PacerClock(frame_ms=20, max_catchup_frames=2)
    clock.start(0.0)
    clock.on_sent(0.0)

    # the second frame (due at 20 ms) goes out at 300 ms
    clock.on_sent(0.300)

    assert clock.resyncs == 1
    assert clock.next_deadline() == pytest.approx(0.320)


def test_clock_requires_start() -> None:
    with pytest.raises(RuntimeError):
        PacerClock().next_deadline()


def test_one_send_per_frame_on_the_grid() -> None:
    time = VirtualTime()

    pacer, sent = run_pacer(time, ticks=500)

    assert len(sent) == pacer.sent == pacer.ticks == 500
    assert [t for t, _ in sent] == [pytest.approx(1000.0 + n * FRAME) for n in range(500)]
    assert all(interval == pytest.approx(FRAME) for interval in pacer.intervals)
    assert [int.from_bytes(d, "big") for _, d in sent] == list(range(500))


@pytest.mark.parametrize("stall", [0.1, 0.3, 2.0])
def test_no_burst_after_a_stall(stall: float) -> None:
    # given the event loop blocked for `stall` seconds during the 50th sleep
    time = VirtualTime()
    time.oversleep = {50: stall}

    pacer, sent = run_pacer(time, ticks=200, max_catchup_frames=2)

    # then no instant carries more than the late frame plus max_catchup frames
    per_instant = Counter(round(t, 9) for t, _ in sent)
    assert max(per_instant.values()) <= 1 + 2
    assert pacer.resyncs == 1
    # and after the stall the 20 ms rhythm resumes
    after = [t for t, _ in sent if t > 1000.0 + 50 * FRAME + stall]
    assert all(b - a == pytest.approx(FRAME) for a, b in zip(after, after[1:], strict=False))


def test_small_lateness_is_caught_up_without_losing_the_grid() -> None:
    # given one wake-up 30 ms late (1.5 frames, inside the catch-up bound)
    time = VirtualTime()
    time.oversleep = {20: 0.030}

    pacer, sent = run_pacer(time, ticks=100)

    # then one overdue frame is sent straight away and later frames are back on the original grid
    times = [t for t, _ in sent]
    assert times[20] == times[21] == pytest.approx(1000.0 + 20 * FRAME + 0.030)
    assert times[22:] == [pytest.approx(1000.0 + n * FRAME) for n in range(22, 100)]
    assert pacer.resyncs == 0


def test_silence_ticks_send_nothing_but_keep_the_schedule() -> None:
    time = VirtualTime()
    frames: list[bytes | None] = [b"a", None, None, b"b", None, b"c"]

    pacer, sent = run_pacer(time, ticks=len(frames), frames=frames)

    assert sent == [
        (pytest.approx(1000.0), b"a"),
        (pytest.approx(1000.06), b"b"),
        (pytest.approx(1000.1), b"c"),
    ]
    assert pacer.ticks == 6 and pacer.sent == 3


def test_send_errors_are_counted_and_pacing_continues() -> None:
    time = VirtualTime()
    attempts = 0
    pacer: Pacer

    def send(datagram: bytes) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 10:
            pacer.stop()
        if attempts % 2:
            raise ConnectionRefusedError("ICMP port unreachable")

    pacer = Pacer(send, lambda: b"x", clock=time.clock, sleep=time.sleep)
    asyncio.run(pacer.run())

    assert attempts == 10
    assert pacer.send_errors == 5 and pacer.sent == 5


def test_runs_are_deterministic() -> None:
    first_time, second_time = VirtualTime(), VirtualTime()
    first_time.oversleep = second_time.oversleep = {7: 0.013, 30: 0.5}

    _, first = run_pacer(first_time, ticks=100)
    _, second = run_pacer(second_time, ticks=100)

    assert first == second


def test_stream_state_sequence_and_timestamp() -> None:
    state = RtpStreamState(ssrc=0xCAFE, payload_type=8, samples_per_frame=160, sequence=65534, timestamp=0xFFFFFF00)

    packets = [state.next_packet(b"\xd5" * 160, marker=(i == 0)) for i in range(3)]

    assert [p.sequence for p in packets] == [65534, 65535, 0]
    assert [p.timestamp for p in packets] == [0xFFFFFF00, 0xFFFFFFA0, 0x40]
    assert [p.marker for p in packets] == [True, False, False]
    assert {(p.ssrc, p.payload_type) for p in packets} == {(0xCAFE, 8)}
    assert parse_rtp(packets[2].to_bytes()) == packets[2]
    assert state.packets == 3


def test_stream_state_skip_advances_timestamp_only() -> None:
    state = RtpStreamState(ssrc=1, payload_type=0, samples_per_frame=160, sequence=10, timestamp=1000)
    state.next_packet(b"")

    state.skip(5)
    packet = state.next_packet(b"", marker=True)

    assert packet.sequence == 11
    assert packet.timestamp == 1000 + 160 + 5 * 160


def test_stream_state_random_start() -> None:
    starts = {(s.sequence, s.timestamp) for s in (RtpStreamState(1, 0, 160) for _ in range(20))}

    assert len(starts) > 1
    assert all(0 <= seq <= 0xFFFF and 0 <= ts <= 0xFFFFFFFF for seq, ts in starts)


def test_stream_state_validation() -> None:
    with pytest.raises(ValueError):
        RtpStreamState(1, 0, 0)
    with pytest.raises(ValueError):
        RtpStreamState(1, 0, 160).skip(-1)
