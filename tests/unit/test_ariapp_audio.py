"""Tests for ariapp.media.audio: the Speaker's one-frame-per-tick playout and the Listener's utterances."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aipbx.audio.listener import Listener
from ariapp.media.audio import Speaker

FRAME = 160  # 20 ms at 8 kHz
FORMANTS = ((700, 130), (1220, 70), (2600, 160))


def voiced(seconds: float, rate: int = 8000, f0: float = 120.0, amplitude: int = 6000) -> np.ndarray:
    """Vowel-like audio webrtcvad calls speech (same recipe as tests/unit/test_media_vad.py)."""
    t = np.arange(int(rate * seconds)) / rate
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))) / rate
    signal = np.zeros_like(t)
    for k in range(1, int(0.45 * rate / f0)):
        gain = sum(math.exp(-0.5 * ((k * f0 - centre) / width) ** 2) for centre, width in FORMANTS) + 0.05
        signal += gain / math.sqrt(k) * np.sin(k * phase)
    signal *= 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    return np.round(amplitude * signal / np.max(np.abs(signal))).astype(np.int16)


def hiss(seconds: float, seed: int = 1) -> np.ndarray:
    return np.round(np.random.default_rng(seed).normal(0, 20.0, int(8000 * seconds))).astype(np.int16)


def ramp(samples: int, start: int = 1) -> np.ndarray:
    return np.arange(start, start + samples, dtype=np.int16)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def speaker(clock: FakeClock) -> Speaker:
    return Speaker(FRAME, clock)


# --- Speaker ------------------------------------------------------------------------------------


def test_frames_come_out_one_per_tick_in_order(speaker: Speaker) -> None:
    # given 3.5 frames of audio
    handle = speaker.start("Hello")
    audio = ramp(560)
    speaker.push(handle, audio)

    # when the clock ticks four times
    frames = [speaker.next_frame() for _ in range(4)]

    # then three whole frames play in order; the half frame waits for more audio
    assert [len(f) for f in frames[:3]] == [FRAME] * 3
    assert np.array_equal(np.concatenate(frames[:3]), audio[:480])
    assert frames[3] is None
    assert (handle.frames_total, handle.frames_played) == (3, 3)
    assert not handle.done.is_set()
    assert speaker.speaking


def test_pushes_that_are_not_frame_aligned_are_joined_seamlessly(speaker: Speaker) -> None:
    handle = speaker.start("Hello")
    audio = ramp(480)
    for chunk in np.array_split(audio, [70, 75, 300]):
        speaker.push(handle, chunk)

    played = np.concatenate([speaker.next_frame() for _ in range(3)])

    assert np.array_equal(played, audio)


def test_finish_pads_the_last_partial_frame_with_silence(speaker: Speaker) -> None:
    handle = speaker.start("Hi")
    speaker.push(handle, ramp(200))

    speaker.finish(handle)
    first, last = speaker.next_frame(), speaker.next_frame()

    assert handle.frames_total == 2
    assert np.array_equal(first, ramp(160))
    assert np.array_equal(last[:40], ramp(40, start=161))
    assert not last[40:].any()
    assert last.dtype == np.int16


def test_done_is_set_only_after_the_last_frame_is_played(speaker: Speaker) -> None:
    handle = speaker.start("Hi")
    speaker.push(handle, ramp(320))
    speaker.finish(handle)

    speaker.next_frame()
    assert not handle.done.is_set()
    speaker.next_frame()

    assert handle.done.is_set()
    assert not handle.interrupted
    assert not speaker.speaking
    assert handle.seconds_played == pytest.approx(0.04)
    assert speaker.next_frame() is None


def test_empty_utterance_is_done_at_once(speaker: Speaker) -> None:
    handle = speaker.start("")

    speaker.finish(handle)

    assert handle.done.is_set()
    assert speaker.next_frame() is None


def test_started_at_is_the_clock_of_the_first_frame_sent(speaker: Speaker, clock: FakeClock) -> None:
    handle = speaker.start("Hi")
    speaker.push(handle, ramp(320))
    assert handle.started_at is None

    clock.now = 101.5
    speaker.next_frame()
    clock.now = 101.52
    speaker.next_frame()

    assert handle.started_at == 101.5


def test_utterances_play_back_to_back(speaker: Speaker) -> None:
    first, second = speaker.start("One"), speaker.start("Two")
    speaker.push(first, np.full(160, 1, np.int16))
    speaker.finish(first)
    speaker.push(second, np.full(320, 2, np.int16))
    speaker.finish(second)

    values = [int(speaker.next_frame()[0])]
    assert first.done.is_set() and not second.done.is_set()
    values += [int(speaker.next_frame()[0]) for _ in range(2)]

    assert values == [1, 2, 2]
    assert second.done.is_set()


def test_a_cue_fires_when_its_piece_starts_to_play_not_when_it_is_queued(speaker: Speaker) -> None:
    # given two pieces of one reply queued at once (the second synthesised while the first plays)
    played: list[str] = []
    handle = speaker.start("reply")
    speaker.cue(handle, lambda: played.append("first"))
    speaker.push(handle, ramp(2 * FRAME))
    speaker.cue(handle, lambda: played.append("second"))
    speaker.push(handle, ramp(2 * FRAME))
    speaker.finish(handle)
    assert played == []  # queued is not spoken

    # when the clock ticks, then each fires with its piece's first frame, once
    ticks = []
    for _ in range(5):
        speaker.next_frame()
        ticks.append(list(played))
    assert ticks == [["first"], ["first"], ["first", "second"], ["first", "second"], ["first", "second"]]


def test_a_cue_of_a_piece_cut_off_or_held_never_fires(speaker: Speaker) -> None:
    played: list[str] = []
    handle = speaker.start("reply")
    speaker.push(handle, ramp(FRAME))
    speaker.cue(handle, lambda: played.append("held"))
    speaker.push(handle, ramp(FRAME))
    speaker.next_frame()
    speaker.pause()  # the caller talks over us: nothing plays, nothing is announced
    assert speaker.next_frame() is None and played == []
    speaker.stop()  # it was an interruption: the rest is never spoken
    speaker.resume()
    speaker.next_frame()
    assert played == []
    # and a later utterance's cues are its own
    later = speaker.start("later")
    speaker.cue(later, lambda: played.append("later"))
    speaker.push(later, ramp(FRAME))
    speaker.next_frame()
    assert played == ["later"]


def test_stop_drops_everything_at_once(speaker: Speaker) -> None:
    # given a long answer, two frames of which were played
    handle = speaker.start("A long answer")
    speaker.push(handle, ramp(1600))
    speaker.push(handle, ramp(100))
    speaker.next_frame()
    speaker.next_frame()
    queued = speaker.start("and more")
    speaker.push(queued, ramp(320))

    # when the caller barges in
    cut = speaker.stop()

    # then the very next tick is silent and both utterances are reported cut short
    assert speaker.next_frame() is None
    assert cut == [handle, queued]
    assert all(h.interrupted and h.done.is_set() for h in cut)
    assert (handle.frames_played, queued.frames_played) == (2, 0)
    assert not speaker.speaking


def test_stop_marks_a_played_but_unfinished_utterance_interrupted(speaker: Speaker) -> None:
    # the TTS was still producing audio when the caller spoke
    handle = speaker.start("streaming")
    speaker.push(handle, ramp(160))
    speaker.next_frame()

    assert speaker.stop() == [handle]
    assert handle.interrupted


def test_stop_when_silent_cuts_nothing(speaker: Speaker) -> None:
    done = speaker.start("Hi")
    speaker.finish(done)

    assert speaker.stop() == []
    assert not done.interrupted


def test_push_after_done_is_ignored(speaker: Speaker) -> None:
    played = speaker.start("Hi")
    speaker.push(played, ramp(160))
    speaker.finish(played)
    speaker.next_frame()
    stopped = speaker.start("cut")
    speaker.stop()

    speaker.push(played, ramp(320))
    speaker.push(stopped, ramp(320))
    speaker.finish(stopped)

    assert speaker.next_frame() is None
    assert (played.frames_total, stopped.frames_total) == (1, 0)


def test_speaker_works_again_after_a_barge_in(speaker: Speaker) -> None:
    old = speaker.start("old")
    speaker.push(old, ramp(100))
    speaker.stop()

    new = speaker.start("new")
    speaker.push(new, ramp(160, start=500))
    speaker.finish(new)

    assert np.array_equal(speaker.next_frame(), ramp(160, start=500))
    assert new.done.is_set() and not new.interrupted


# --- Listener -----------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.tick = 0
        self.starts: list[int] = []
        self.utterances: list[np.ndarray] = []

    def on_start(self) -> None:
        self.starts.append(self.tick)

    def on_utterance(self, pcm: np.ndarray) -> None:
        self.utterances.append(pcm)


def feed(listener: Listener, seen: Recorder, pcm: np.ndarray) -> None:
    for index in range(len(pcm) // FRAME):
        seen.tick = index
        listener.feed(pcm[index * FRAME : (index + 1) * FRAME])


def offset_in(pcm: np.ndarray, piece: np.ndarray) -> int:
    """Where ``piece`` sits in ``pcm`` (frame-aligned); fails if it is not an exact contiguous slice."""
    for start in range(0, len(pcm) - len(piece) + 1, FRAME):
        if np.array_equal(pcm[start : start + len(piece)], piece):
            return start
    raise AssertionError("not a contiguous slice of the input")


def test_one_utterance_with_pre_roll() -> None:
    # given 1 s of line hiss, 1 s of voice (frames 50..99), 1.5 s of hiss
    seen = Recorder()
    listener = Listener(8000, seen.on_start, seen.on_utterance)
    pcm = np.concatenate([hiss(1), voiced(1), hiss(1.5, seed=2)])

    # when
    feed(listener, seen, pcm)

    # then speech starts 60 ms in, once, and the utterance holds all the voice plus 300 ms before it
    assert len(seen.starts) == 1
    assert abs(seen.starts[0] - 52) <= 1
    [utterance] = seen.utterances
    start = offset_in(pcm, utterance) // FRAME
    end = start + len(utterance) // FRAME
    assert abs(start - (seen.starts[0] - 15)) <= 1
    assert start <= 48
    assert 100 <= end <= 100 + 25 + 2


def test_none_frames_are_ignored() -> None:
    seen = Recorder()
    listener = Listener(8000, seen.on_start, seen.on_utterance)

    listener.feed(None)

    assert seen.starts == [] and seen.utterances == []


def test_disabled_listener_emits_nothing_but_later_speech_gets_through() -> None:
    seen = Recorder()
    listener = Listener(8000, seen.on_start, seen.on_utterance)
    listener.enabled = False
    first = np.concatenate([hiss(0.5), voiced(0.6), hiss(1, seed=3)])
    feed(listener, seen, first)
    assert seen.starts == [] and seen.utterances == []

    listener.enabled = True
    second = np.concatenate([voiced(0.6, f0=150), hiss(1, seed=4)])
    feed(listener, seen, second)

    assert len(seen.starts) == 1
    [utterance] = seen.utterances
    assert offset_in(np.concatenate([first, second]), utterance) >= len(first) - 15 * FRAME


def test_long_speech_is_cut_at_max_utterance_s_without_losing_audio() -> None:
    # given 3.4 s of uninterrupted voice and a 1 s cap
    seen = Recorder()
    listener = Listener(8000, seen.on_start, seen.on_utterance, max_utterance_s=1.0)
    pcm = np.concatenate([hiss(0.5), voiced(3.4), hiss(1, seed=5)])

    # when
    feed(listener, seen, pcm)

    # then no piece is longer than 1 s, and the pieces follow each other with no gap
    assert len(seen.utterances) >= 3
    assert all(len(u) <= 8000 for u in seen.utterances)
    assert len(seen.utterances[0]) == 8000
    joined = np.concatenate(seen.utterances)
    start = offset_in(pcm, joined)
    assert start <= int(0.5 * 8000) - 2 * FRAME
    assert start + len(joined) >= int(3.9 * 8000)
