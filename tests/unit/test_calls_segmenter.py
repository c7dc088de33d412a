"""Cutting one speaker's track into timed utterances (the live and the after-the-call transcript share it)."""

from __future__ import annotations

import numpy as np

from aipbx.audio.segmenter import Segment, Segmenter, segments_of

RATE = 8000


def voice(seconds: float, freq: float = 220.0) -> np.ndarray:
    """A voiced, speech-like signal (harmonics with a syllable rhythm) that webrtcvad calls speech."""
    t = np.arange(int(seconds * RATE)) / RATE
    tone = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, 6))
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    return (tone * envelope * 6000).astype(np.int16)


def track(*pieces: tuple[float, float], seconds: float) -> np.ndarray:
    audio = np.zeros(int(seconds * RATE), dtype=np.int16)
    for start, length in pieces:
        at = int(start * RATE)
        audio[at : at + int(length * RATE)] = voice(length)
    return audio


def test_two_utterances_come_out_with_their_times() -> None:
    segments = list(segments_of("callee", track((1.0, 1.5), (4.0, 2.0), seconds=8.0), RATE))
    assert [s.speaker for s in segments] == ["callee", "callee"]
    first, second = segments
    # starts include the short pre-roll kept before speech; ends are the end of the speech itself
    assert 0.6 <= first.start_s <= 1.0 and 2.4 <= first.end_s <= 2.7
    assert 3.6 <= second.start_s <= 4.0 and 5.9 <= second.end_s <= 6.2


def test_a_pause_shorter_than_the_end_of_an_utterance_does_not_split_it() -> None:
    (only,) = segments_of("caller", track((1.0, 1.0), (2.3, 1.0), seconds=5.0), RATE)
    assert only.start_s <= 1.0 and only.end_s >= 3.2


def test_speech_running_into_the_end_of_the_track_is_flushed() -> None:
    (last,) = segments_of("caller", track((2.0, 3.0), seconds=5.0), RATE)
    assert 1.6 <= last.start_s <= 2.0 and last.end_s == 5.0


def test_missing_frames_count_as_time() -> None:
    found: list[Segment] = []
    segmenter = Segmenter("callee", RATE, found.append)
    for _ in range(50):  # one second of nothing received
        segmenter.feed(None)
    speech = voice(1.0)
    for at in range(0, len(speech), 160):
        segmenter.feed(speech[at : at + 160])
    segmenter.flush()
    (segment,) = found
    assert 0.6 <= segment.start_s <= 1.0 and segment.end_s == 2.0
