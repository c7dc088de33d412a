"""Tests for ariapp.media.jitter, driven tick by tick."""

from __future__ import annotations

import numpy as np
import pytest

from aipbx.audio.rtp import RtpPacket
from ariapp.media.jitter import FrameStatus, JitterBuffer

SAMPLES = 160
SSRC = 0x1234


def frame_for(seq: int) -> np.ndarray:
    """A recognisable frame: every sample encodes the sequence number."""
    return np.full(SAMPLES, 1000 + seq % 20000, dtype=np.int16)


def push(buffer: JitterBuffer, seq: int, ssrc: int = SSRC) -> None:
    seq &= 0xFFFF
    buffer.push(RtpPacket(0, seq, seq * SAMPLES & 0xFFFFFFFF, ssrc, b"\xff" * SAMPLES), frame_for(seq))


def seq_of(frame: np.ndarray | None) -> int | None:
    return None if frame is None else int(frame[0]) - 1000


def pop_seq(buffer: JitterBuffer) -> tuple[int | None, FrameStatus]:
    frame, status = buffer.pop()
    return (seq_of(frame) if status is FrameStatus.OK else None), status


def test_buffers_until_depth_then_plays_in_order() -> None:
    buffer = JitterBuffer(depth_ms=40, frame_ms=20, max_depth_ms=60)

    assert buffer.pop() == (None, FrameStatus.BUFFERING)
    push(buffer, 100)
    assert buffer.pop() == (None, FrameStatus.BUFFERING)
    push(buffer, 101)

    played = []
    for seq in range(102, 112):
        played.append(pop_seq(buffer))
        push(buffer, seq)

    assert played == [(seq, FrameStatus.OK) for seq in range(100, 110)]
    assert buffer.stats.received == 12
    assert buffer.stats.played == 10
    assert buffer.frame_samples == SAMPLES


def test_reorder_within_depth_is_repaired() -> None:
    buffer = JitterBuffer(depth_ms=40, max_depth_ms=120)
    # given packets arriving swapped in pairs
    for seq in (1, 0, 3, 2, 5, 4):
        push(buffer, seq)

    # when
    played = [pop_seq(buffer) for _ in range(4)]

    # then
    assert [seq for seq, _ in played] == [0, 1, 2, 3]
    assert buffer.stats.late == buffer.stats.duplicates == buffer.stats.concealed == 0


def test_swapped_arrivals_at_real_time_play_in_order_with_defaults() -> None:
    buffer = JitterBuffer()  # 40 ms depth, 60 ms bound
    played = []
    # given one packet per 20 ms tick, but every pair swapped in flight
    for tick in range(100):
        push(buffer, tick ^ 1)
        seq, status = pop_seq(buffer)
        if status is not FrameStatus.BUFFERING:
            played.append((seq, status))

    assert played == [(seq, FrameStatus.OK) for seq in range(99)]
    assert buffer.stats.dropped_overflow == buffer.stats.concealed == buffer.stats.late == 0


def test_earlier_packet_during_initial_buffering_is_not_late() -> None:
    buffer = JitterBuffer(depth_ms=60, max_depth_ms=60)
    push(buffer, 11)
    push(buffer, 10)
    push(buffer, 12)

    assert [pop_seq(buffer)[0] for _ in range(3)] == [10, 11, 12]
    assert buffer.stats.late == 0


def test_loss_is_concealed_by_attenuated_repeats_then_silence() -> None:
    buffer = JitterBuffer(depth_ms=20, max_depth_ms=100)
    loud = np.full(SAMPLES, 8000, dtype=np.int16)
    buffer.push(RtpPacket(0, 0, 0, SSRC, b""), loud)
    # given: 1, 2, 3 lost, 4 arrives
    buffer.push(RtpPacket(0, 4, 640, SSRC, b""), np.full(SAMPLES, 5, dtype=np.int16))

    results = [buffer.pop() for _ in range(5)]

    statuses = [status for _, status in results]
    assert statuses == [
        FrameStatus.OK,
        FrameStatus.CONCEALED,
        FrameStatus.CONCEALED,
        FrameStatus.CONCEALED,
        FrameStatus.OK,
    ]
    first, second, third = (results[i][0] for i in (1, 2, 3))
    assert first is not None and second is not None and third is not None
    assert np.all(first == 4000)  # -6 dB
    assert np.all(second == 2000)  # -12 dB
    assert not third.any()  # at most two repeats, then silence
    assert all(frame.shape == (SAMPLES,) and frame.dtype == np.int16 for frame, _ in results)
    assert buffer.stats.concealed == 3
    assert buffer.stats.played == 2


