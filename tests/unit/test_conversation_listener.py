"""Tests for the parts of aipbx.audio.listener.Listener the conversation relies on: the pause that starts
recognition early, and dropping an utterance judged to be our own echo (and taking that back)."""

from __future__ import annotations

import numpy as np

from aipbx.audio.listener import Listener
from tests.unit.test_ariapp_audio import hiss, voiced

FRAME = 160


class Ears:
    """A Listener on a 20 ms tick, recording what it reports and when."""

    def __init__(self, **options: int) -> None:
        self.tick = 0
        self.starts: list[int] = []
        self.pauses: list[tuple[int, np.ndarray]] = []
        self.utterances: list[tuple[int, np.ndarray]] = []
        self.listener = Listener(
            8000,
            lambda: self.starts.append(self.tick),
            lambda pcm: self.utterances.append((self.tick, pcm)),
            on_pause=lambda pcm: self.pauses.append((self.tick, pcm)),
            **options,
        )

    def hear(self, pcm: np.ndarray, at_tick: dict[int, object] | None = None) -> None:
        for index in range(len(pcm) // FRAME):
            self.tick += 1
            self.listener.feed(pcm[index * FRAME : (index + 1) * FRAME])
            if at_tick and self.tick in at_tick:
                at_tick[self.tick]()


# 0.5 s of line noise, 0.6 s of voice (ticks 26..55), a 0.3 s pause, 0.4 s more voice (71..90), 1 s of noise
TWO_PHRASES = np.concatenate([hiss(0.5), voiced(0.6), hiss(0.3, seed=2), voiced(0.4, f0=150), hiss(1.0, seed=3)])


def test_a_pause_inside_speech_reports_the_audio_so_far() -> None:
    # given
    ears = Ears(pause_ms=200, end_ms=500)

    # when
    ears.hear(TWO_PHRASES)

    # then one pause 200 ms into the gap, one 200 ms after the end, then the utterance 500 ms after the end
    assert [tick for tick, _ in ears.pauses] == [65, 100]
    [(end_tick, utterance)] = ears.utterances
    assert end_tick == 115
    for _, pcm in ears.pauses:
        assert np.array_equal(utterance[: len(pcm)], pcm)  # the audio so far, from the same start
        assert np.abs(pcm[-10 * FRAME :]).max() < 500  # ending with the 200 ms of quiet
    first, last = (pcm for _, pcm in ears.pauses)
    assert len(utterance) - len(first) == (end_tick - 65) * FRAME
    # what follows the last pause is only quiet: the orchestrator may reuse that transcript
    assert np.abs(utterance[len(last) :]).max() < 500
    assert np.abs(utterance[len(first) :]).max() > 500


def test_a_gap_shorter_than_the_pause_is_not_a_pause() -> None:
    ears = Ears(pause_ms=200, end_ms=500)

    ears.hear(np.concatenate([hiss(0.5), voiced(0.6), hiss(0.1, seed=2), voiced(0.4), hiss(1.0, seed=3)]))

    assert len(ears.pauses) == 1  # only the one after the last word
    assert len(ears.utterances) == 1


def test_pause_ms_sets_the_pause() -> None:
    ears = Ears(pause_ms=400, end_ms=500)

    ears.hear(TWO_PHRASES)

    assert [tick for tick, _ in ears.pauses] == [110]


def test_discard_current_drops_the_utterance_and_its_pauses() -> None:
    # given an utterance judged echo just after it started
    ears = Ears(pause_ms=200, end_ms=500)

    # when
    ears.hear(TWO_PHRASES, {30: ears.listener.discard_current})

    # then nothing is reported but the start
    assert len(ears.starts) == 1
    assert ears.pauses == [] and ears.utterances == []

    # and the next utterance is the caller's again
    ears.hear(TWO_PHRASES)
    assert len(ears.starts) == 2 and len(ears.utterances) == 1 and len(ears.pauses) == 2


def test_keep_current_takes_the_discard_back() -> None:
    # given an onset judged echo, then re-judged as the caller talking over it
    ears = Ears(pause_ms=200, end_ms=500)
    plain = Ears(pause_ms=200, end_ms=500)

    # when
    ears.hear(TWO_PHRASES, {30: ears.listener.discard_current, 40: ears.listener.keep_current})
    plain.hear(TWO_PHRASES)

    # then the utterance is reported whole, with its pauses, exactly as without the discard
    [(_, utterance)] = ears.utterances
    assert np.array_equal(utterance, plain.utterances[0][1])
    assert [t for t, _ in ears.pauses] == [t for t, _ in plain.pauses]


def test_a_pause_while_discarded_is_not_reported_even_after_keep() -> None:
    # the discard covers the first pause (tick 65); keeping the rest reports only the later pause
    ears = Ears(pause_ms=200, end_ms=500)

    ears.hear(TWO_PHRASES, {30: ears.listener.discard_current, 70: ears.listener.keep_current})

    assert [t for t, _ in ears.pauses] == [100]
    assert len(ears.utterances) == 1
