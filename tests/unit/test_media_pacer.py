"""Tests for ariapp.media.pacer: frame deadlines and RTP stream state, without a loop.

The loop that drives :class:`PacerClock` in production, MediaClock, is tested on virtual time in
test_ariapp_media_clock.py.
"""

from __future__ import annotations

import pytest

from aipbx.audio.rtp import parse_rtp
from ariapp.media.pacer import PacerClock, RtpStreamState

FRAME = 0.02


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