def test_concealment_restarts_after_a_real_frame() -> None:
    buffer = JitterBuffer(depth_ms=20, max_depth_ms=200)
    for seq in (0, 2, 4):
        push(buffer, seq)

    frames = [buffer.pop()[0] for _ in range(5)]

    assert frames[1] is not None and np.all(frames[1] == frame_for(0) >> 1)
    assert frames[3] is not None and np.all(frames[3] == frame_for(2) >> 1)


def test_duplicates_are_dropped_and_counted() -> None:
    buffer = JitterBuffer()
    for seq in (0, 0, 1, 1, 1):
        push(buffer, seq)

    assert [pop_seq(buffer) for _ in range(2)] == [(0, FrameStatus.OK), (1, FrameStatus.OK)]
    assert buffer.stats.duplicates == 3
    assert buffer.pop() == (None, FrameStatus.UNDERRUN)


def test_packet_after_its_slot_was_concealed_is_late() -> None:
    buffer = JitterBuffer(depth_ms=20, max_depth_ms=100)
    push(buffer, 0)
    push(buffer, 2)
    assert pop_seq(buffer) == (0, FrameStatus.OK)
    assert buffer.pop()[1] is FrameStatus.CONCEALED  # slot 1

    # when 1 finally arrives, and 0 is replayed by the network
    push(buffer, 1)
    push(buffer, 0)

    # then both are late and 2 plays next
    assert buffer.stats.late == 2
    assert pop_seq(buffer) == (2, FrameStatus.OK)


def test_wraparound_65535_to_0() -> None:
    buffer = JitterBuffer(depth_ms=40, max_depth_ms=100)
    # given reordering right across the wrap
    for seq in (65534, 0, 65535, 1, 2):
        push(buffer, seq)

    played = [pop_seq(buffer)[0] for _ in range(5)]

    assert played == [65534 % 20000, 65535 % 20000, 0, 1, 2]
    assert buffer.stats.late == buffer.stats.dropped_overflow == 0
    # and a straggler from before the wrap is late, not "far in the future"
    push(buffer, 65533)
    assert buffer.stats.late == 1
    assert buffer.buffered_ms == 0


def test_long_run_across_wrap_plays_everything() -> None:
    buffer = JitterBuffer()
    start = 65500
    played = []
    for i in range(200):
        push(buffer, start + i)
        seq, status = pop_seq(buffer)
        if status is FrameStatus.OK:
            played.append(seq)

    assert played == [(start + i) % 65536 % 20000 for i in range(199)]
    assert buffer.stats.played == 199
    assert buffer.stats.concealed == buffer.stats.underruns == 0


def test_burst_is_bounded_by_max_depth() -> None:
    buffer = JitterBuffer(depth_ms=40, max_depth_ms=60)
    # given a network stall followed by 10 packets at once
    for seq in range(10):
        push(buffer, seq)

    # then only the newest 60 ms are kept
    assert buffer.buffered_ms == 60
    assert buffer.stats.dropped_overflow == 7
    assert [pop_seq(buffer)[0] for _ in range(3)] == [7, 8, 9]
    # and the dropped ones count as late if they show up again
    push(buffer, 5)
    assert buffer.stats.late == 1


def test_gap_beyond_max_depth_skips_instead_of_concealing_forever() -> None:
    buffer = JitterBuffer(depth_ms=20, max_depth_ms=60)
    push(buffer, 0)
    assert pop_seq(buffer) == (0, FrameStatus.OK)

    push(buffer, 50)

    statuses = [buffer.pop()[1] for _ in range(3)]
    assert statuses == [FrameStatus.CONCEALED, FrameStatus.CONCEALED, FrameStatus.OK]
    assert buffer.stats.dropped_overflow == 0


def test_underrun_then_rebuffer() -> None:
    buffer = JitterBuffer(depth_ms=40, max_depth_ms=60)
    push(buffer, 0)
    push(buffer, 1)
    assert [pop_seq(buffer)[0] for _ in range(2)] == [0, 1]

    # when the buffer runs dry
    assert buffer.pop() == (None, FrameStatus.UNDERRUN)
    assert not buffer.playing
    assert buffer.pop() == (None, FrameStatus.BUFFERING)
    # packets 2..4 were lost in the outage; 5 and 6 arrive
    push(buffer, 5)
    assert buffer.pop() == (None, FrameStatus.BUFFERING)
    push(buffer, 6)

    # then playout resumes at depth without concealing the outage
    assert [pop_seq(buffer) for _ in range(2)] == [(5, FrameStatus.OK), (6, FrameStatus.OK)]
    assert buffer.stats.underruns == 1
    assert buffer.stats.concealed == 0
    push(buffer, 3)
    assert buffer.stats.late == 1


def test_ssrc_change_resets_sequence_space() -> None:
    buffer = JitterBuffer(depth_ms=20, max_depth_ms=60)
    push(buffer, 1000)
    assert pop_seq(buffer) == (1000, FrameStatus.OK)

    # a new source starting far behind the old sequence is not "late"
    push(buffer, 7, ssrc=0x9999)

    assert buffer.stats.late == 0
    assert buffer.stats.resyncs == 1
    assert pop_seq(buffer) == (7, FrameStatus.OK)


def test_sequence_restart_on_same_ssrc_is_detected_after_two_packets() -> None:
    buffer = JitterBuffer(depth_ms=20, max_depth_ms=60)
    for seq in range(5000, 5003):
        push(buffer, seq)
        pop_seq(buffer)

    push(buffer, 10)
    assert buffer.stats.late == 1 and buffer.stats.resyncs == 0
    push(buffer, 11)

    assert buffer.stats.resyncs == 1
    assert pop_seq(buffer) == (11, FrameStatus.OK)


def test_mismatched_frame_size_is_counted_and_dropped() -> None:
    buffer = JitterBuffer(depth_ms=20)
    push(buffer, 0)
    buffer.push(RtpPacket(0, 1, 160, SSRC, b""), np.zeros(240, dtype=np.int16))

    assert buffer.stats.invalid == 1
    assert buffer.buffered_ms == 20


def test_frame_size_is_inferred_from_first_frame() -> None:
    buffer = JitterBuffer(depth_ms=20, max_depth_ms=100)
    buffer.push(RtpPacket(0, 0, 0, SSRC, b""), np.ones(320, dtype=np.int16))
    buffer.push(RtpPacket(0, 4, 0, SSRC, b""), np.ones(320, dtype=np.int16))

    frames = [buffer.pop() for _ in range(4)]

    assert buffer.frame_samples == 320
    assert [status for _, status in frames] == [FrameStatus.OK] + [FrameStatus.CONCEALED] * 3
    assert all(frame is not None and frame.shape == (320,) for frame, _ in frames)


def test_pop_before_any_packet_is_buffering() -> None:
    assert JitterBuffer(depth_ms=20).pop() == (None, FrameStatus.BUFFERING)


@pytest.mark.parametrize(("depth", "frame", "maximum"), [(80, 20, 60), (-20, 20, 60), (40, 0, 60)])
def test_invalid_configuration(depth: int, frame: int, maximum: int) -> None:
    with pytest.raises(ValueError):
        JitterBuffer(depth_ms=depth, frame_ms=frame, max_depth_ms=maximum)
